"""Amortized SED posteriors: a trained :class:`~provabgs_sbi.inference.flows.ConditionalFlow` over the
11 warped parameters, conditioned on x = (ugriz AB mags, their errors, z), plus the
bookkeeping that turns it into posteriors of the 12 physical parameters for a catalog.

Folder layout (``flows/<configuration>/``)::

    flow/            the ConditionalFlow (weights.npz, flow.json, its own manifest), or a
                     FlowEnsemble (ensemble.json and one such folder per member)
    posterior.json   prior, trained redshift and magnitude ranges, provenance
    RECIPE.md        how it was rebuilt
    manifest.json    SHA-256 of every file above (checked on load), inputs, metrics

Input flags (bit mask, :data:`FIT_FLAG_NAMES`): the redshift is not finite, outside the
trained range or <= 0, fewer bands than the posterior needs, a band is
missing (NaN, sentinel, error <= 0), a magnitude outside the training range, a magnitude
error far above the noise model (mu + 3 s, SEDflow's main failure mode). Galaxies with
the first three get NaN samples;
the others are sampled and flagged. Catalog fits add output flags: the flow produced no
finite samples, the posterior predictive check failed or could not be computed
(:mod:`provabgs_sbi.inference.ppc`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.flags import (FIT_FLAG_NAMES, FLAG_INVALID_X, FLAG_MAG_RANGE,
                                FLAG_MISSING_BAND, FLAG_SIGMA_HIGH, FLAG_TOO_FEW_BANDS,
                                FLAG_Z_RANGE,
                                NO_SAMPLES, count_flags)
from provabgs_sbi.inference.conditioning import Conditioning, floor_array
from provabgs_sbi.inference.ensemble import load_flow
from provabgs_sbi.inference.noise import NoiseModel, default_noise_model
from provabgs_sbi.inference.training_set import emulator_ids
from provabgs_sbi.io.artifacts import find_emulator, read_manifest, verify_files, write_manifest
from provabgs_sbi.io.atomic import atomic_write_text
from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog
from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.model.observation import XLayout
from provabgs_sbi.model.parameters import (N_WARPED, PARAM_NAMES, WARPED_NAMES, from_warped,
                                           to_warped, warp_log_jacobian)
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.survey import SDSS_UGRIZ, Survey

#: A survey posterior's own noise model, saved in its folder (SDSS ugriz posteriors use
#: the committed ``data/noise_model_sdss.ecsv``).
NOISE_FILE = "noise_model.ecsv"


def _floor_rows(floor, index):
    """A floor given per galaxy ((N, n_bands)) restricted to the rows ``index``; one for
    all galaxies (None, a value or (n_bands,)) as it is."""
    if floor is None:
        return None
    f = np.asarray(floor, dtype=np.float64)
    return f[index] if f.ndim == 2 else f


def as_x(data, layout: XLayout | None = None):
    """x (N, 2 n_bands + 1) from an array, a PhotometryCatalog, an astropy Table or a path.

    Parameters
    ----------
    data : array_like, PhotometryCatalog, astropy.table.Table or path-like
        An array is checked against ``layout``; a catalog (SDSS ugriz only) is converted.
    layout : XLayout, optional
        The bands of x (default SDSS ugriz).
    """
    layout = layout or SDSS_UGRIZ.layout
    if isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        return layout.check(data)
    if layout != SDSS_UGRIZ.layout:
        raise ValueError(f"catalog files are read for SDSS ugriz only; for bands "
                         f"{list(layout.bands)} give x as an array (magnitudes, errors, z)")
    cat = data if isinstance(data, PhotometryCatalog) else read_catalog(data)
    return cat.to_x()


def _training_set_settings(info: dict) -> list[dict]:
    if "member_training_sets" in info:
        return [s for member in info["member_training_sets"] for s in member]
    if "training_sets" in info:
        return list(info["training_sets"])
    return [info["training_set"]] if info.get("training_set") else []


def init_training_set_settings(info: dict) -> list[dict]:
    """Training sets of the flow(s) a posterior was fine-tuned from (all members)."""
    inits = list(info.get("init_training_sets", []))
    for member in info.get("member_init_training_sets", []):
        inits += member
    return inits


def seen_training_set_settings(info: dict, member: int | None = None) -> list[dict]:
    """Settings of every training-set file the weights of a posterior (its ``info``, as in
    ``posterior.json``), or of one ``member`` of a mixture, were fitted to: its training
    sets and those of the flow it was fine-tuned from. See
    :meth:`Posterior.seen_training_set_settings`."""
    if member is None:
        return _training_set_settings(info) + init_training_set_settings(info)
    own = (info["member_training_sets"][member] if "member_training_sets" in info
           else _training_set_settings(info))
    inits = info.get("member_init_training_sets", [])
    return list(own) + list(inits[member] if inits else [])


def _find_one_emulator(ids, root=None) -> Path:
    if len(ids) != 1:
        raise ValueError(f"the posterior's training sets record {len(ids)} emulators "
                         f"({[i[:12] for i in ids]}); name the emulator explicitly")
    return find_emulator(ids[0], root)


def emulator_of(flow_dir, root=None) -> Path:
    """The committed emulator folder a posterior folder's training set was made with.

    Reads only ``posterior.json`` (no TensorFlow), so commands can pair a flow with its
    emulator before loading either.

    Parameters
    ----------
    flow_dir : path-like
        A posterior folder, e.g. ``flows/bc03_logbeta1``.
    root : path-like, optional
        Folder of emulator folders (default ``<repo>/emulator``).

    Raises
    ------
    ValueError
        The training sets record no emulator, or several.
    FileNotFoundError
        No folder under ``root`` holds it.
    """
    meta = json.loads((Path(flow_dir) / "posterior.json").read_text())
    return _find_one_emulator(emulator_ids(_training_set_settings(meta)), root)


class Posterior:
    """Posterior q(theta | x) for the PROVABGS parameters.

    Parameters
    ----------
    flow : ConditionalFlow or FlowEnsemble
        Trained over the warped coordinates in the prior box.
    prior : Prior
        The prior of the training set (its box must equal the flow's).
    z_range : (float, float)
        Redshifts of the training set.
    mag_range : ndarray of shape (n_bands, 2)
        AB magnitude range of the training set per band.
    noise : NoiseModel, optional
        For the sigma flag; in the survey's bands.
    info : dict
        Provenance. ``info["survey"]`` (a :meth:`Survey.to_dict` dict) names the bands
        of x when they are not SDSS ugriz.
    """

    def __init__(self, flow, prior: Prior, z_range, mag_range, noise=None, info=None):
        info = dict(info or {})
        #: The bands x is given in (:class:`~provabgs_sbi.model.survey.Survey`).
        self.survey = Survey.from_dict(info["survey"]) if info.get("survey") else SDSS_UGRIZ
        #: Column layout of x for :attr:`survey`'s bands.
        self.layout = self.survey.layout
        self.conditioning = (Conditioning.from_dict(info["conditioning"])
                             if info.get("conditioning") else None)
        if self.conditioning is not None and self.conditioning.bands != self.survey.bands:
            raise ValueError(f"the conditioning's bands {list(self.conditioning.bands)} are "
                             f"not survey {self.survey.name!r}'s {list(self.survey.bands)}")
        if noise is not None and tuple(noise.bands) != self.survey.bands:
            raise ValueError(f"the noise model's bands {list(noise.bands)} are not survey "
                             f"{self.survey.name!r}'s {list(self.survey.bands)}")
        d_x = self.layout.size if self.conditioning is None else self.conditioning.size
        if flow.d_theta != N_WARPED or flow.d_x != d_x:
            raise ValueError(f"the flow must map {N_WARPED} warped parameters given "
                             f"{d_x}-dimensional conditioning inputs, got {flow.d_theta} and "
                             f"{flow.d_x}")
        if not (np.allclose(flow.low, prior.low) and np.allclose(flow.high, prior.high)):
            raise ValueError("the flow's box is not the prior's box")
        self.flow = flow
        self.prior = prior
        self.z_range = (float(z_range[0]), float(z_range[1]))
        self.mag_range = np.asarray(mag_range, dtype=np.float64)
        if self.mag_range.shape != (self.layout.n_bands, 2):
            raise ValueError(f"mag_range must have shape ({self.layout.n_bands}, 2), got "
                             f"{self.mag_range.shape}")
        self.noise = noise
        self.info = info
        #: The manifest and folder it was loaded from (None when built in memory).
        self.manifest = None
        self.folder = None

    @property
    def min_bands(self) -> int:
        """Fewest bands a galaxy needs to be fitted: all of them unless the flow was trained
        with band masks (its :class:`Conditioning`)."""
        return self.layout.n_bands if self.conditioning is None else int(self.conditioning.min_bands)

    @property
    def default_floor(self) -> float | tuple:
        """The systematic floor (mag) fits use unless told otherwise: 0 for a posterior
        trained without floors, else ``info["default_floor"]`` (chosen from data): one value
        for every band, or a tuple of one per band."""
        if self.conditioning is None:
            return 0.0
        f = self.info.get("default_floor", 0.0)
        return tuple(float(v) for v in f) if isinstance(f, (list, tuple)) else float(f)

    def check_floor(self, floor=None) -> np.ndarray:
        """A systematic floor as an array of shape (n_bands,), mag (default :attr:`default_floor`).

        Raises
        ------
        ValueError
            A value < 0 or not finite, the wrong length, a floor above what a mask-aware
            posterior was trained for, or any floor but 0 for a posterior trained without.
        """
        if floor is None:
            floor = self.default_floor
        if self.conditioning is not None:
            return self.conditioning.check_floor(floor)
        f = floor_array(floor, self.layout.n_bands)
        if np.any(f != 0):
            raise ValueError("this posterior was trained without a systematic floor; "
                             "only floor=0 is possible (train one with a Conditioning)")
        return f

    def flow_input(self, x, floor=None) -> np.ndarray:
        """What the flow is conditioned on for catalog vectors ``x`` and a floor.

        Parameters
        ----------
        x : ndarray of shape (N, 2 n_bands + 1)
        floor : float or array_like of shape (n_bands,) or (N, n_bands), optional
            Systematic floor per band, mag (default :attr:`default_floor`). A posterior
            trained without floors accepts only 0.

        Returns
        -------
        ndarray of shape (N, d_x)
            ``x`` itself, or its :meth:`Conditioning.encode` for a mask-aware posterior.
        """
        x = self.layout.check(x)
        if self.conditioning is None:
            if floor is not None:
                f = np.asarray(floor, dtype=np.float64)
                self.check_floor(f if f.ndim < 2
                                 else f.reshape(-1, self.layout.n_bands).max(axis=0))
            return x
        return self.conditioning.encode(x, self.default_floor if floor is None else floor)

    # --------------------------------------------------------------- flags
    def band_problems(self, x) -> dict[str, np.ndarray]:
        """Per band, what is wrong with each galaxy's x, as masks of shape (N, n_bands).

        Parameters
        ----------
        x : array_like of shape (N, 2 n_bands + 1)

        Returns
        -------
        dict of str -> ndarray of shape (N, n_bands), bool
            ``"missing"``: no usable magnitude or error
            (:meth:`~provabgs_sbi.model.observation.XLayout.missing`);
            ``"mag_range"``: a present magnitude outside the training set's range;
            ``"sigma_high"``: a present error above the noise model's mu + 3 s at that
            magnitude, times the largest inflation of a mask-aware posterior's training
            (:meth:`Conditioning.sigma_limit`; all False without a noise model).
        """
        lay = self.layout
        x = lay.check(x)
        missing = lay.missing(x)
        mags, errs = lay.mags(x), lay.errors(x)
        with np.errstate(invalid="ignore"):
            mag_range = ~missing & ((mags < self.mag_range[:, 0]) | (mags > self.mag_range[:, 1]))
            sigma_high = np.zeros_like(missing)
            if self.noise is not None:
                limit = (self.noise.median_sigma(mags) + 3 * self.noise.scatter_sigma(mags)
                         if self.conditioning is None
                         else self.conditioning.sigma_limit(self.noise, mags))
                sigma_high = ~missing & (errs > limit)
        return {"missing": missing, "mag_range": mag_range, "sigma_high": sigma_high}

    def flags(self, x) -> np.ndarray:
        """Input flags (N,) of x (N, 2 n_bands + 1); see the module docstring.

        ``invalid_x``: the redshift is not finite; ``z_outside_trained_range``: it is
        outside the trained range or <= 0 (no distance; catalog fits also refuse
        z <= :data:`~provabgs_sbi.model.observation.Z_MIN`); ``missing_band``: a band's magnitude
        or error is missing, and ``too_few_bands`` (no samples) when fewer than
        :attr:`min_bands` are present; ``mag_outside_training_range`` and ``sigma_above_noise_model``:
        a present band is outside what the flow was trained on (:meth:`band_problems`).
        """
        x = self.layout.check(x)
        f = np.zeros(len(x), dtype=np.int32)
        z = self.layout.redshift(x)
        with np.errstate(invalid="ignore"):
            f[~np.isfinite(z)] |= FLAG_INVALID_X
            f[(z <= 0) | (z < self.z_range[0]) | (z > self.z_range[1])] |= FLAG_Z_RANGE
        bands = self.band_problems(x)
        f[bands["missing"].any(axis=1)] |= FLAG_MISSING_BAND
        f[(~bands["missing"]).sum(axis=1) < self.min_bands] |= FLAG_TOO_FEW_BANDS
        f[bands["mag_range"].any(axis=1)] |= FLAG_MAG_RANGE
        f[bands["sigma_high"].any(axis=1)] |= FLAG_SIGMA_HIGH
        return f

    def training_set_settings(self) -> list[dict]:
        """Settings of every training-set file behind this posterior (all members of a
        mixture), from ``info``; empty when ``info`` records none."""
        return _training_set_settings(self.info)

    def seen_training_set_settings(self) -> list[dict]:
        """Settings of every training-set file any of these weights were fitted to: the
        training sets and, for a flow fine-tuned from another, the training sets of the
        flow it started from (``info["init_training_sets"]``, per member of a mixture in
        ``info["member_init_training_sets"]``). Held-out test galaxies must share a seed
        with none of them."""
        return seen_training_set_settings(self.info)

    def emulator_ids(self) -> list[str]:
        """Manifest SHA-256 of the emulator(s) the training sets were made with (sorted;
        empty when none is recorded)."""
        return emulator_ids(self.training_set_settings())

    def emulator_folder(self, root=None) -> Path:
        """The committed emulator folder this posterior's training set was made with
        (:func:`emulator_of`)."""
        return _find_one_emulator(self.emulator_ids(), root)

    @staticmethod
    def describe_flags(flags) -> dict:
        """Counts of each flag name."""
        return count_flags(flags)

    # --------------------------------------------------------------- sampling
    def sample_warped(self, data, n: int, seed=None, strict: bool = True, chunk_size=16384,
                      floor=None):
        """Samples in warped coordinates, (n_gal, n, 11); see :meth:`sample`."""
        x = as_x(data, self.layout)
        flags = self.flags(x)
        skip = (flags & NO_SAMPLES) > 0
        if strict and np.any(skip):
            i = int(np.nonzero(skip)[0][0])
            what = [FIT_FLAG_NAMES[b] for b in FIT_FLAG_NAMES if flags[i] & b]
            raise ValueError(f"galaxy {i} cannot be fitted ({', '.join(what)}): x = {x[i].tolist()}; "
                             f"trained redshifts are {self.z_range}. Use strict=False to get NaN "
                             "samples and flags instead")
        out = np.full((len(x), int(n), N_WARPED), np.nan)
        ok = np.nonzero(~skip)[0]
        inputs = self.flow_input(x[ok], _floor_rows(floor, ok))
        if len(ok):
            out[ok] = self.flow.sample(inputs, int(n), seed=seed, chunk_size=chunk_size,
                                       nan_policy="nan")
        failed = np.any(~np.isfinite(out), axis=(1, 2)) & ~skip
        if np.any(failed):
            # The flow overflowed for x far outside its training data: no samples at all
            # rather than a biased subset (these galaxies get FLAG_FLOW_FAILED in fits).
            out[failed] = np.nan
            if strict:
                i = int(np.nonzero(failed)[0][0])
                raise ValueError(f"galaxy {i}: the flow overflowed (x far outside the training "
                                 f"data: {x[i].tolist()}); use strict=False for NaN samples")
        return out

    def sample(self, data, n: int, seed=None, strict: bool = True, chunk_size=16384,
               floor=None) -> np.ndarray:
        """Posterior samples of the 12 physical parameters.

        Parameters
        ----------
        data : ndarray of shape (n_gal, 2 n_bands + 1), PhotometryCatalog, astropy Table or path
            x = (AB mags, their errors, z) in the survey's bands (u, g, r, i, z, their 5
            errors, z for SDSS), or an SDSS catalog to convert.
        n : int
            Samples per galaxy.
        seed : int, optional
        strict : bool
            Raise on galaxies that cannot be fitted (invalid x, z outside the trained range);
            with False they get NaN samples (see :meth:`flags`).
        floor : float or array_like of shape (n_bands,) or (n_gal, n_bands), optional
            Systematic floor per band in mag, added to the errors in quadrature (default
            :attr:`default_floor`; see :meth:`flow_input`).

        Returns
        -------
        ndarray of shape (n_gal, n, 12)
            Physical parameters (order of PARAM_NAMES), always inside the prior support.
        """
        w = self.sample_warped(data, n, seed=seed, strict=strict, chunk_size=chunk_size,
                               floor=floor)
        flat = w.reshape(-1, N_WARPED)
        return from_warped(flat).reshape(w.shape[0], w.shape[1], len(PARAM_NAMES))

    def log_prob(self, theta, x, floor=None) -> np.ndarray:
        """log q(theta | x) of physical parameters (N, 12), with the warp's Jacobian
        (the same measure as :meth:`Prior.log_prob`); -inf outside the prior support.
        ``floor`` as in :meth:`sample`."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        w = to_warped(theta)
        jac = warp_log_jacobian(theta, w)
        inside = self.prior.in_support(theta)
        lp = np.full(len(theta), -np.inf)
        if np.any(inside):
            xx = np.atleast_2d(np.asarray(x, dtype=np.float64))
            xx = np.broadcast_to(xx, (len(theta), self.layout.size)) if len(xx) == 1 else xx
            inputs = self.flow_input(xx[inside], _floor_rows(floor, inside))
            lp[inside] = self.flow.log_prob(w[inside], inputs) + jac[inside]
        return lp

    # --------------------------------------------------------------- I/O
    def save(self, folder, metrics=None, inputs=None, recipe: str | None = None) -> Path:
        """Write the flow, ``posterior.json``, ``RECIPE.md`` and the manifest into ``folder``
        (and, for a survey other than SDSS ugriz, its noise model, :data:`NOISE_FILE`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.flow.save(folder / "flow")
        if self.survey != SDSS_UGRIZ and self.noise is not None:
            self.noise.save(folder / NOISE_FILE)
        meta = {"prior": self.prior.kind, "z_range": list(self.z_range),
                "mag_range": self.mag_range.tolist(), "warped_names": list(WARPED_NAMES),
                "param_names": list(PARAM_NAMES), **self.info}
        atomic_write_text(folder / "posterior.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if recipe is not None:
            atomic_write_text(folder / "RECIPE.md", recipe)
        files = {p.relative_to(folder).as_posix(): p
                 for p in sorted((folder / "flow").rglob("*")) if p.is_file()}
        write_manifest(folder, "posterior", config=meta, inputs=inputs or {}, metrics=metrics or {},
                       extra={"flow_files": {k: sha256_file(v) for k, v in files.items()}})
        return folder

    @classmethod
    def load(cls, folder) -> "Posterior":
        """Load ``flows/<configuration>``, verifying every file's SHA-256."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        verify_files(folder, manifest.get("flow_files", {}), folder / "manifest.json")
        meta = json.loads((folder / "posterior.json").read_text())
        flow = load_flow(folder / "flow")
        if (folder / NOISE_FILE).is_file():
            noise = NoiseModel.load(folder / NOISE_FILE)
        elif meta.get("survey"):
            noise = None            # a survey posterior saved without a noise model
        else:
            try:
                noise = default_noise_model()
            except FileNotFoundError:
                noise = None
        info = {k: v for k, v in meta.items() if k not in ("prior", "z_range", "mag_range")}
        post = cls(flow, Prior(meta["prior"]), meta["z_range"], meta["mag_range"], noise, info)
        post.manifest = manifest
        post.folder = folder            # where it was loaded from (Dask workers reload it)
        return post

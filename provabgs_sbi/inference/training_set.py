"""ANPE training sets: prior draws -> emulator photometry -> SEDflow noise -> x.

Each accepted row holds the physical parameters theta (12), their warped coordinates
(11, what the flow learns), and x = (AB magnitudes with noise, their magnitude errors, z)
as in SEDflow (model-spec 2.1, 2.2), in the bands of a survey
(:class:`~provabgs_sbi.model.survey.Survey`; SDSS ugriz by default, 11 numbers):

1. theta from the prior, z ~ U(z_range) (default U(0, 0.2));
2. noiseless magnitudes in the survey's filters from the emulator;
3. sigma_m drawn from the noise model at the noiseless magnitudes, m_hat = m + sigma eps;
4. SEDflow's cuts: rows with a non-positive sigma, or noiseless magnitudes outside the real
   sample's range in any band, are dropped (in a survey with optional bands, such as GALEX
   in ``galex_sdss_2mass``, the range cut uses only its
   :attr:`~provabgs_sbi.model.survey.Survey.required_bands`: most prior draws are fainter
   in FUV than any GALEX detection, and cutting on it would leave a training set of
   UV-bright galaxies only).

The file is chunked HDF5 written in fixed chunks of prior draws; chunk k uses
``numpy.random.default_rng([seed, k])``. A single ``progress`` attribute records, in one
write, how many chunks and rows are committed; rows beyond it (from a chunk cut off while
being written) are truncated on resume. So a run interrupted at any point resumes to
exactly the rows an uninterrupted run would give (no duplicates, none lost).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi.inference.noise import survey_noise_model
from provabgs_sbi.io.h5store import commit, open_store
from provabgs_sbi.model.observation import SDSS
from provabgs_sbi.model.parameters import N_PARAMS, N_WARPED, to_warped
from provabgs_sbi.model.photometry import nanomaggies_to_mag
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.survey import SDSS_UGRIZ, Survey, get_survey

#: Column names of x in an SDSS ugriz training set.
X_NAMES = SDSS.names


@dataclass(frozen=True)
class TrainingSetConfig:
    """How a training set is drawn (stored in the file and in flow manifests).

    Attributes
    ----------
    n : int
        Accepted rows wanted.
    seed : int
    prior : str
        ``"default"`` or ``"sedflow"``.
    z_range : tuple
        Redshifts z ~ U(z_range); z = 0 exactly is replaced by 1e-4 (photometry needs z > 0).
    chunk : int
        Prior draws per chunk.
    survey : Survey, str or dict
        The bands and filters of x (a :class:`~provabgs_sbi.model.survey.Survey`, a shipped
        name, a JSON file or a :meth:`Survey.to_dict` dict; default SDSS ugriz). Stored
        as a Survey.
    """

    n: int
    seed: int = 0
    prior: str = "default"
    z_range: tuple = (0.0, 0.2)
    chunk: int = 50_000
    survey: object = SDSS_UGRIZ

    def __post_init__(self):
        if self.n < 1 or self.chunk < 1:
            raise ValueError("n and chunk must be >= 1")
        if not 0 <= self.z_range[0] < self.z_range[1]:
            raise ValueError(f"z_range must satisfy 0 <= zmin < zmax, got {self.z_range}")
        Prior(self.prior)  # validates the name
        survey = (Survey.from_dict(self.survey) if isinstance(self.survey, dict)
                  else get_survey(self.survey))
        object.__setattr__(self, "survey", survey)

    def to_dict(self):
        """JSON-able dict, as stored in the file's settings and in flow manifests.

        The survey appears only when it is not SDSS ugriz, so the settings of ugriz files
        are the same as those written before surveys existed (and files of both kinds are
        made alike, :func:`made_alike`).
        """
        d = {k: v for k, v in asdict(self).items() if k != "survey"}
        d["z_range"] = list(self.z_range)
        if self.survey != SDSS_UGRIZ:
            d["survey"] = self.survey.to_dict()
        return d


def training_set_survey(settings: dict) -> Survey:
    """The survey of a training-set file from its settings (SDSS ugriz when none is
    recorded, as in every file made before surveys existed)."""
    d = settings["config"].get("survey")
    return SDSS_UGRIZ if d is None else Survey.from_dict(d)


def simulate_chunk(emulator, noise, prior: Prior, n_draws: int, rng, z_range, backend="numpy",
                   range_bands=None):
    """Draw ``n_draws`` galaxies and return the accepted ones.

    Parameters
    ----------
    emulator : Emulator
        Its filters are the bands of x (:meth:`Emulator.with_filters`).
    noise : NoiseModel
        In the same bands.
    range_bands : sequence of str, optional
        Bands whose noiseless magnitudes must lie in the noise model's range (default all).

    Returns
    -------
    dict of ndarray
        ``theta`` (M, 12), ``theta_warped`` (M, 11), ``x`` (M, 2 n_bands + 1),
        ``mag_true`` (M, n_bands).
    """
    theta = prior.sample(n_draws, seed=rng)
    z = rng.uniform(z_range[0], z_range[1], n_draws)
    z = np.where(z <= 0, 1e-4, z)
    mags = nanomaggies_to_mag(emulator.photometry(theta, z, backend=backend))
    noisy, sigma, _ = noise.add_noise(mags, rng)
    cols = np.isin(noise.bands, list(noise.bands if range_bands is None else range_bands))
    with np.errstate(invalid="ignore"):   # other bands: undetected, or (rarely) a flux of 0
        ok = np.all(np.isfinite(sigma[:, cols]) & (sigma[:, cols] > 0), axis=1)
    ok &= noise.in_range(mags, range_bands)   # finite magnitudes and errors: finite noisy ones
    x = np.column_stack([noisy, sigma, z])[ok]
    return {"theta": theta[ok], "theta_warped": to_warped(theta[ok]), "x": x, "mag_true": mags[ok]}


def make_training_set(path, config: TrainingSetConfig, emulator, noise=None, emulator_id: str = "",
                      backend: str = "auto", progress: bool = True) -> Path:
    """Create or resume the training-set file ``path``.

    Parameters
    ----------
    emulator : Emulator
        Photometry is taken in ``config.survey``'s filters (:meth:`Emulator.with_filters`).
    noise : NoiseModel, optional
        Default: the survey's own (:func:`provabgs_sbi.inference.noise.survey_noise_model`;
        for SDSS ugriz the committed ``data/noise_model_sdss.ecsv``). Its bands must be
        the survey's.
    emulator_id : str
        Recorded in the file (e.g. the emulator manifest's SHA-256).
    backend : {"auto", "numpy", "tf"}
        "auto" is TensorFlow (float32; on a GPU when one is visible): on the 2-core CPU it
        is ~6x the numpy path for ugriz at batch 10^4. The two give fluxes within 2e-5 of
        each other, far below the added noise, but not the same bits: a file is
        reproduced exactly only with the backend that wrote it.

    Raises
    ------
    ValueError
        If ``path`` exists with different settings, or the noise model's bands are not the
        survey's.
    """
    survey = config.survey
    noise = noise if noise is not None else survey_noise_model(survey)
    if tuple(noise.bands) != survey.bands:
        raise ValueError(f"the noise model's bands {list(noise.bands)} are not survey "
                         f"{survey.name!r}'s {list(survey.bands)}")
    emulator = emulator.with_filters(survey)
    layout = survey.layout
    if backend == "auto":
        backend = "tf"
    if backend not in ("numpy", "tf"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'tf', got {backend!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"config": config.to_dict(), "emulator": emulator_id,
                           "noise_provenance": str(noise.provenance.get("source_sha256", ""))},
                          sort_keys=True)
    prior = Prior(config.prior)
    widths = {"theta": N_PARAMS, "theta_warped": N_WARPED, "x": layout.size,
              "mag_true": layout.n_bands}

    def create(fh):
        for name, width in widths.items():
            fh.create_dataset(name, shape=(0, width), maxshape=(None, width), dtype="f8",
                              chunks=(min(config.chunk, 65536), width))
        fh.attrs["progress"] = json.dumps({"chunks_done": 0, "n_rows": 0})
        fh.attrs["x_names"] = json.dumps(list(layout.names))

    with open_store(path, settings, create) as fh:
        state = json.loads(fh.attrs["progress"])
        for name in widths:   # drop uncommitted rows
            fh[name].resize(state["n_rows"], axis=0)
        bar = None
        if progress:
            from provabgs_sbi.progress import progress_bar
            bar = progress_bar(total=config.n, initial=min(state["n_rows"], config.n),
                               desc="training set", unit="gal")
        while state["n_rows"] < config.n:
            k = state["chunks_done"]
            rng = np.random.default_rng([config.seed, k])
            rows = simulate_chunk(emulator, noise, prior, config.chunk, rng, config.z_range, backend,
                                  range_bands=survey.required_bands)
            n_old = state["n_rows"]
            m = min(len(rows["x"]), config.n - n_old)
            for name, arr in rows.items():
                fh[name].resize(n_old + m, axis=0)
                fh[name][n_old:] = arr[:m]
            state = {"chunks_done": k + 1, "n_rows": n_old + m}
            commit(fh, progress=json.dumps(state))   # chunk and rows in one write
            if bar is not None:
                bar.update(m)
        if bar is not None:
            bar.close()
    return path


def read_settings(path) -> dict:
    """The settings of a training-set file (its recipe: config, emulator, noise model),
    without reading its rows."""
    with h5py.File(path, "r") as fh:
        return json.loads(fh.attrs["settings"])


def load_training_set(path):
    """(theta (N, 12), theta_warped (N, 11), x (N, 2 n_bands + 1), settings dict) of a
    training-set file (:func:`training_set_survey` of the settings names its bands)."""
    with h5py.File(path, "r") as fh:
        return (fh["theta"][:], fh["theta_warped"][:], fh["x"][:],
                json.loads(fh.attrs["settings"]))


def made_alike(a: dict, b: dict) -> bool:
    """Whether two training-set files' settings differ at most in seed, size and chunking:
    the same prior, redshift range, emulator and noise model, so their galaxies are draws
    from one distribution."""
    def recipe(settings):
        cfg = {k: v for k, v in settings["config"].items() if k not in ("seed", "n", "chunk")}
        return {**settings, "config": cfg}

    return recipe(a) == recipe(b)


def check_held_out(path, settings: dict, training_settings) -> None:
    """Raise ValueError if the file at ``path`` (its ``settings``) shares a seed with any of
    ``training_settings``: its galaxies would not be held out."""
    seeds = sorted({s["config"]["seed"] for s in training_settings})
    if settings["config"]["seed"] in seeds:
        raise ValueError(f"{path} has seed {settings['config']['seed']}, which a training set "
                         f"used ({seeds}): its galaxies are not held out")


def emulator_ids(training_settings) -> list[str]:
    """Manifest SHA-256 of the emulators training-set files (their settings) were made
    with, sorted, without the unrecorded ones."""
    return sorted({s.get("emulator") or "" for s in training_settings} - {""})


def check_emulator(emulator_id: str, training_settings, what: str) -> None:
    """Raise ValueError if ``emulator_id`` (an emulator manifest's SHA-256) is not the
    emulator that ``training_settings`` (training-set files' settings) were made with.

    Galaxies from another emulator are draws from another simulator, so a calibration test
    with them is not a test of the flow. Ids that are not recorded ("" on either side, e.g.
    an emulator built in memory) are not checked.
    """
    known = emulator_ids(training_settings)
    if emulator_id and known and emulator_id not in known:
        raise ValueError(
            f"{what} is not the emulator the posterior's training set was made with "
            f"(manifest SHA-256 {emulator_id[:12]}... against {[k[:12] for k in known]}): "
            "its galaxies would not be drawn like the training set. Use the flow's own "
            "emulator, or allow another one explicitly (allow_other_emulator=True, "
            "validate --other-emulator) to measure emulator systematics")


def load_training_sets(paths):
    """Several complete training-set files made alike but for their seed and size, joined.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        Files from :func:`make_training_set`. They must share the prior, the redshift
        range, the emulator and the noise model, and have distinct seeds (distinct seeds
        draw independent galaxies, so no galaxy appears twice).

    Returns
    -------
    theta : ndarray of shape (N, 12)
    theta_warped : ndarray of shape (N, 11)
    x : ndarray of shape (N, 11)
    settings : list of dict
        Each file's settings, in the order given.

    Raises
    ------
    ValueError
        A file is incomplete (an interrupted ``trainset make``), the files were made
        differently, or two share a seed.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("no training-set files given")
    parts = [load_training_set(p) for p in paths]

    for p, (_, _, x, settings) in zip(paths, parts):
        if len(x) != settings["config"]["n"]:
            raise ValueError(f"{p} holds {len(x):,} of its {settings['config']['n']:,} "
                             "galaxies: finish it first (rerun the same trainset make)")
        if not made_alike(settings, parts[0][3]):
            raise ValueError(f"{p} was made differently from {paths[0]}: "
                             f"{settings} against {parts[0][3]}")
    seeds = [s["config"]["seed"] for *_, s in parts]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"training-set files share a seed ({seeds}): their galaxies repeat")
    return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]),
            np.concatenate([q[2] for q in parts]), [q[3] for q in parts])


def load_mag_true(paths) -> np.ndarray:
    """The noiseless magnitudes (N, n_bands) of training-set files, joined in the order given
    (the rows of :func:`load_training_sets` of the same files)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        with h5py.File(p, "r") as fh:
            out.append(fh["mag_true"][:])
    return np.concatenate(out)

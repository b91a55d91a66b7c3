"""The :class:`Emulator`: a Speculator network for the NMF part of the SED, plus the burst
evaluated from the SSP table.

Design: the networks emulate ln L_lambda per Msun formed of the **NMF part only** (no
burst, unit mass) **before diffuse dust**, from 7 inputs [u1, u2, u3, log10 gamma1,
log10 gamma2, tau_bc, t_age(z)] (``input_mode="warped"``), or those and log10(beta1 + 1e-5)
(``"warped_logbeta1"``). Two parts of the model are exact and cheap, so they are
not learned:

- diffuse dust multiplies every population by the same transmission exp(-tau_ISM(lambda)),
  so ln L = ln L_(no ISM dust) - tau_ISM(lambda; tau_ism, n_dust) exactly; it is applied
  analytically (this removes two inputs and the wavelength tilt from what the network
  has to learn);
- the burst is a single SSP, read from the same (rebinned) SSP table as the direct model;
- with ``lines`` (a :class:`~provabgs_sbi.emulator.lines.NebularLines`), the network
  emulates the NMF part without its emission lines and the lines are added exactly.

The total is 10^logM T_ISM [(1 - fburst) L_NMF + fburst L_burst], with fburst = 0 when
tburst >= t_age (:func:`~provabgs_sbi.model.assembly.assemble_sed`). (PROVABGS's pretrained FSPS emulator, imported with
:meth:`Emulator.from_speculator_npz`, has dust inside its network: ``input_mode="provabgs"``.)
"""
from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path

import numpy as np

from provabgs_sbi.emulator.fixed_redshift import FixedRedshiftPhotometry
from provabgs_sbi.emulator.inputs import (ANALYTIC_DUST_MODES, INPUT_MODES, INPUT_NAMES,
                                          nmf_inputs)
from provabgs_sbi.emulator.lines import NebularLines
from provabgs_sbi.emulator.network import SpeculatorNetwork
from provabgs_sbi.emulator.tf_path import TFEmulatorPath
from provabgs_sbi.io.artifacts import read_manifest, write_manifest
from provabgs_sbi.io.atomic import atomic_path, atomic_write_text
from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.model import cosmology
from provabgs_sbi.model.assembly import assemble_sed
from provabgs_sbi.model.dust import DiffuseDust
from provabgs_sbi.model.parameters import check_redshift, check_theta
from provabgs_sbi.model.photometry import FILTER_NAMES, Photometer
from provabgs_sbi.model.sed_model import SEDConfig, SEDModel
from provabgs_sbi.model.sfh import burst_metallicity, effective_fburst

WEIGHTS_FILE = "weights.npz"
#: Smallest batch for which ``Emulator.photometry(backend="auto")`` takes the TensorFlow
#: path: measured crossover on the 2-core CPU (numpy 7.1k, TF 7.1k SEDs/s at 32 galaxies;
#: TF 1.6x at 128, 6x at 2,048).
TF_MIN_BATCH = 32


@functools.lru_cache(maxsize=None)
def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


class Emulator:
    """Neural emulator of the PROVABGS SED model.

    Parameters
    ----------
    networks : list of SpeculatorNetwork
        Wavelength bins, in ascending wavelength; their grids are concatenated.
    input_mode : {"warped", "warped_logbeta1", "provabgs"}
        How the network inputs are formed (see :data:`INPUT_NAMES`); ``"warped"`` and
        ``"warped_logbeta1"`` networks exclude diffuse dust, which is then applied
        analytically.
    burst_model : SEDModel or None
        Supplies the burst SSP (its table must be on the emulator's grid). Without it,
        only galaxies with an effective fburst of 0 can be evaluated.
    info : dict
        Configuration and provenance (saved in the manifest).
    filters : tuple of str
        speclite filters for :meth:`photometry`.
    lines : NebularLines, optional
        Emission lines added exactly to the network's NMF part (an emulator trained with
        ``exact_lines``); None when the network emulates them (or the SED has none).

    Examples
    --------
    >>> emu = Emulator.load("emulator/bc03")          # verifies the manifest's hashes
    >>> wave, lum = emu.spectrum(theta, z)             # same contract as SEDModel.spectrum
    >>> flux = emu.photometry(theta, z)                # same contract as SEDModel.photometry
    """

    def __init__(self, networks, input_mode="warped", burst_model=None, info=None,
                 filters: tuple = FILTER_NAMES, lines=None):
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}")
        self.networks = list(networks)
        self.input_mode = input_mode
        self.wave = np.concatenate([n.wave for n in self.networks])
        if np.any(np.diff(self.wave) <= 0):
            raise ValueError("the networks' wavelength grids must ascend and not overlap")
        self.burst_model = burst_model
        if burst_model is not None and not np.allclose(burst_model.wave, self.wave, rtol=1e-10):
            raise ValueError("the burst model's wavelength grid differs from the emulator's")
        self.info = dict(info or {})
        if lines is not None and not np.allclose(lines.wave, self.wave, rtol=1e-10):
            raise ValueError("the lines' wavelength grid differs from the emulator's")
        if lines is not None and input_mode not in ANALYTIC_DUST_MODES:
            raise ValueError("exact lines need a network without diffuse dust "
                             f"(input_mode in {ANALYTIC_DUST_MODES})")
        #: Exact emission lines of the NMF part (None: none, or emulated by the network).
        self.lines = lines
        #: Diffuse dust outside the network (our emulators) or inside it (PROVABGS's).
        self.analytic_ism_dust = input_mode in ANALYTIC_DUST_MODES
        self.z_range = tuple(self.info.get("z_range", (0.0, cosmology.Z_MAX)))
        self._photometer = Photometer(self.wave, filters=filters,
                                      dz=self.info.get("photometry_dz", 1e-3))
        self._dust = DiffuseDust(self.wave)
        self._tf = None
        #: SHA-256 of the manifest it was loaded from (None when not loaded from a folder):
        #: what training-set files record as their emulator.
        self.manifest_sha256 = None
        #: The folder it was loaded from (None otherwise): Dask workers reload it from there.
        self.folder = None

    # -------------------------------------------------------------- inputs
    def _check(self, theta, z, allow_zero=True):
        theta = check_theta(theta)
        z = check_redshift(z, len(theta), allow_zero=allow_zero)
        lo, hi = self.z_range
        bad = (z < lo) | (z > hi)
        if np.any(bad):
            i = int(np.nonzero(bad)[0][0])
            raise ValueError(f"invalid redshift: row {i}: z = {float(z[i])!r} is outside the "
                             f"emulator's trained range [{lo}, {hi}]")
        if self.analytic_ism_dust and np.any(theta[:, 7:9] <= 0):
            i = int(np.nonzero(np.any(theta[:, 7:9] <= 0, axis=1))[0][0])
            raise ValueError(f"invalid parameters: row {i}: gamma1, gamma2 must be > 0 for the "
                             "emulator (it works in log10 gamma)")
        return theta, z

    # -------------------------------------------------------------- numpy path
    def ln_spectrum_nmf(self, x) -> np.ndarray:
        """The network's NMF-part ln L_lambda per Msun formed, numpy float64: (N, n_in)
        inputs -> (N, n_wave); without the emission lines when :attr:`lines` adds them."""
        return np.concatenate([n.ln_spectrum(x) for n in self.networks], axis=1)

    def nmf_spectrum(self, theta, t_age) -> np.ndarray:
        """NMF-part L_lambda per Msun formed before diffuse dust, lines included, numpy
        float64, shape (N, n_wave)."""
        lum = np.exp(self.ln_spectrum_nmf(nmf_inputs(theta, t_age, self.input_mode)))
        if self.lines is not None:
            self.lines.add_to(lum, theta, t_age)
        return lum

    def burst_ssp_model(self):
        """The SEDModel that supplies the burst SSP; raises when the emulator has none."""
        if self.burst_model is None:
            raise ValueError("this emulator has no burst model (e.g. the PROVABGS import emulates "
                             "the NMF part only): fburst must be 0 or tburst >= t_age(z)")
        return self.burst_model

    def burst_spectra(self, theta, fburst, ism_transmission, pixels: slice | None = None,
                      dtype=np.float64):
        """Burst SSPs per Msun formed of the rows with a burst, ready for
        :func:`~provabgs_sbi.model.assembly.assemble_sed`.

        Parameters
        ----------
        theta : ndarray of shape (N, 12)
        fburst : ndarray of shape (N,)
            Effective burst fractions.
        ism_transmission : ndarray of shape (N, n_pix)
            Diffuse-dust transmission, applied to the burst when the network's NMF part
            includes diffuse dust (``input_mode="provabgs"``).
        pixels : slice, optional
            Wavelength pixels (default all).
        dtype : numpy dtype

        Returns
        -------
        rows : ndarray of int, shape (M,)
            Rows with fburst > 0.
        burst : ndarray of shape (M, n_pix) in ``dtype``, or None when M = 0
            L_lambda, Lsun/Angstrom per Msun formed.
        """
        rows = np.nonzero(fburst > 0)[0]
        if not len(rows):
            return rows, None
        bm = self.burst_ssp_model()
        z_burst = burst_metallicity(theta[rows, 7:9], theta[rows, 6], bm.bases)
        burst = bm.ssp(theta[rows, 6], z_burst, pixels).astype(dtype)
        if not self.analytic_ism_dust:
            burst *= ism_transmission[rows]
        return rows, burst

    def _spectrum_numpy(self, theta, z):
        t_age = cosmology.age_gyr(z)
        lum = self.nmf_spectrum(theta, t_age)
        fb = effective_fburst(theta[:, 5], theta[:, 6], t_age)
        trans = self._dust.transmission(theta[:, 10], theta[:, 11])
        rows, burst = self.burst_spectra(theta, fb, trans)
        return assemble_sed(lum, fb, rows, burst, trans if self.analytic_ism_dust else None,
                            theta[:, 0])

    def spectrum(self, theta, z, backend: str = "numpy"):
        """Rest-frame spectra, same contract as :meth:`SEDModel.spectrum`.

        Parameters
        ----------
        theta : ndarray of shape (N, 12) or (12,)
        z : float or ndarray of shape (N,)
        backend : {"numpy", "tf"}
            numpy float64 or TensorFlow float32 (GPU when present).

        Returns
        -------
        wave : ndarray of shape (n_wave,)
            Angstrom.
        lum : ndarray of shape (N, n_wave)
            L_lambda, Lsun/Angstrom.
        """
        theta, z = self._check(theta, z)
        if backend == "numpy":
            return self.wave, self._spectrum_numpy(theta, z)
        if backend == "tf":
            return self.wave, self._tf_path().spectrum(theta, z).numpy().astype(np.float64)
        raise ValueError("backend must be 'numpy' or 'tf'")

    def photometry(self, theta, z, backend: str = "auto", chunk: int = 4096) -> np.ndarray:
        """AB nanomaggies (N, n_bands), same contract as :meth:`SEDModel.photometry`.

        Parameters
        ----------
        theta : ndarray of shape (N, 12) or (12,)
        z : float or ndarray of shape (N,)
        backend : {"auto", "numpy", "tf"}
            "auto" (default) is the fastest path for the call: TensorFlow float32 from
            :data:`TF_MIN_BATCH` galaxies on when TensorFlow is installed (6-7x the numpy
            path from a few thousand galaxies on the 2-core CPU; ``benchmarks/bench_emulator.py``),
            numpy float64 otherwise (below that TensorFlow's per-call cost dominates). The
            two agree to ~2e-6 mag.
        chunk : int
            Galaxies per numpy batch (bounds memory).
        """
        theta, z = self._check(theta, z, allow_zero=False)
        self._photometer.check_coverage(z)
        if backend == "auto":
            backend = "tf" if len(theta) >= TF_MIN_BATCH and tensorflow_available() else "numpy"
        if backend == "tf":
            return self._tf_path().photometry(theta, z)
        if backend != "numpy":
            raise ValueError("backend must be 'auto', 'numpy' or 'tf'")
        out = np.empty((len(theta), self._photometer.n_bands))
        for s in range(0, len(theta), chunk):
            sl = slice(s, s + chunk)
            out[sl] = self._photometer.nanomaggies(self._spectrum_numpy(theta[sl], z[sl]), z[sl])
        return out

    def at_redshift(self, z: float, dtype=np.float32):
        """A :class:`~provabgs_sbi.emulator.fixed_redshift.FixedRedshiftPhotometry`: ugriz of
        many parameter sets at one redshift, the same numbers as :meth:`photometry` with the
        per-call work that depends only on z done once (what an MCMC of one galaxy needs).
        ``dtype`` float32 (default) agrees with :meth:`photometry` to ~1e-6, float64 to
        rounding."""
        return FixedRedshiftPhotometry(self, z, dtype)

    @property
    def filters(self) -> tuple:
        """The filters of :meth:`photometry` (speclite names or response-curve files)."""
        return self._photometer.filters

    def with_filters(self, filters) -> "Emulator":
        """This emulator with other filters for :meth:`photometry` (and :meth:`at_redshift`).

        The networks, burst model and provenance are shared, not copied; only the
        photometry changes. Filters outside the emulator's wavelength grid at a galaxy's
        redshift are refused when photometry is asked for (``Photometer.check_coverage``).

        Parameters
        ----------
        filters : sequence of str, or Survey
            speclite filter names (or response-curve files), or a
            :class:`~provabgs_sbi.model.survey.Survey` whose filters to take.

        Returns
        -------
        Emulator
        """
        filters = tuple(getattr(filters, "filters", filters))
        if filters == self.filters:
            return self
        emu = copy.copy(self)
        emu._photometer = Photometer(self.wave, filters=filters, dz=self._photometer.dz)
        emu._tf = None
        return emu

    def _tf_path(self):
        if self._tf is None:
            self._tf = TFEmulatorPath(self)
        return self._tf

    # -------------------------------------------------------------- I/O
    def save(self, folder, metrics=None, inputs=None, recipe: str | None = None) -> Path:
        """Write weights (.npz), ``emulator.json`` and the manifest into ``folder``, each
        file atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, net in enumerate(self.networks):
            arrays.update(net.to_arrays(prefix=f"bin{i}_"))
        if self.lines is not None:
            arrays.update(self.lines.to_arrays())
        with atomic_path(folder / WEIGHTS_FILE) as tmp, open(tmp, "wb") as fh:
            # floats as float64; integer and boolean arrays (line pixels) as they are
            np.savez(fh, **{k: (a.astype(np.float64) if a.dtype.kind == "f" else a)
                            for k, a in ((k, np.asarray(v)) for k, v in arrays.items())})
        meta = {"input_mode": self.input_mode, "n_bins": len(self.networks),
                "input_names": INPUT_NAMES[self.input_mode], **self.info}
        atomic_write_text(folder / "emulator.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if recipe is not None:
            atomic_write_text(folder / "RECIPE.md", recipe)
        write_manifest(folder, "emulator", config=meta, inputs=inputs or {}, metrics=metrics or {})
        return folder

    @classmethod
    def load(cls, folder, sps=None) -> "Emulator":
        """Load an emulator folder, verifying the manifest's SHA-256 of every file.

        Parameters
        ----------
        folder : path-like
            e.g. ``"emulator/bc03"``.
        sps : str or SSPTable, optional
            SSP table for the burst; default the configuration named in the manifest. Its
            content hash must equal the one the emulator was trained on.

        Raises
        ------
        ValueError
            A file differs from the manifest, or the SSP table is not the one it was
            trained on.
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        meta = json.loads((folder / "emulator.json").read_text())
        with np.load(folder / WEIGHTS_FILE) as arrays:
            arrays = dict(arrays)
        networks = [SpeculatorNetwork.from_arrays(arrays, prefix=f"bin{i}_")
                    for i in range(meta["n_bins"])]
        burst = None
        if meta.get("sed_config") is not None:
            burst = SEDModel(sps if sps is not None else meta["sps"],
                             config=SEDConfig(**meta["sed_config"]))
            want = manifest["inputs"].get("ssp_table_hash")
            if want and burst.ssp_hash != want:
                raise ValueError(
                    f"SSP table mismatch: the emulator in {folder} was trained on the table with "
                    f"content hash {want[:16]}..., but {meta['sps']!r} gives {burst.ssp_hash[:16]}...; "
                    "rebuild the table it was trained on or retrain the emulator")
        wave = np.concatenate([n.wave for n in networks])
        lines = NebularLines.from_arrays(arrays, wave,
                                         manifest["inputs"].get("lines_ssp_table_hash", ""))
        emu = cls(networks, input_mode=meta["input_mode"], burst_model=burst, info=meta,
                  lines=lines)
        emu.manifest_sha256 = sha256_file(folder / "manifest.json")
        emu.folder = folder
        return emu

    @classmethod
    def from_speculator_npz(cls, paths, burst_model=None) -> "Emulator":
        """Import Speculator-format networks saved as .npz (e.g. PROVABGS's pretrained FSPS
        NMF emulator, model-spec 3): one file per wavelength bin with keys W0.., b0..,
        alpha0.., beta0.., param/pca/spectrum shift and scale, ``pca_basis`` and ``wave``.

        The PROVABGS inputs are [u1, u2, u3, gamma1, gamma2 (linear), dust1, dust2,
        dust_index, t_age]; no burst emulator exists for it, so ``burst_model`` is None
        unless an SSP model on the same grid is supplied.
        """
        paths = sorted((Path(p) for p in paths), key=lambda p: float(np.load(p)["wave"][0]))
        networks = []
        for p in paths:
            with np.load(p) as arrays:
                networks.append(SpeculatorNetwork.from_arrays(dict(arrays)))
        info = {"source": [p.name for p in paths], "sps": "fsps (PROVABGS pretrained, NMF only)",
                "z_range": (0.0, 0.6)}
        return cls(networks, input_mode="provabgs", burst_model=burst_model, info=info)

"""Empirical photometric noise model p(sigma_m | m), per band (SEDflow "toy" noise, model-spec 2.1.3).

For each of u, g, r, i, z independently, in magnitude space:

1. **Bins.** The real galaxies' AB magnitudes are cut into fixed-width bins
   (``NoiseConfig.bin_width``, default 0.2 mag, on a grid aligned to multiples of the
   width) across the sample's full magnitude range. Sparse bins are merged with their
   neighbours, walking from bright to faint, until every bin holds at least
   ``NoiseConfig.min_count`` galaxies (default 100); a sparse remainder at the faint end
   joins the last bin. The centres are wide-bin robust: each bin's centre is the
   **median magnitude** of its galaxies, so the merged tail bins sit where their galaxies
   are.
2. **Per-bin statistics.** mu = median of sigma_m in the bin; s = its scatter. By default
   s is the robust ``1.4826 x MAD`` (median absolute deviation), not the standard
   deviation SEDflow used (``scatter="std"`` gives that). Reason: at fixed magnitude the
   real sigma_m have a long tail towards large errors (blends, bad sky, extended
   galaxies; in the SDSS sample a few u errors reach 18 mag), which inflates the standard
   deviation to ~1.5-2x the width of the bulk, so a Gaussian with that width would put
   too many draws far below the real errors and produce many negative sigmas. The MAD
   matches the central 68 per cent of the real distribution.
3. **Interpolation.** mu(m) and s(m) are linear in m between bin centres and constant
   beyond the first and last centre (``numpy.interp``).
4. **Draws.** sigma' ~ N(mu(m), s(m)); draws with sigma' <= 0 are invalid (SEDflow drops
   such samples), and a noisy magnitude is m + sigma' eps, eps ~ N(0, 1).

The model also records each band's magnitude range in the real sample (``mag_range``),
which the training-set builder uses to drop simulated galaxies outside the real range
(model-spec 2.1.4).

The default model (:func:`default_noise_model`) was fitted to the 10,000-galaxy SDSS
sample of :func:`provabgs_sbi.io.catalog.load_sdss_sample` and is committed as
``data/noise_model_sdss.ecsv`` (see ``data/README.md``); ``python -m
provabgs_sbi.workflows.noise_fit`` refits it (:mod:`provabgs_sbi.workflows.noise_fit`), and
:func:`provabgs_sbi.plots.noise.plot_noise_model` draws a model against the real errors.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from provabgs_sbi._version import __version__
from provabgs_sbi.flags import CATALOG_FLAG_NAMES
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.io.paths import default_noise_file
from provabgs_sbi.model.photometry import BANDS, mag_to_nanomaggies
from provabgs_sbi.model.survey import get_survey

#: The committed default model (fitted to the kcorrect SDSS sample).
DEFAULT_NOISE_FILE = default_noise_file()
#: 1 / Phi^-1(3/4): scales a median absolute deviation to a Gaussian standard deviation.
MAD_TO_SIGMA = 1.4826
FORMAT_NAME = "provabgs_sbi.noise.NoiseModel"
FORMAT_VERSION = 1
SCATTERS = ("mad", "std")


@dataclass(frozen=True)
class NoiseConfig:
    """How :meth:`NoiseModel.fit` bins and summarises the real errors.

    Parameters
    ----------
    bin_width : float
        Width of the fine magnitude bins, mag (> 0).
    min_count : int
        Fewest galaxies per bin after merging (>= 5).
    scatter : {"mad", "std"}
        Per-bin scatter s: ``1.4826 x MAD`` (robust, default) or the standard deviation
        (ddof=1, SEDflow's choice).
    min_snr : float or None
        Extra cut: use only rows with flux S/N above this in all five bands (default
        None: no S/N cut, only rows without flags are used).
    """

    bin_width: float = 0.2
    min_count: int = 100
    scatter: str = "mad"
    min_snr: float | None = None

    def __post_init__(self):
        if not (np.isfinite(self.bin_width) and self.bin_width > 0):
            raise ValueError(f"bin_width must be a positive number of mag, got {self.bin_width!r}")
        if int(self.min_count) != self.min_count or self.min_count < 5:
            raise ValueError(f"min_count must be an integer >= 5, got {self.min_count!r}")
        if self.scatter not in SCATTERS:
            raise ValueError(f"scatter must be one of {SCATTERS}, got {self.scatter!r}")
        if self.min_snr is not None and not (np.isfinite(self.min_snr) and self.min_snr >= 0):
            raise ValueError(f"min_snr must be None or a number >= 0, got {self.min_snr!r}")


def merged_bin_edges(m: np.ndarray, bin_width: float, min_count: int) -> np.ndarray:
    """Magnitude bin edges: fixed-width bins merged until each holds ``min_count`` values.

    Parameters
    ----------
    m : ndarray of shape (n,)
        Finite magnitudes.
    bin_width : float
        Width of the fine grid, mag; the grid edges are multiples of it.
    min_count : int
        Fewest values per returned bin (all values in one bin if ``n < 2 min_count``).

    Returns
    -------
    ndarray of shape (n_bins + 1,)
        Increasing edges; the first is <= min(m) and the last > max(m).
    """
    m = np.asarray(m, dtype=np.float64)
    lo = np.floor(m.min() / bin_width) * bin_width
    n_fine = int(np.floor((m.max() - lo) / bin_width)) + 1
    fine = np.round(lo + bin_width * np.arange(n_fine + 1), 10)  # tidy decimal edges
    fine[0] = min(fine[0], m.min())
    if fine[-1] <= m.max():
        fine[-1] = np.nextafter(m.max(), np.inf)
    counts = np.histogram(m, bins=fine)[0]
    edges = [fine[0]]
    acc = 0
    for k, c in enumerate(counts):
        acc += c
        if acc >= min_count:
            edges.append(fine[k + 1])
            acc = 0
    if acc > 0 or len(edges) == 1:  # faint remainder joins the last bin
        if len(edges) > 1:
            edges[-1] = fine[-1]
        else:
            edges.append(fine[-1])
    return np.asarray(edges)


def _bin_index(m: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)


def _scatter(x: np.ndarray, kind: str) -> float:
    if kind == "mad":
        return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))
    return float(np.std(x, ddof=1))


def _readonly(a, dtype=np.float64) -> np.ndarray:
    a = np.array(a, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass(frozen=True, eq=False)
class NoiseModel:
    """Per-band p(sigma_m | m) = N(mu(m), s(m)), binned and interpolated (see the module docstring).

    Attributes
    ----------
    edges : tuple of 5 ndarray of shape (n_bins_b + 1,)
        Magnitude bin edges per band (AB mag).
    centres : tuple of 5 ndarray of shape (n_bins_b,)
        Median magnitude of the galaxies in each bin; the interpolation nodes.
    mu : tuple of 5 ndarray of shape (n_bins_b,)
        Median magnitude error in each bin, mag.
    s : tuple of 5 ndarray of shape (n_bins_b,)
        Scatter of the magnitude error in each bin, mag (``config.scatter``).
    counts : tuple of 5 ndarray of shape (n_bins_b,), int
        Galaxies per bin.
    mag_range : ndarray of shape (5, 2)
        [min, max] AB magnitude per band of the galaxies the model was fitted to.
    config : NoiseConfig
    provenance : dict
        Source, its SHA-256, cuts, row counts, creation date, package version.
    bands : tuple of str
    """

    edges: tuple
    centres: tuple
    mu: tuple
    s: tuple
    counts: tuple
    mag_range: np.ndarray
    config: NoiseConfig = field(default_factory=NoiseConfig)
    provenance: dict = field(default_factory=dict)
    bands: tuple = BANDS

    def __post_init__(self):
        nb = len(self.bands)
        for name in ("edges", "centres", "mu", "s", "counts"):
            val = getattr(self, name)
            if len(val) != nb:
                raise ValueError(f"{name} needs one array per band ({nb}), got {len(val)}")
        edges, centres, mu, s, counts = [], [], [], [], []
        for b, band in enumerate(self.bands):
            e = np.asarray(self.edges[b], dtype=np.float64)
            c = np.asarray(self.centres[b], dtype=np.float64)
            n = len(c)
            arrs = {"mu": np.asarray(self.mu[b], dtype=np.float64),
                    "s": np.asarray(self.s[b], dtype=np.float64),
                    "counts": np.asarray(self.counts[b])}
            if n < 1 or e.shape != (n + 1,) or any(a.shape != (n,) for a in arrs.values()):
                raise ValueError(f"band {band}: need edges (n+1,) and centres/mu/s/counts (n,), "
                                 f"got {e.shape}, {c.shape}, "
                                 + ", ".join(str(a.shape) for a in arrs.values()))
            if np.any(np.diff(e) <= 0) or np.any(np.diff(c) < 0):
                raise ValueError(f"band {band}: edges must increase and centres not decrease")
            if not (np.all(np.isfinite(arrs["mu"])) and np.all(np.isfinite(arrs["s"]))
                    and np.all(arrs["s"] >= 0)):
                raise ValueError(f"band {band}: mu and s must be finite and s >= 0")
            edges.append(_readonly(e))
            centres.append(_readonly(c))
            mu.append(_readonly(arrs["mu"]))
            s.append(_readonly(arrs["s"]))
            counts.append(_readonly(arrs["counts"], dtype=np.int64))
        mag_range = np.asarray(self.mag_range, dtype=np.float64)
        if mag_range.shape != (nb, 2) or np.any(mag_range[:, 0] > mag_range[:, 1]):
            raise ValueError(f"mag_range must be ({nb}, 2) [min, max] rows, got {mag_range}")
        if not isinstance(self.config, NoiseConfig):
            raise TypeError(f"config must be a NoiseConfig, got {type(self.config).__name__}")
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "centres", tuple(centres))
        object.__setattr__(self, "mu", tuple(mu))
        object.__setattr__(self, "s", tuple(s))
        object.__setattr__(self, "counts", tuple(counts))
        object.__setattr__(self, "mag_range", _readonly(mag_range))
        object.__setattr__(self, "bands", tuple(self.bands))
        object.__setattr__(self, "provenance", dict(self.provenance))

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, catalog: PhotometryCatalog, config: NoiseConfig | None = None) -> "NoiseModel":
        """Fit the model to a catalog's real magnitude errors.

        Parameters
        ----------
        catalog : PhotometryCatalog
            Only rows with no flag (``catalog.valid``) are used, and, with
            ``config.min_snr``, only those with S/N above it in every band.
        config : NoiseConfig, optional

        Returns
        -------
        NoiseModel
        """
        config = NoiseConfig() if config is None else config
        use = catalog.valid.copy()
        cuts = ["flags == 0 (" + ", ".join(f"no {name}" for name in CATALOG_FLAG_NAMES.values()) + ")"]
        if catalog.z_range is not None:
            cuts.append(f"z in {list(catalog.z_range)}")
        if config.min_snr is not None:
            with np.errstate(invalid="ignore"):
                use &= np.all(catalog.snr() > config.min_snr, axis=1)
            cuts.append(f"S/N > {config.min_snr} in all bands")
        if np.count_nonzero(use) < config.min_count:
            raise ValueError(f"only {np.count_nonzero(use)} usable rows after cuts {cuts}; "
                             f"need at least min_count = {config.min_count}")
        provenance = {"source": catalog.source, "source_sha256": catalog.source_sha256,
                      "cuts": cuts, "n_rows_catalog": int(len(catalog))}
        return cls.fit_arrays(catalog.mags()[use], catalog.mag_errors()[use], BANDS,
                              config=config, provenance=provenance)

    @classmethod
    def fit_arrays(cls, mags, errors, bands, config: NoiseConfig | None = None,
                   provenance: dict | None = None) -> "NoiseModel":
        """Fit the model to magnitudes and errors of any bands, each band on its own rows.

        Parameters
        ----------
        mags, errors : ndarray of shape (N, n_bands)
            AB magnitudes and their 1-sigma errors (mag), already cut to the rows to use.
            A band's NaN entries (a missing measurement, an error <= 0) are left out of
            that band only, so a catalog where some bands are often missing (GALEX in an
            SDSS sample) still gives every band its model.
        bands : sequence of str
            Band names, in column order.
        config : NoiseConfig, optional
        provenance : dict, optional
            Where the rows came from (source, cuts, ...); row counts and versions are added.

        Returns
        -------
        NoiseModel

        Raises
        ------
        ValueError
            Shapes disagree, or a band has fewer than ``config.min_count`` usable rows.
        """
        config = NoiseConfig() if config is None else config
        mags = np.asarray(mags, dtype=np.float64)
        errors = np.asarray(errors, dtype=np.float64)
        bands = tuple(bands)
        if mags.ndim != 2 or mags.shape != errors.shape or mags.shape[1] != len(bands):
            raise ValueError(f"mags and errors must both have shape (N, {len(bands)}), got "
                             f"{mags.shape} and {errors.shape}")
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(mags) & np.isfinite(errors) & (errors > 0)
        edges, centres, mu, s, counts, mag_range = [], [], [], [], [], []
        for b, band in enumerate(bands):
            m, sig = mags[usable[:, b], b], errors[usable[:, b], b]
            if len(m) < config.min_count:
                raise ValueError(f"band {band}: {len(m)} usable rows, need at least "
                                 f"min_count = {config.min_count}")
            e = merged_bin_edges(m, config.bin_width, config.min_count)
            idx = _bin_index(m, e)
            sel = [idx == k for k in range(len(e) - 1)]
            edges.append(e)
            centres.append([np.median(m[q]) for q in sel])
            mu.append([np.median(sig[q]) for q in sel])
            s.append([_scatter(sig[q], config.scatter) for q in sel])
            counts.append([np.count_nonzero(q) for q in sel])
            mag_range.append([m.min(), m.max()])
        provenance = {
            **dict(provenance or {}),
            "n_rows_used": int(np.count_nonzero(usable.any(axis=1))),
            "n_rows_used_per_band": {band: int(n) for band, n in zip(bands, usable.sum(axis=0))},
            "created_utc": datetime.datetime.now(datetime.timezone.utc)
                                            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "provabgs_sbi_version": __version__,
            "numpy_version": np.__version__,
        }
        return cls(edges=tuple(edges), centres=tuple(centres), mu=tuple(mu), s=tuple(s),
                   counts=tuple(counts), mag_range=np.array(mag_range), config=config,
                   provenance=provenance, bands=bands)

    @classmethod
    def from_sigma_table(cls, table, scatter_fraction: float = 0.1,
                         source: str = "") -> "NoiseModel":
        """A noise model from a survey's tabulated errors: sigma versus magnitude per band.

        For a survey without a catalog yet (an exposure-time calculator's or a data
        release's depth table), each band's rows give magnitudes and the typical error at
        each; they become the interpolation nodes of mu(m). The scatter s(m) is the
        table's ``scatter`` column when it has one, else ``scatter_fraction`` x sigma.
        The magnitude range of each band (what training sets keep) is that of its rows:
        the model says nothing beyond them.

        Parameters
        ----------
        table : astropy.table.Table, path-like or mapping
            Columns ``band`` (str), ``mag`` (AB), ``sigma`` (mag) and, optionally,
            ``scatter`` (mag); at least two rows per band, distinct magnitudes. A path is
            read with astropy (ECSV, CSV, FITS, ...).
        scatter_fraction : float
            s(m) / mu(m) where the table has no ``scatter`` column (default 0.1).
        source : str
            Recorded in the provenance (default: the path, when one is given).

        Returns
        -------
        NoiseModel
            Bands in the order they first appear in the table.

        Raises
        ------
        ValueError
            A missing column, fewer than two rows or repeated magnitudes in a band, or an
            error or scatter that is not finite and positive.
        """
        path = None
        if isinstance(table, (str, os.PathLike)):
            path = Path(table)
            table = Table.read(path, format="ascii.csv") if path.suffix == ".csv" else Table.read(path)
        t = Table(table) if not isinstance(table, Table) else table
        missing = {"band", "mag", "sigma"} - set(t.colnames)
        if missing:
            raise ValueError(f"a noise table needs columns band, mag, sigma (and optionally "
                             f"scatter); {sorted(missing)} missing (has {t.colnames})")
        if not (np.isfinite(scatter_fraction) and 0 <= scatter_fraction < 1):
            raise ValueError(f"scatter_fraction must be in [0, 1), got {scatter_fraction}")
        names = [str(b) for b in t["band"]]
        bands = tuple(dict.fromkeys(names))
        edges, centres, mu, s, counts, mag_range = [], [], [], [], [], []
        for band in bands:
            rows = np.flatnonzero(np.array(names) == band)
            m = np.asarray(t["mag"][rows], dtype=np.float64)
            order = np.argsort(m)
            m = m[order]
            sig = np.asarray(t["sigma"][rows], dtype=np.float64)[order]
            sc = (np.asarray(t["scatter"][rows], dtype=np.float64)[order]
                  if "scatter" in t.colnames else scatter_fraction * sig)
            if len(m) < 2 or np.any(np.diff(m) <= 0) or not np.all(np.isfinite(m)):
                raise ValueError(f"band {band}: need at least two rows with distinct, finite "
                                 f"magnitudes, got {m.tolist()}")
            if not (np.all(np.isfinite(sig) & (sig > 0)) and np.all(np.isfinite(sc) & (sc >= 0))):
                raise ValueError(f"band {band}: sigma must be finite and > 0, scatter finite "
                                 f"and >= 0")
            mid = 0.5 * (m[1:] + m[:-1])
            edges.append(np.concatenate([[m[0] - (mid[0] - m[0])], mid,
                                         [m[-1] + (m[-1] - mid[-1])]]))
            centres.append(m)
            mu.append(sig)
            s.append(sc)
            counts.append(np.zeros(len(m), dtype=np.int64))
            mag_range.append([m[0], m[-1]])
        provenance = {
            "source": source or (str(path) if path is not None else "a noise table"),
            "source_sha256": sha256_file(path) if path is not None else "",
            "kind": "sigma table",
            "scatter": ("table column" if "scatter" in t.colnames
                        else f"{scatter_fraction} x sigma"),
            "created_utc": datetime.datetime.now(datetime.timezone.utc)
                                            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "provabgs_sbi_version": __version__,
        }
        return cls(edges=tuple(edges), centres=tuple(centres), mu=tuple(mu), s=tuple(s),
                   counts=tuple(counts), mag_range=np.array(mag_range), provenance=provenance,
                   bands=bands)

    # ------------------------------------------------------------------ evaluation

    def _per_band(self, mags, table) -> np.ndarray:
        mags = np.asarray(mags, dtype=np.float64)
        if mags.shape[-1] != len(self.bands):
            raise ValueError(f"mags must have shape (..., {len(self.bands)}), got {mags.shape}")
        out = np.empty_like(mags)
        for b in range(len(self.bands)):
            out[..., b] = np.interp(mags[..., b], self.centres[b], table[b])
        out[~np.isfinite(mags)] = np.nan
        return out

    def median_sigma(self, mags) -> np.ndarray:
        """mu(m): median magnitude error at AB magnitudes ``mags`` (..., 5), mag."""
        return self._per_band(mags, self.mu)

    def scatter_sigma(self, mags) -> np.ndarray:
        """s(m): scatter of the magnitude error at AB magnitudes ``mags`` (..., 5), mag."""
        return self._per_band(mags, self.s)

    def sample_sigma(self, mags, rng=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw magnitude errors sigma' ~ N(mu(m), s(m)) per band.

        Parameters
        ----------
        mags : ndarray of shape (N, 5)
            Noiseless AB magnitudes.
        rng : numpy.random.Generator or int or None
            Random generator or seed.

        Returns
        -------
        sigma : ndarray of shape (N, 5)
            Drawn errors, mag; may be <= 0 (or NaN for non-finite ``mags``).
        valid : ndarray of shape (N,), bool
            True where all five draws are finite and > 0. SEDflow drops the other rows.
        """
        rng = _as_rng(rng)
        mu = self.median_sigma(mags)
        s = self.scatter_sigma(mags)
        sigma = mu + s * rng.standard_normal(mu.shape)
        with np.errstate(invalid="ignore"):
            valid = np.all(np.isfinite(sigma) & (sigma > 0), axis=-1)
        return sigma, valid

    def add_noise(self, mags, rng=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noisy magnitudes m + sigma' eps with sigma' from :meth:`sample_sigma`.

        Parameters
        ----------
        mags : ndarray of shape (N, 5)
            Noiseless AB magnitudes.
        rng : numpy.random.Generator or int or None

        Returns
        -------
        noisy : ndarray of shape (N, 5)
            AB magnitudes with noise; meaningless in rows where ``valid`` is False.
        sigma : ndarray of shape (N, 5)
            The drawn magnitude errors (the sigma part of x).
        valid : ndarray of shape (N,), bool
            Rows whose draws are all > 0; drop the others.
        """
        rng = _as_rng(rng)
        mags = np.asarray(mags, dtype=np.float64)
        sigma, valid = self.sample_sigma(mags, rng)
        noisy = mags + sigma * rng.standard_normal(mags.shape)
        return noisy, sigma, valid

    @property
    def flux_range(self) -> np.ndarray:
        """[min, max] flux per band of the fitted sample, AB nanomaggies, shape (5, 2)."""
        return mag_to_nanomaggies(self.mag_range[:, ::-1])

    def in_range(self, mags, bands=None) -> np.ndarray:
        """True for rows whose magnitudes lie in ``mag_range`` in every band (of ``bands``).

        Parameters
        ----------
        mags : ndarray of shape (N, n_bands)
            AB magnitudes in all the model's bands (e.g. the noiseless training photometry).
        bands : sequence of str, optional
            Check only these bands (e.g. a survey's
            :attr:`~provabgs_sbi.model.survey.Survey.required_bands`); default all.

        Returns
        -------
        ndarray of shape (N,), bool
        """
        mags = np.asarray(mags, dtype=np.float64)
        cols = np.ones(len(self.bands), dtype=bool)
        if bands is not None:
            unknown = set(bands) - set(self.bands)
            if unknown:
                raise ValueError(f"bands {sorted(unknown)} are not the noise model's "
                                 f"{list(self.bands)}")
            cols = np.isin(self.bands, list(bands))
        with np.errstate(invalid="ignore"):
            inside = (mags >= self.mag_range[:, 0]) & (mags <= self.mag_range[:, 1])
        return np.all(inside[..., cols], axis=-1)

    # ------------------------------------------------------------------ I/O

    def to_table(self) -> Table:
        """The model as an astropy Table (one row per band and bin) with metadata."""
        rows = {k: [] for k in ("band", "bin_lo", "bin_hi", "m_centre", "n", "mu", "s")}
        for b, band in enumerate(self.bands):
            n = len(self.centres[b])
            rows["band"] += [band] * n
            rows["bin_lo"] += list(self.edges[b][:-1])
            rows["bin_hi"] += list(self.edges[b][1:])
            rows["m_centre"] += list(self.centres[b])
            rows["n"] += list(self.counts[b])
            rows["mu"] += list(self.mu[b])
            rows["s"] += list(self.s[b])
        t = Table(rows, dtype=[str, float, float, float, np.int64, float, float])
        for name in ("bin_lo", "bin_hi", "m_centre", "mu", "s"):
            t[name].unit = "mag"
        t["bin_lo"].description = "lower edge of the magnitude bin (AB)"
        t["bin_hi"].description = "upper edge of the magnitude bin (AB)"
        t["m_centre"].description = "median AB magnitude of the galaxies in the bin (interpolation node)"
        t["n"].description = "galaxies in the bin"
        t["mu"].description = "median magnitude error in the bin"
        t["s"].description = f"scatter of the magnitude error in the bin ({self.config.scatter})"
        t.meta["format"] = FORMAT_NAME
        t.meta["format_version"] = FORMAT_VERSION
        t.meta["description"] = (
            "Per-band noise model p(sigma_m | m) = N(mu(m), s(m)); mu and s are linear in m "
            "between m_centre nodes and constant beyond them (provabgs_sbi.inference.noise).")
        t.meta["bands"] = list(self.bands)
        t.meta["config"] = asdict(self.config)
        t.meta["mag_range"] = {band: [float(v) for v in self.mag_range[b]]
                               for b, band in enumerate(self.bands)}
        t.meta["provenance"] = self.provenance
        return t

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model as ECSV (human readable). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_table().write(path, format="ascii.ecsv", overwrite=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NoiseModel":
        """Read a model written by :meth:`save`."""
        t = Table.read(path, format="ascii.ecsv")
        if t.meta.get("format") != FORMAT_NAME:
            raise ValueError(f"{path} is not a {FORMAT_NAME} file (format = {t.meta.get('format')!r})")
        if t.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {t.meta.get('format_version')} not supported "
                             f"(expected {FORMAT_VERSION})")
        bands = tuple(t.meta["bands"])
        edges, centres, mu, s, counts = [], [], [], [], []
        for band in bands:
            sub = t[t["band"] == band]
            edges.append(np.append(np.asarray(sub["bin_lo"]), sub["bin_hi"][-1]))
            if not np.allclose(np.asarray(sub["bin_lo"][1:]), np.asarray(sub["bin_hi"][:-1]),
                               rtol=0, atol=1e-12):
                raise ValueError(f"{path}: band {band} bins are not contiguous")
            centres.append(np.asarray(sub["m_centre"]))
            mu.append(np.asarray(sub["mu"]))
            s.append(np.asarray(sub["s"]))
            counts.append(np.asarray(sub["n"]))
        mag_range = np.array([t.meta["mag_range"][band] for band in bands])
        return cls(edges=tuple(edges), centres=tuple(centres), mu=tuple(mu), s=tuple(s),
                   counts=tuple(counts), mag_range=mag_range,
                   config=NoiseConfig(**t.meta["config"]),
                   provenance=dict(t.meta.get("provenance", {})), bands=bands)

    # ------------------------------------------------------------------ figure

    def bin_index(self, m, b: int) -> np.ndarray:
        """Bin of each magnitude in band ``b`` (values beyond the edges go to the end bins).

        Parameters
        ----------
        m : ndarray of shape (N,)
            AB magnitudes in band ``b``.
        b : int
            Band index into :attr:`bands`.

        Returns
        -------
        ndarray of int of shape (N,)
            Indices into ``centres[b]``, ``mu[b]``, ``s[b]``.
        """
        return _bin_index(m, self.edges[b])

    def plot(self, catalog: PhotometryCatalog, path: str | os.PathLike, rng=0) -> Path:
        """PNG comparing real and drawn (m, sigma_m) per band.

        Each band's panel shows the catalog's valid galaxies (grey), one draw of
        sigma' at the same magnitudes (orange), the model's mu(m) and mu(m) +- s(m), and
        the 16/50/84th percentiles of real and drawn errors in each model bin. The last
        panel compares the pooled distributions of (sigma - mu(m)) / s(m).

        Parameters
        ----------
        catalog : PhotometryCatalog
            Real sample to compare with (its valid rows are used).
        path : str or os.PathLike
            Output PNG.
        rng : numpy.random.Generator or int or None
            For the draws (default seed 0).

        Returns
        -------
        pathlib.Path

        See Also
        --------
        provabgs_sbi.plots.noise.plot_noise_model : draws it.
        """
        from provabgs_sbi.plots.noise import plot_noise_model

        return plot_noise_model(self, catalog, path, rng=rng)


def default_noise_model() -> NoiseModel:
    """The committed model fitted to the kcorrect SDSS sample (``data/noise_model_sdss.ecsv``)."""
    if not DEFAULT_NOISE_FILE.exists():
        raise FileNotFoundError(
            f"{DEFAULT_NOISE_FILE} not found; it is part of the repository checkout "
            f"(rebuild it as data/README.md says)")
    return NoiseModel.load(DEFAULT_NOISE_FILE)


def noise_model_path(survey) -> Path:
    """Where a :class:`~provabgs_sbi.model.survey.Survey`'s noise model file is: its
    ``noise_model`` as a path when that file exists, else a name under the artifacts'
    ``data/`` folder (where ``noise_model_sdss.ecsv`` is).

    Raises
    ------
    ValueError
        The survey names no noise model.
    FileNotFoundError
        Neither place holds the file.
    """
    survey = get_survey(survey)
    if not survey.noise_model:
        raise ValueError(f"survey {survey.name!r} has no noise model: fit one to a catalog "
                         "(NoiseModel.fit_arrays) or build one from a noise table "
                         "(provabgs-sbi noise table) and set the survey's noise_model")
    given = Path(survey.noise_model).expanduser()
    for path in (given, DEFAULT_NOISE_FILE.parent / given):
        if path.is_file():
            return path
    raise FileNotFoundError(f"survey {survey.name!r}: noise model {survey.noise_model!r} is "
                            f"neither a file nor in {DEFAULT_NOISE_FILE.parent}")


def survey_noise_model(survey) -> NoiseModel:
    """The noise model of a survey (name, :class:`~provabgs_sbi.model.survey.Survey` or
    JSON file; :func:`noise_model_path`), checked to have the survey's bands in order.

    Raises
    ------
    ValueError
        The file's bands are not the survey's.
    """
    survey = get_survey(survey)
    path = noise_model_path(survey)
    model = NoiseModel.load(path)
    if model.bands != survey.bands:
        raise ValueError(f"{path} models bands {list(model.bands)}, but survey "
                         f"{survey.name!r} has {list(survey.bands)}")
    return model

"""PROVABGS NMF star-formation and metallicity histories on lookback-time bins.

Pure array functions over a batch of galaxies (model-spec 1.2, 1.3, 5.4). All times are
lookback times in Gyr.

Lookback bins: base edges 0, 10^(6.05 + 0.1 k - 9) Gyr for k = 0..40, and 13.8 Gyr (43
edges, 42 bins). For a galaxy of age t_age every edge is clipped at t_age, so bins above
t_age have zero width and zero mass and the bin containing t_age is truncated; for
z <= 0.2 (t_age >= 11.287 Gyr) only the last bin is truncated, which is PROVABGS's
"edges below t_age, plus t_age".
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

#: The 43 base lookback-time bin edges in Gyr.
BASE_EDGES = np.concatenate([[0.0], 10.0 ** (6.05 + 0.1 * np.arange(41) - 9.0), [13.8]])
N_BINS = len(BASE_EDGES) - 1
#: Metallicity clip of PROVABGS (the MIST grid limits).
Z_MIN, Z_MAX = 4.49043431e-5, 4.49043431e-2
#: Row order of the SFH basis file that gives PROVABGS's beta1..beta4 (youngest first).
SFH_ROW_ORDER = (2, 0, 1, 3)
#: The PROVABGS basis files: lookback grid, SFH bases, ZH bases (package data, MIT).
NMF_FILES = ("sfh_t_int.txt", "NMF_2basis_SFH_components_nowgt_lin_Nc4.txt",
             "NMF_2basis_Z_components_nowgt_lin_Nc2.txt")


@dataclass(frozen=True, eq=False)
class NMFBases:
    """NMF bases on their 50-point lookback grid, ascending in time.

    Attributes
    ----------
    t : ndarray of shape (50,)
        Lookback time, Gyr, ascending.
    sfh : ndarray of shape (4, 50)
        SFH bases in PROVABGS's beta order (rows reordered, model-spec 1.3).
    zh : ndarray of shape (2, 50)
        Metallicity-history bases.
    """

    t: np.ndarray
    sfh: np.ndarray
    zh: np.ndarray

    def _knots(self):
        # Piecewise-linear with linear extrapolation: add knots at 0 and 13.8 Gyr so that the
        # function is exactly linear interpolation on an extended grid over [0, 13.8].
        t = self.t
        t_ext = np.concatenate([[0.0], t, [BASE_EDGES[-1]]])
        def extend(b):
            lo = b[:, :1] + (b[:, 1:2] - b[:, :1]) * (0.0 - t[0]) / (t[1] - t[0])
            hi = b[:, -1:] + (b[:, -1:] - b[:, -2:-1]) * (t_ext[-1] - t[-1]) / (t[-1] - t[-2])
            return np.concatenate([lo, b, hi], axis=1)
        return t_ext, extend(self.sfh), extend(self.zh)

    def sfh_at(self, t) -> np.ndarray:
        """SFH bases at lookback times ``t`` (any shape) -> shape (4, *t.shape)."""
        t_ext, sfh, _ = self._extended
        return _interp_rows(t, t_ext, sfh)

    def zh_at(self, t) -> np.ndarray:
        """ZH bases at lookback times ``t`` -> shape (2, *t.shape)."""
        t_ext, _, zh = self._extended
        return _interp_rows(t, t_ext, zh)

    def sfh_integral(self, t) -> np.ndarray:
        """Integral of each SFH basis from 0 to ``t`` (exact for the piecewise-linear bases).

        Returns shape (4, *t.shape), in basis units x Gyr.
        """
        t_ext, sfh, _ = self._extended
        t = np.asarray(t, dtype=np.float64)
        seg_int = 0.5 * (sfh[:, 1:] + sfh[:, :-1]) * np.diff(t_ext)
        cum = np.concatenate([np.zeros((4, 1)), np.cumsum(seg_int, axis=1)], axis=1)
        k = np.clip(np.searchsorted(t_ext, t, side="right") - 1, 0, len(t_ext) - 2)
        dt = t - t_ext[k]
        slope = (sfh[:, k + 1] - sfh[:, k]) / (t_ext[k + 1] - t_ext[k])
        return cum[:, k] + sfh[:, k] * dt + 0.5 * slope * dt**2

    @property
    def _extended(self):
        cached = self.__dict__.get("_ext_cache")
        if cached is None:
            cached = self._knots()
            object.__setattr__(self, "_ext_cache", cached)
        return cached


def _interp_rows(t, grid, rows):
    t = np.asarray(t, dtype=np.float64)
    k = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, len(grid) - 2)
    w = (t - grid[k]) / (grid[k + 1] - grid[k])
    return rows[:, k] * (1.0 - w) + rows[:, k + 1] * w


def nmf_data_folder():
    """The package-data folder ``provabgs_sbi/data/nmf`` holding :data:`NMF_FILES` (a
    :class:`importlib.resources.abc.Traversable`; a plain path in a normal install)."""
    return resources.files("provabgs_sbi") / "data" / "nmf"


@lru_cache(maxsize=4)
def load_nmf_bases(folder: str | None = None) -> NMFBases:
    """Read the PROVABGS 'tojeiro.4comp' NMF bases.

    Parameters
    ----------
    folder : str, optional
        A folder holding :data:`NMF_FILES`; default the copy shipped as package data
        (:func:`nmf_data_folder`).

    Returns
    -------
    NMFBases
        Bases on the 50-point grid, ascending in lookback time, SFH rows in beta order.
    """
    base = nmf_data_folder() if folder is None else Path(folder)

    def read(name):
        with (base / name).open("r") as fh:
            return np.loadtxt(fh)

    t, sfh, zh = (read(name) for name in NMF_FILES)
    if t.shape != (50,) or sfh.shape != (4, 50) or zh.shape != (2, 50):
        raise ValueError(f"unexpected NMF basis shapes in {base}: {t.shape}, {sfh.shape}, {zh.shape}")
    order = np.argsort(t)
    return NMFBases(t=t[order], sfh=sfh[list(SFH_ROW_ORDER)][:, order], zh=zh[:, order])


@dataclass(frozen=True)
class BinnedHistory:
    """Per-galaxy binned SFH and ZH (all arrays over the 42 lookback bins).

    Attributes
    ----------
    edges : ndarray of shape (N, 43)
        Bin edges clipped at t_age, Gyr.
    centres : ndarray of shape (N, 42)
        Linear bin centres, Gyr.
    mass_nmf : ndarray of shape (N, 42)
        Mass fraction formed in each bin by the NMF part (sums to 1; zero-width bins 0).
    mass : ndarray of shape (N, 42)
        Mass fraction per bin with the burst added in its bin (sums to 1).
    metallicity : ndarray of shape (N, 42)
        Absolute Z at the bin centres, clipped to [Z_MIN, Z_MAX].
    fburst : ndarray of shape (N,)
        Effective burst fraction: 0 when tburst >= t_age (model-spec 5.4).
    burst_bin : ndarray of shape (N,)
        Index of the bin holding tburst (-1 without a burst).
    z_burst : ndarray of shape (N,)
        Metallicity of the burst at the exact tburst, clipped.
    """

    edges: np.ndarray
    centres: np.ndarray
    mass_nmf: np.ndarray
    mass: np.ndarray
    metallicity: np.ndarray
    fburst: np.ndarray
    burst_bin: np.ndarray
    z_burst: np.ndarray

    @property
    def widths(self) -> np.ndarray:
        """Bin widths in Gyr, shape (N, 42)."""
        return np.diff(self.edges, axis=1)


def binned_history(beta, fburst, tburst, gamma, t_age, bases: NMFBases | None = None
                   ) -> BinnedHistory:
    """Bin the NMF SFH (with burst) and ZH of a batch of galaxies.

    Parameters
    ----------
    beta : ndarray of shape (N, 4)
        SFH weights on the simplex.
    fburst, tburst : ndarray of shape (N,)
        Burst mass fraction and lookback time (Gyr).
    gamma : ndarray of shape (N, 2)
        ZH weights (linear).
    t_age : ndarray of shape (N,)
        Age of the universe at the galaxy's redshift, Gyr.
    bases : NMFBases, optional
        Defaults to :func:`load_nmf_bases`.

    Returns
    -------
    BinnedHistory
    """
    bases = load_nmf_bases() if bases is None else bases
    t_age = np.asarray(t_age, dtype=np.float64)
    edges = np.minimum(BASE_EDGES[None, :], t_age[:, None])            # (N, 43)
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    cum = bases.sfh_integral(edges)                                      # (4, N, 43)
    basis_mass = np.diff(cum, axis=2)                                    # (4, N, 42) = avg * dt
    mass_nmf = np.einsum("nk,kni->ni", beta, basis_mass)
    mass_nmf /= mass_nmf.sum(axis=1, keepdims=True)

    tburst = np.asarray(tburst, dtype=np.float64)
    has_burst = burst_formed(tburst, t_age)
    fb = effective_fburst(fburst, tburst, t_age)
    burst_bin = np.where(has_burst, np.searchsorted(BASE_EDGES, tburst, side="right") - 1, -1)
    mass = (1.0 - fb)[:, None] * mass_nmf
    rows = np.nonzero(has_burst)[0]
    mass[rows, burst_bin[rows]] += fb[rows]

    zb = bases.zh_at(centres)                                            # (2, N, 42)
    metallicity = np.clip(gamma[:, 0, None] * zb[0] + gamma[:, 1, None] * zb[1], Z_MIN, Z_MAX)
    z_burst = burst_metallicity(gamma, tburst, bases)
    return BinnedHistory(edges=edges, centres=centres, mass_nmf=mass_nmf, mass=mass,
                         metallicity=metallicity, fburst=fb, burst_bin=burst_bin,
                         z_burst=z_burst)


def burst_metallicity(gamma, tburst, bases: NMFBases | None = None) -> np.ndarray:
    """Z of the burst: the ZH at the exact tburst, clipped to [Z_MIN, Z_MAX], shape (N,)."""
    bases = load_nmf_bases() if bases is None else bases
    gamma = np.asarray(gamma, dtype=np.float64)
    zbb = bases.zh_at(np.asarray(tburst, dtype=np.float64))
    return np.clip(gamma[:, 0] * zbb[0] + gamma[:, 1] * zbb[1], Z_MIN, Z_MAX)


def burst_formed(tburst, t_age) -> np.ndarray:
    """Whether the burst lies inside the galaxy's history: tburst < t_age (model-spec 5.4).

    ``tburst`` and ``t_age`` (Gyr, lookback and age of the universe) broadcast together.
    """
    return np.asarray(tburst, dtype=np.float64) < t_age


def effective_fburst(fburst, tburst, t_age) -> np.ndarray:
    """The burst fraction that enters the SED: ``fburst``, or 0 where tburst >= t_age
    (a burst before the Big Bang does not happen; model-spec 5.4).

    Parameters
    ----------
    fburst, tburst : ndarray of shape (N,)
        Burst mass fraction and lookback time (Gyr).
    t_age : float or ndarray of shape (N,)
        Age of the universe at the galaxy's redshift, Gyr.

    Returns
    -------
    ndarray of shape (N,), float64
    """
    return np.where(burst_formed(tburst, t_age), np.asarray(fburst, dtype=np.float64), 0.0)

"""Planck13 age and luminosity distance, splined for speed (model-spec 1.5).

astropy's Planck13 (H0 = 67.77, Om0 = 0.307, massive neutrinos) integrates
numerically on every call; the SED model calls these for millions of galaxies, so both
are tabulated once on a fine redshift grid and interpolated with cubic splines (relative
error < 1e-7 against astropy, checked in the tests).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Redshift range of the splines.
Z_MAX = 3.0
_N_GRID = 3001
MPC_CM = 3.0856775814913673e24


@lru_cache(maxsize=1)
def _splines():
    from astropy.cosmology import Planck13
    from scipy.interpolate import CubicSpline

    zg = np.linspace(0.0, Z_MAX, _N_GRID)
    age = Planck13.age(zg).to_value("Gyr")
    dl = Planck13.luminosity_distance(zg).to_value("Mpc")
    return CubicSpline(zg, age), CubicSpline(zg, dl)


def _check(z):
    z = np.asarray(z, dtype=np.float64)
    if np.any(~np.isfinite(z)) or np.any(z < 0) or np.any(z > Z_MAX):
        raise ValueError(f"redshift outside the cosmology grid [0, {Z_MAX}]: "
                         f"{z[~np.isfinite(z) | (z < 0) | (z > Z_MAX)][:3]}")
    return z


def age_gyr(z) -> np.ndarray:
    """Age of the Planck13 universe at redshift ``z``, in Gyr (same shape as ``z``)."""
    return _splines()[0](_check(z))


def luminosity_distance_cm(z) -> np.ndarray:
    """Planck13 luminosity distance at ``z``, in cm (same shape as ``z``)."""
    return _splines()[1](_check(z)) * MPC_CM


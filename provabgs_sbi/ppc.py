"""Posterior predictive check: chi^2 of the posterior-median model photometry.

SEDflow's discussion suggests checking every amortized posterior with one emulator call:
the model photometry of the posterior median should fit the observed ugriz. The median is
taken per coordinate in the prior's **warped** coordinates (so the median's betas stay on the
simplex) and mapped back to physical parameters. With five bands and noise as quoted,
chi^2 of the true parameters follows chi^2_5; galaxies above its 99.9th percentile
(:data:`CHI2_POOR_FIT`) get ``FLAG_POOR_FIT`` in catalog fits.
"""
from __future__ import annotations

import numpy as np

from .parameters import N_PARAMS, from_warped, to_warped
from .photometry import mag_to_nanomaggies

#: 99.9th percentile of chi^2 with 5 degrees of freedom (scipy.stats.chi2.ppf(0.999, 5)).
CHI2_POOR_FIT = 20.515


def median_parameters(samples) -> np.ndarray:
    """Posterior medians in the warped coordinates, mapped back: (n_gal, n, 12) -> (n_gal, 12).

    Galaxies with any non-finite sample give a row of NaN.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3 or samples.shape[2] != N_PARAMS:
        raise ValueError(f"samples must have shape (n_gal, n, {N_PARAMS}), got {samples.shape}")
    out = np.full((samples.shape[0], N_PARAMS), np.nan)
    ok = np.all(np.isfinite(samples), axis=(1, 2))
    if np.any(ok):
        w = to_warped(samples[ok].reshape(-1, N_PARAMS)).reshape(int(ok.sum()), samples.shape[1], -1)
        out[ok] = from_warped(np.median(w, axis=1))
    return out


def median_model_chi2(samples, x, model, ivar=None):
    """chi^2 of the posterior-median model photometry of each galaxy, in one model call.

    Parameters
    ----------
    samples : ndarray of shape (n_gal, n, 12)
        Physical posterior samples (NaN rows allowed: their chi^2 is NaN).
    x : ndarray of shape (n_gal, 11)
        [5 AB mags, 5 mag errors, z].
    model : object
        ``photometry(theta (N, 12), z (N,)) -> (N, 5)`` AB nanomaggies (e.g. the emulator).
    ivar : ndarray of shape (n_gal, 5), optional
        Flux inverse variances (nmgy^-2); default from the magnitude errors in x,
        1 / (f ln(10) / 2.5 sigma_m)^2.

    Returns
    -------
    chi2 : ndarray of shape (n_gal,)
        sum over ugriz of ivar (f_obs - f_model)^2.
    model_flux : ndarray of shape (n_gal, 5)
        The median model's AB nanomaggies.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    med = median_parameters(samples)
    if len(med) != len(x):
        raise ValueError(f"{len(med)} galaxies of samples but {len(x)} rows of x")
    flux = mag_to_nanomaggies(x[:, :5])
    if ivar is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            ivar = 1.0 / (flux * np.log(10.0) / 2.5 * x[:, 5:10]) ** 2
    ivar = np.asarray(ivar, dtype=np.float64)
    model_flux = np.full((len(x), 5), np.nan)
    ok = np.all(np.isfinite(med), axis=1) & np.isfinite(x[:, 10]) & (x[:, 10] > 0)
    if np.any(ok):
        model_flux[ok] = model.photometry(med[ok], x[ok, 10])
    with np.errstate(invalid="ignore"):
        chi2 = np.sum(ivar * (model_flux - flux) ** 2, axis=1)
    return np.where(ok, chi2, np.nan), model_flux

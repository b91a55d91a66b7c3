"""Posterior predictive checks: does some model of the posterior fit the observed ugriz?

SEDflow's discussion suggests checking every amortized posterior with one emulator call.
Two statistics:

- :func:`median_model_chi2`: chi^2 of the model photometry of the posterior **median**
  (taken per coordinate in the prior's warped coordinates, so the betas stay on the
  simplex). On the SDSS sample this model is systematically 0.07-0.10 mag fainter than
  the data in every band: with the mass-dust-age degeneracies the coordinate-wise median
  is not on the posterior's ridge, so it is a poor test.
- :func:`best_draw_chi2` (used by catalog fits): the smallest chi^2 among the first
  ``n_draws`` posterior draws, all evaluated in one batched model call, with a systematic
  floor ``sigma_sys`` (magnitudes) added in quadrature to the errors: SDSS quotes
  0.005 mag in gri, below what any SPS model reproduces.

With noise as quoted, chi^2 of the true parameters follows chi^2_5; galaxies above its
99.9th percentile (:data:`CHI2_POOR_FIT`) get ``FLAG_POOR_FIT`` in catalog fits.

Both use the observed fluxes, inverse variances and chi^2 of the baselines' likelihood
(:func:`~provabgs_sbi.model.observation.flux_and_ivar`,
:func:`~provabgs_sbi.model.observation.flux_chi2`).
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.observation import flux_and_ivar, flux_chi2
from provabgs_sbi.model.observation import layout_of
from provabgs_sbi.model.parameters import N_PARAMS, from_warped, to_warped

#: 99.9th percentile of chi^2 with 5 degrees of freedom (scipy.stats.chi2.ppf(0.999, 5)).
CHI2_POOR_FIT = 20.515
#: Tail probability of the poor-fit threshold.
POOR_FIT_TAIL = 1e-3


def chi2_poor_fit(n_bands) -> np.ndarray:
    """Poor-fit threshold for a chi^2 summed over ``n_bands`` bands: the 99.9th percentile of
    chi^2 with that many degrees of freedom (20.515 for five; NaN for zero bands).

    Parameters
    ----------
    n_bands : int or array_like of int
    """
    from scipy.stats import chi2

    k = np.asarray(n_bands, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(k > 0, chi2.isf(POOR_FIT_TAIL, np.maximum(k, 1)), np.nan)


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
    x : ndarray of shape (n_gal, 2 n_bands + 1)
        [AB mags, mag errors, z] (ugriz: 11 columns).
    model : object
        ``photometry(theta (N, 12), z (N,)) -> (N, n_bands)`` AB nanomaggies in the bands
        of x (e.g. the emulator, :meth:`~provabgs_sbi.emulator.Emulator.with_filters`).
    ivar : ndarray of shape (n_gal, n_bands), optional
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
    flux, ivar = flux_and_ivar(x, ivar)
    lay = layout_of(x)
    model_flux = np.full((len(x), lay.n_bands), np.nan)
    z = lay.redshift(x)
    ok = np.all(np.isfinite(med), axis=1) & np.isfinite(z) & (z > 0)
    if np.any(ok):
        model_flux[ok] = model.photometry(med[ok], z[ok])
    chi2 = flux_chi2(model_flux, flux, ivar)
    return np.where(ok, chi2, np.nan), model_flux


def best_draw_chi2(samples, x, model, ivar=None, n_draws: int = 32, sigma_sys=0.02):
    """Smallest chi^2 among posterior draws, one batched model call for all galaxies.

    Parameters
    ----------
    samples : ndarray of shape (n_gal, n, 12)
        Physical posterior samples (galaxies with NaN samples get NaN).
    x : ndarray of shape (n_gal, 2 n_bands + 1)
    model : object
        ``photometry(theta (N, 12), z (N,)) -> (N, n_bands)`` AB nanomaggies in the bands
        of x.
    ivar : ndarray of shape (n_gal, n_bands), optional
        Flux inverse variances (default from the magnitude errors in x).
    n_draws : int
        The first ``min(n_draws, n)`` draws of each galaxy are evaluated.
    sigma_sys : float or array_like of shape (5,)
        Systematic error floor in magnitudes (one value or one per band), added in
        quadrature: the fit's sigma_eff.

    Returns
    -------
    chi2 : ndarray of shape (n_gal,)
        Summed over the bands present in x (missing bands, :meth:`XLayout.missing`, are
        left out: compare with :func:`chi2_poor_fit` of their number).
    model_flux : ndarray of shape (n_gal, 5)
        AB nanomaggies of the best of the draws.
    """
    samples = np.asarray(samples, dtype=np.float64)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if samples.ndim != 3 or samples.shape[2] != N_PARAMS or len(samples) != len(x):
        raise ValueError(f"samples must have shape ({len(x)}, n, {N_PARAMS}), got {samples.shape}")
    sigma_sys = np.asarray(sigma_sys, dtype=np.float64)
    if np.any(~np.isfinite(sigma_sys) | (sigma_sys < 0)) or n_draws < 1:
        raise ValueError("need sigma_sys >= 0 and n_draws >= 1")
    k = min(int(n_draws), samples.shape[1])
    flux, ivar = flux_and_ivar(x, ivar)
    lay = layout_of(x)
    draws = samples[:, :k]
    z = lay.redshift(x)
    ok = np.all(np.isfinite(draws), axis=(1, 2)) & np.isfinite(z) & (z > 0)
    chi2 = np.full(len(x), np.nan)
    best = np.full((len(x), lay.n_bands), np.nan)
    if np.any(ok):
        mf = np.asarray(model.photometry(draws[ok].reshape(-1, N_PARAMS),
                                         np.repeat(z[ok], k))).reshape(-1, k, lay.n_bands)
        terms = flux_chi2(mf, flux[ok, None], ivar[ok, None], sigma_sys=sigma_sys,
                          per_band=True)                                  # (m, k, 5)
        present = ~lay.missing(x[ok])[:, None, :]
        c = np.where(present, terms, 0.0).sum(axis=-1)                  # (m, k)
        c = np.where(np.isfinite(c) & present.any(axis=-1), c, np.inf)
        j = np.argmin(c, axis=1)
        chi2[ok] = c[np.arange(len(j)), j]
        best[ok] = mf[np.arange(len(j)), j]
    chi2[~np.isfinite(chi2)] = np.nan
    return chi2, best

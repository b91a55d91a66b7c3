"""The one likelihood of the baselines: a galaxy's observed ugriz against model photometry.

MCMC (:mod:`provabgs_sbi.baselines.mcmc`), importance sampling
(:mod:`provabgs_sbi.baselines.importance`) and the posterior predictive checks
(:mod:`provabgs_sbi.inference.ppc`) all read the observation and compute chi^2 here.

Observation
-----------
From x = [m_u..m_z (AB mag), sigma_u..sigma_z (mag), z] (:data:`~provabgs_sbi.model.observation.SDSS`)::

    f = 10^(-0.4 (m - 22.5))              AB nanomaggies
    sigma_f = f ln(10) / 2.5 sigma_m      (first order, :func:`~provabgs_sbi.model.photometry.flux_error`)
    ivar = 1 / sigma_f^2                  nmgy^-2

or a catalog's own inverse variances (``ivar=``).

Likelihood
----------
Sampled in the prior's 11 **warped** coordinates w::

    log p(w | x) = log pi(w) + log L(x | w) + const,
    log L = -1/2 chi^2 - 1/2 sum_b log(2 pi / ivar_b),
    chi^2 = sum_b ivar_b (f_b - F_b(from_warped(w), z))^2

with ``pi`` = :meth:`Prior.log_prob_warped` (-inf outside the box; the model is then not
called) and ``F`` the model's ugriz in nanomaggies ("flux", the paper's). The "mag"
likelihood is Gaussian in AB magnitudes with the errors in x, the noise model of the
simulated training and test galaxies. A model flux that is not finite gives log L = -inf.
"""
from __future__ import annotations

import time

import numpy as np

from provabgs_sbi.model.observation import N_X, SDSS as XL, flux_and_ivar, flux_chi2  # noqa: F401
from provabgs_sbi.model.parameters import from_warped
from provabgs_sbi.model.priors import Prior

_N_BANDS = XL.n_bands

#: Likelihoods of :class:`LogPosterior`: Gaussian in fluxes (the paper) or in magnitudes.
LIKELIHOODS = ("flux", "mag")


def observed_flux(x, ivar=None, model=None):
    """Validate one galaxy's x and return its fluxes, inverse variances and redshift.

    Parameters
    ----------
    x : array_like of shape (11,)
        [m_u, m_g, m_r, m_i, m_z (AB mag), sigma_u .. sigma_z (mag), z].
    ivar : array_like of shape (5,), optional
        Inverse variances of the fluxes, nmgy^-2 (e.g. a catalog's ``NMGY_IVAR``); when
        given, the magnitude errors in x are not used (they may be NaN).
    model : object, optional
        If it has ``z_range = (lo, hi)`` (the emulator's trained range), z must lie in it.

    Returns
    -------
    flux : ndarray of shape (5,)
        Observed ugriz, AB nanomaggies.
    ivar : ndarray of shape (5,)
        nmgy^-2 (:func:`flux_and_ivar`).
    z : float

    Raises
    ------
    ValueError
        Wrong shape, NaN or infinite magnitudes or redshift, magnitude errors <= 0 or not
        finite (without ``ivar``), ivar <= 0 or not finite, z <= 0, or z outside the
        model's ``z_range``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (N_X,):
        raise ValueError(f"x must have shape ({N_X},) = [5 AB mags, 5 mag errors, z] for one "
                         f"galaxy, got {x.shape}")
    mags, sig_m, z = XL.mags(x), XL.errors(x), float(XL.redshift(x))
    if not np.all(np.isfinite(mags)):
        raise ValueError(f"x has non-finite magnitudes (ugriz = {mags.tolist()})")
    if not np.isfinite(z):
        raise ValueError(f"x has a non-finite redshift ({z!r})")
    if not z > 0:
        raise ValueError(f"redshift must be > 0 (the luminosity distance vanishes at z = 0), got {z!r}")
    z_range = getattr(model, "z_range", None)
    if z_range is not None:
        lo, hi = float(z_range[0]), float(z_range[1])
        if not lo <= z <= hi:
            raise ValueError(f"redshift z = {z!r} is outside the model's range [{lo}, {hi}]")
    if ivar is None:
        if not np.all(np.isfinite(sig_m)) or np.any(sig_m <= 0):
            raise ValueError(f"magnitude errors must be finite and > 0, got {sig_m.tolist()}")
    else:
        ivar = np.asarray(ivar, dtype=np.float64)
        if ivar.shape != (_N_BANDS,):
            raise ValueError(f"ivar must have shape ({_N_BANDS},) (ugriz, nmgy^-2), got {ivar.shape}")
        if not np.all(np.isfinite(ivar)) or np.any(ivar <= 0):
            raise ValueError(f"ivar must be finite and > 0 in every band, got {ivar.tolist()}")
    flux, ivar = flux_and_ivar(x, ivar)
    return flux, ivar.copy(), z


class LogPosterior:
    """Vectorised log posterior density of one galaxy in warped coordinates.

    Parameters
    ----------
    flux, ivar : ndarray of shape (5,)
        Observed AB nanomaggies and their inverse variances (nmgy^-2).
    z : float
        Redshift.
    model : object
        ``model.photometry(theta (N, 12), z (N,)) -> (N, 5)`` AB nanomaggies.
    prior : Prior
    likelihood : {"flux", "mag"}
        "flux" (the paper's MCMC): Gaussian in nanomaggies with ``ivar``. "mag": Gaussian
        in AB magnitudes with the errors ``sigma_mag``, the noise model of the ANPE
        training sets (:func:`~provabgs_sbi.inference.training_set.simulate_chunk` adds noise in
        magnitudes), so that MCMC and ANPE target the same posterior on simulated galaxies.
    mags, sigma_mag : ndarray of shape (5,), optional
        Observed AB magnitudes and their errors (required for "mag").

    Notes
    -----
    Calling it on ``w`` of shape (M, 11) returns shape (M,): ``prior.log_prob_warped(w)``
    plus the Gaussian log likelihood (normalised), -inf outside the prior box (where
    the model is not called) or where the model flux is not finite. Points with a finite
    prior density go to the model in **one** batched call; the calls, points and seconds
    spent in the model are counted in :attr:`n_calls`, :attr:`n_points`, :attr:`model_s`.
    """

    def __init__(self, flux, ivar, z, model, prior: Prior, likelihood: str = "flux",
                 mags=None, sigma_mag=None):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.flux = np.asarray(flux, dtype=np.float64)
        self.ivar = np.asarray(ivar, dtype=np.float64)
        self.z = float(z)
        self.model = model
        self.prior = prior
        self.likelihood = likelihood
        if likelihood == "mag":
            if mags is None or sigma_mag is None:
                raise ValueError('likelihood="mag" needs the magnitudes and their errors')
            self.mags = np.asarray(mags, dtype=np.float64)
            self.sigma_mag = np.asarray(sigma_mag, dtype=np.float64)
            if not np.all(np.isfinite(self.sigma_mag)) or np.any(self.sigma_mag <= 0):
                raise ValueError(f"magnitude errors must be finite and > 0, got "
                                 f"{self.sigma_mag.tolist()}")
            self.log_norm = -0.5 * float(np.sum(np.log(2.0 * np.pi * self.sigma_mag**2)))
        else:
            self.log_norm = -0.5 * float(np.sum(np.log(2.0 * np.pi / self.ivar)))
        self.reset_counters()

    def reset_counters(self) -> None:
        """Zero :attr:`n_calls`, :attr:`n_points` and :attr:`model_s`."""
        self.n_calls = 0
        self.n_points = 0
        self.model_s = 0.0

    def log_likelihood(self, theta) -> np.ndarray:
        """Gaussian log likelihood of physical parameters (N, 12), shape (N,)."""
        theta = np.atleast_2d(theta)
        t0 = time.perf_counter()
        model_flux = np.asarray(self.model.photometry(theta, np.full(len(theta), self.z)),
                                dtype=np.float64)
        self.model_s += time.perf_counter() - t0
        self.n_calls += 1
        self.n_points += len(theta)
        if model_flux.shape != (len(theta), _N_BANDS):
            raise ValueError(f"model.photometry returned shape {model_flux.shape}, expected "
                             f"({len(theta)}, {_N_BANDS})")
        if self.likelihood == "mag":
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                model_mag = 22.5 - 2.5 * np.log10(np.where(model_flux > 0, model_flux, np.nan))
                chi2 = np.sum(((model_mag - self.mags) / self.sigma_mag) ** 2, axis=1)
        else:
            chi2 = flux_chi2(model_flux, self.flux, self.ivar)
        ll = -0.5 * chi2 + self.log_norm
        return np.where(np.isfinite(ll), ll, -np.inf)

    def __call__(self, theta_w) -> np.ndarray:
        theta_w = np.atleast_2d(np.asarray(theta_w, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            lp = self.prior.log_prob_warped(theta_w)
        lp = np.where(np.isnan(lp), -np.inf, lp)   # 0 * log(0) at a u = 0 edge (measure zero)
        ok = np.isfinite(lp)
        if np.any(ok):
            lp[ok] += self.log_likelihood(from_warped(theta_w[ok]))
        return lp


__all__ = ["LIKELIHOODS", "LogPosterior", "flux_and_ivar", "flux_chi2", "observed_flux"]

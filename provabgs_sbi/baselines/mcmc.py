"""The MCMC baseline: ensemble slice sampling of one galaxy's posterior (model-spec 2.5).

SEDflow refits the galaxies its flow cannot handle, and checks the flow, with PROVABGS's
MCMC: zeus ensemble slice sampling (Karamanis & Beutler 2020) with 30 walkers, 10,000
iterations and 2,000 of burn-in, the emulator evaluated ~2.9 ms per call. This module
does the same for any model with ``photometry(theta (N, 12), z) -> (N, 5)`` AB nanomaggies:
the :class:`~provabgs_sbi.emulator.core.Emulator`, or the direct
:class:`~provabgs_sbi.model.sed_model.SEDModel` (to check the emulator itself).

Posterior
---------
Sampled in the prior's 11 **warped** coordinates
[log_mstar, u1, u2, u3, fburst, tburst, log10 gamma1, log10 gamma2, tau_bc, tau_ism, n_dust]::

    log p(w | x) = log pi(w) + log L(x | w) + const,
    log L = -1/2 sum_b ivar_b (f_b - F_b(from_warped(w), z))^2 - 1/2 sum_b log(2 pi / ivar_b)

with ``pi`` = :meth:`Prior.log_prob_warped` (-inf outside the box; the model is then not
called), ``F`` the model's ugriz in nanomaggies, and the observed fluxes and inverse
variances from x = [m_u..m_z, sigma_u..sigma_z, z]: f = 10^(-0.4 (m - 22.5)),
sigma_f = f ln(10) / 2.5 sigma_m, ivar = 1 / sigma_f^2 (the catalog's inverse variance to
first order; pass ``ivar=`` to use a catalog's inverse variances directly). A model flux
that is not finite gives log L = -inf.

Initialisation
--------------
``n_init`` (default 4096) points are drawn from the prior and evaluated in one batched model
call; the walkers are then ``n_walkers`` further prior draws pulled towards the best of
them, ``w_k = w_best + init_scale (w_k - w_best)`` (default ``init_scale`` = 0.01). Each
walker is a convex combination of two points of the (convex) support box, so it lies in
the support, and the ball is small (1% of the prior's extent) but non-degenerate, as the
ensemble's differential moves need. The burn-in then forgets the start.

Randomness
----------
Everything is drawn from ``numpy.random.default_rng(seed)``. zeus draws from numpy's global
``np.random`` and from Python's ``random`` (the pair choice of its differential move), so
both are seeded from that generator for the run and **restored afterwards**: the same
seed gives identical chains, and the caller's global random state is left untouched.
zeus also resets the root logger when a sampler is built; its handlers and level are
restored after the run as well.

Flow preconditioning (NeuTra)
-----------------------------
With ``precondition=flow`` (a trained :class:`~provabgs_sbi.inference.flows.ConditionalFlow`, or the
first member of a :class:`~provabgs_sbi.inference.ensemble.FlowEnsemble` or of a
:class:`~provabgs_sbi.inference.posterior.Posterior`'s flow) zeus samples the flow's base noise eps
instead of w (Hoffman et al. 2019, "NeuTra-lizing bad geometry")::

    log p(eps | x) = log p(w(eps) | x) + log |det dw / d eps|,   w(eps) = flow map given x

This is the **same posterior**, exactly, whatever the flow: the flow only changes the
coordinates. Where q(w | x) is close to p(w | x), eps is close to a standard normal and
the curved degeneracies of the SFH and dust parameters are straightened out. On two bc03
test galaxies, 10,000 iterations gave tau of 155-577 iterations (plain coordinates: ~600 at
10,000, 1,070-1,440 at 20,000), at ~2.1x the cost per iteration (the map is called as often
as the model and is sequential); neither run met the convergence criterion. The walkers
start as ``n_init`` flow draws resampled by their importance weights p / q
(:func:`~provabgs_sbi.experimental.neutra.flow_walkers`); the chain, samples and log densities are
reported in w as without preconditioning, and the convergence report is computed on w.
The map is :class:`~provabgs_sbi.experimental.neutra.FlowMap` (numpy, float64) for affine flows.

Convergence
-----------
:func:`convergence_report` on the post-burn-in chain (before thinning): integrated
autocorrelation time tau per parameter (FFT estimator, the normalised autocorrelation
averaged over walkers, Sokal's automatic window with c = 5), effective sample size
n_eff = n_walkers n_post / tau, and split-R-hat (Gelman et al. 2013: every walker's chain
cut into two halves, 2 n_walkers chains). ``converged`` is True when, for **every**
parameter, ``n_post >= tau_factor * tau`` (default 50, so tau itself is reliably
estimated) and ``R-hat < rhat_max`` (default 1.05).
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from provabgs_sbi.flags import CATALOG_FLAG_NAMES, FLAGS_UNCONVERTIBLE

from provabgs_sbi.model.parameters import N_PARAMS, N_WARPED, PARAM_NAMES, WARPED_NAMES, from_warped
from provabgs_sbi.model.observation import N_X, SDSS as XL
from provabgs_sbi.model.photometry import flux_error, mag_to_nanomaggies
from provabgs_sbi.model.priors import Prior

_N_BANDS = XL.n_bands
#: Rows per call of ``derived`` (bounds memory for 10^5+ samples).
_DERIVED_CHUNK = 20000


# ------------------------------------------------------------------------ configuration
#: Likelihoods of :class:`LogPosterior`: Gaussian in fluxes (the paper) or in magnitudes.
LIKELIHOODS = ("flux", "mag")


@dataclass(frozen=True)
class MCMCConfig:
    """Settings of one MCMC run (validated on construction; defaults as SEDflow's MCMC).

    Attributes
    ----------
    n_walkers : int
        zeus walkers; even and at least 2 x 11 = 22. Default 30.
    n_steps : int
        Iterations (each moves every walker once). Default 10,000.
    burn_in : int
        Iterations dropped from the start; ``n_steps - burn_in >= 4``. Default 2,000.
    thin : int
        Keep every ``thin``-th post-burn-in iteration in the samples (the full chain is
        kept in :attr:`MCMCResult.chain`). Default 1.
    n_init : int
        Prior draws among which the best starting point is chosen (with preconditioning:
        flow draws resampled into the walkers). Default 4096.
    init_scale : float
        Size of the starting ball as a fraction of the way from the best draw to fresh
        prior draws, in (0, 1]. Default 0.01.
    tau_factor : float
        Converged needs n_post >= tau_factor * tau for every parameter. Default 50.
    rhat_max : float
        Converged needs split-R-hat < rhat_max for every parameter. Default 1.05.
    likelihood : {"flux", "mag"}
        Gaussian in nanomaggies (default, the paper's) or in AB magnitudes (the noise
        model of the simulated training and test galaxies); see :class:`LogPosterior`.
    init : {"resample", "ball"}
        Walker initialisation (:func:`initial_walkers`). Default "resample".
    move : {"differential", "kde", "global"}
        zeus's proposal of slice directions: the differential move (zeus's default: the
        difference of two other walkers), the KDE move (a kernel density estimate of the
        other walkers) or the global move (a Gaussian mixture of them). Default
        "differential".
    precondition : {"none", "flow"}
        Sample w directly, or a flow's base noise (module docstring). "flow" needs
        ``init="flow"`` (walkers start as flow draws), and only "flow" allows it.
    """

    n_walkers: int = 30
    n_steps: int = 10000
    burn_in: int = 2000
    thin: int = 1
    n_init: int = 4096
    init_scale: float = 0.01
    tau_factor: float = 50.0
    rhat_max: float = 1.05
    likelihood: str = "flux"
    init: str = "resample"
    move: str = "differential"
    precondition: str = "none"

    def __post_init__(self):
        for name in ("n_walkers", "n_steps", "burn_in", "thin", "n_init"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.n_walkers < 2 * N_WARPED or self.n_walkers % 2:
            raise ValueError(f"n_walkers must be even and >= {2 * N_WARPED} (zeus needs at least "
                             f"2 x {N_WARPED} walkers), got {self.n_walkers}")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if not 0 <= self.burn_in <= self.n_steps - 4:
            raise ValueError(f"burn_in must be in [0, n_steps - 4] = [0, {self.n_steps - 4}] "
                             f"(at least 4 iterations after burn-in), got {self.burn_in}")
        if self.thin < 1:
            raise ValueError(f"thin must be >= 1, got {self.thin}")
        if self.n_init < 1:
            raise ValueError(f"n_init must be >= 1, got {self.n_init}")
        if not 0 < self.init_scale <= 1:
            raise ValueError(f"init_scale must be in (0, 1], got {self.init_scale}")
        if not self.tau_factor > 0:
            raise ValueError(f"tau_factor must be > 0, got {self.tau_factor}")
        if not self.rhat_max > 1:
            raise ValueError(f"rhat_max must be > 1, got {self.rhat_max}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.move not in ("differential", "kde", "global"):
            raise ValueError(f"move must be 'differential', 'kde' or 'global', got {self.move!r}")
        if self.init not in ("resample", "ball", "flow"):
            raise ValueError(f"init must be 'resample', 'ball' or 'flow', got {self.init!r}")
        if self.precondition not in ("none", "flow"):
            raise ValueError(f"precondition must be 'none' or 'flow', got {self.precondition!r}")
        if (self.init == "flow") != (self.precondition == "flow"):
            raise ValueError("init='flow' (walkers drawn from the flow) goes with "
                             "precondition='flow' and only with it; got "
                             f"init={self.init!r}, precondition={self.precondition!r}")

    @property
    def n_post(self) -> int:
        """Iterations after burn-in."""
        return self.n_steps - self.burn_in

    @property
    def n_kept(self) -> int:
        """Samples returned: n_walkers x ceil(n_post / thin)."""
        return self.n_walkers * len(range(self.burn_in, self.n_steps, self.thin))


# ------------------------------------------------------------------------ data and likelihood
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
        nmgy^-2; without ``ivar``, 1 / (f ln(10) / 2.5 sigma_m)^2.
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
    flux = mag_to_nanomaggies(mags)
    if ivar is None:
        if not np.all(np.isfinite(sig_m)) or np.any(sig_m <= 0):
            raise ValueError(f"magnitude errors must be finite and > 0, got {sig_m.tolist()}")
        sigma_f = flux_error(flux, sig_m)
        ivar = 1.0 / sigma_f**2
    else:
        ivar = np.asarray(ivar, dtype=np.float64)
        if ivar.shape != (_N_BANDS,):
            raise ValueError(f"ivar must have shape ({_N_BANDS},) (ugriz, nmgy^-2), got {ivar.shape}")
        if not np.all(np.isfinite(ivar)) or np.any(ivar <= 0):
            raise ValueError(f"ivar must be finite and > 0 in every band, got {ivar.tolist()}")
        ivar = ivar.copy()
    return flux, ivar, z


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
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if self.likelihood == "mag":
                model_mag = 22.5 - 2.5 * np.log10(np.where(model_flux > 0, model_flux, np.nan))
                chi2 = np.sum(((model_mag - self.mags) / self.sigma_mag) ** 2, axis=1)
            else:
                chi2 = np.sum(self.ivar * (model_flux - self.flux) ** 2, axis=1)
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


def sampling_model(model, z: float):
    """The evaluator an MCMC of one galaxy at redshift ``z`` calls.

    For a model with ``at_redshift`` (the :class:`~provabgs_sbi.emulator.Emulator`), its
    fixed-redshift evaluator in **float64**; otherwise the model itself. A slice sampler
    needs a density that does not depend on which other points share the call. In float32
    the batched matrix products round differently for different batch sizes: the same
    point's magnitudes moved by up to 1.4e-6 mag between calls of 1, 7 and 64 points,
    ~1e-4 nats in the log posterior at 0.02 mag errors. A slice level drawn that close
    below the current density cannot be bracketed; a 20,000-step zeus run of a test
    galaxy in float32 stopped at step ~17,800 with zeus's "Number of contractions
    exceeded maximum limit". float64 makes the density a function of the point alone,
    for 1.7x the seconds per 15-point call (1.7 -> 2.8 ms on this 2-core CPU,
    ``benchmarks/bench_timing.py``).

    Parameters
    ----------
    model : Emulator or object with ``photometry(theta, z)``
    z : float

    Returns
    -------
    object with ``photometry(theta, z)``
    """
    if hasattr(model, "at_redshift"):
        return model.at_redshift(z, dtype=np.float64)
    return model


# ------------------------------------------------------------------------ diagnostics
def autocorr_time(chain, c: float = 5.0) -> np.ndarray:
    """Integrated autocorrelation time of each parameter of an ensemble chain.

    The normalised autocorrelation function of every walker is computed by FFT and
    averaged over walkers (walkers that never move in a parameter are left out);
    tau(M) = 1 + 2 sum_{t=1}^{M} rho(t) is read at Sokal's (1989) window, the smallest M with
    M >= c tau(M) (the last lag if there is none).

    Parameters
    ----------
    chain : ndarray of shape (n_steps, n_walkers, n_dim)
    c : float
        Window constant (default 5).

    Returns
    -------
    ndarray of shape (n_dim,)
        tau in iterations; NaN for a parameter no walker moves in.
    """
    chain = np.asarray(chain, dtype=np.float64)
    if chain.ndim != 3:
        raise ValueError(f"chain must have shape (n_steps, n_walkers, n_dim), got {chain.shape}")
    n = chain.shape[0]
    x = chain - chain.mean(axis=0)
    n_fft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, n=n_fft, axis=0)
    acf = np.fft.irfft(spec * np.conj(spec), n=n_fft, axis=0)[:n]      # (n, W, D)
    var = acf[0]
    moving = var > 1e-300 * max(1.0, float(np.abs(chain).max(initial=0.0)) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(moving, acf / np.where(moving, var, 1.0), 0.0)
        rho = rho.sum(axis=1) / moving.sum(axis=0)                      # (n, D)
    taus = 2.0 * np.cumsum(rho, axis=0) - 1.0
    out = np.full(chain.shape[2], np.nan)
    lags = np.arange(n)[:, None]
    for d in range(chain.shape[2]):
        if not np.any(moving[:, d]):
            continue
        inside = lags[:, 0] < c * taus[:, d]
        window = int(np.argmin(inside)) if not np.all(inside) else n - 1
        out[d] = taus[window, d]
    return out


def split_rhat(chain) -> np.ndarray:
    """Split-R-hat (Gelman et al. 2013, BDA3 eq. 11.4) of each parameter.

    Every walker's chain is cut into a first and second half (the middle iteration dropped
    when the length is odd), giving 2 n_walkers chains of length n/2;
    R-hat = sqrt(((n/2 - 1)/(n/2) W + B/(n/2)) / W) with W the mean within-chain variance
    and B/(n/2) the variance of the chain means.

    Parameters
    ----------
    chain : ndarray of shape (n_steps, n_walkers, n_dim)
        n_steps >= 4.

    Returns
    -------
    ndarray of shape (n_dim,)
        NaN for a parameter that is constant within every chain.
    """
    chain = np.asarray(chain, dtype=np.float64)
    if chain.ndim != 3 or chain.shape[0] < 4:
        raise ValueError(f"chain must have shape (n_steps >= 4, n_walkers, n_dim), got {chain.shape}")
    half = chain.shape[0] // 2
    chains = np.concatenate([chain[:half], chain[-half:]], axis=1)     # (half, 2W, D)
    means = chains.mean(axis=0)
    w = chains.var(axis=0, ddof=1).mean(axis=0)
    b_over_n = means.var(axis=0, ddof=1)
    var_plus = (half - 1) / half * w + b_over_n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, np.sqrt(var_plus / np.where(w > 0, w, 1.0)), np.nan)


def convergence_report(chain_post, tau_factor: float = 50.0, rhat_max: float = 1.05) -> dict:
    """Convergence diagnostics of a post-burn-in ensemble chain.

    Parameters
    ----------
    chain_post : ndarray of shape (n_post, n_walkers, n_dim)
        The chain after burn-in, not thinned.
    tau_factor, rhat_max : float
        Thresholds of ``converged`` (see the module docstring).

    Returns
    -------
    dict
        ``tau`` (n_dim,) integrated autocorrelation time in iterations; ``n_eff`` (n_dim,)
        n_walkers n_post / tau; ``rhat`` (n_dim,) split-R-hat; ``n_post`` (int);
        ``tau_ok`` and ``rhat_ok`` (n_dim,) bool per parameter; ``converged`` (bool, every
        parameter passes both); ``criteria`` (str); ``tau_factor``, ``rhat_max``.
        A NaN tau or R-hat (a parameter that never moves) fails.
    """
    chain_post = np.asarray(chain_post, dtype=np.float64)
    n_post, n_walkers = chain_post.shape[:2]
    tau = autocorr_time(chain_post)
    rhat = split_rhat(chain_post)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = n_walkers * n_post / tau
        tau_ok = n_post >= tau_factor * tau
        rhat_ok = rhat < rhat_max
    return {
        "tau": tau,
        "n_eff": n_eff,
        "rhat": rhat,
        "n_post": int(n_post),
        "tau_ok": tau_ok,
        "rhat_ok": rhat_ok,
        "converged": bool(np.all(tau_ok) and np.all(rhat_ok)),
        "criteria": (f"for every parameter: n_post >= {tau_factor:g} tau (integrated "
                     f"autocorrelation time) and split-R-hat < {rhat_max:g}"),
        "tau_factor": float(tau_factor),
        "rhat_max": float(rhat_max),
    }


# ------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class MCMCResult:
    """Posterior samples and diagnostics of one galaxy.

    Attributes
    ----------
    samples : ndarray of shape (n_kept, 12)
        Physical parameters (:data:`~provabgs_sbi.model.parameters.PARAM_NAMES`), post burn-in,
        thinned, ordered iteration-major (all walkers of an iteration together).
    samples_warped : ndarray of shape (n_kept, 11)
        The same in warped coordinates (:data:`~provabgs_sbi.model.parameters.WARPED_NAMES`).
    log_prob : ndarray of shape (n_kept,)
        Log posterior density (warped coordinates, up to the evidence) of each sample.
    chain : ndarray of shape (n_steps, n_walkers, 11)
        The full warped chain, burn-in included.
    chain_log_prob : ndarray of shape (n_steps, n_walkers)
    convergence : dict
        :func:`convergence_report` of the post-burn-in chain.
    timing : dict
        ``init_s``, ``sampling_s``, ``derived_s``, ``total_s`` (seconds);
        ``n_model_calls``, ``n_model_points`` and ``model_s`` of the sampling phase;
        ``s_per_call`` (seconds per batched model call) and ``points_per_call``;
        ``flow_s``, seconds in the preconditioning flow while sampling (0 without).
    derived : dict of ndarray of shape (n_kept,) or None
        ``model.derived`` of the samples (surviving mass, SFRs, ...), if available.
    flux, ivar : ndarray of shape (5,)
        Observed AB nanomaggies and inverse variances used.
    z : float
    x : ndarray of shape (11,)
    start : ndarray of shape (n_walkers, 11)
        Initial walker positions (warped; with preconditioning, the flow draws mapped to w).
    config : MCMCConfig
    prior_kind : str
    """

    samples: np.ndarray
    samples_warped: np.ndarray
    log_prob: np.ndarray
    chain: np.ndarray
    chain_log_prob: np.ndarray
    convergence: dict
    timing: dict
    derived: dict | None
    flux: np.ndarray
    ivar: np.ndarray
    z: float
    x: np.ndarray
    start: np.ndarray
    config: MCMCConfig
    prior_kind: str = "default"
    param_names: tuple = field(default=PARAM_NAMES)

    @property
    def converged(self) -> bool:
        return bool(self.convergence["converged"])

    def median_warped(self) -> np.ndarray:
        """Per-coordinate posterior median in warped coordinates, shape (11,)."""
        return np.median(self.samples_warped, axis=0)

    def quantiles(self, q) -> np.ndarray:
        """Quantiles ``q`` (in [0, 1]) of the physical samples, shape (len(q), 12)."""
        return np.quantile(self.samples, np.atleast_1d(q), axis=0)


# ------------------------------------------------------------------------ sampler
@contextmanager
def _zeus_global_state(seed: int):
    """Seed numpy's global RNG and Python's ``random`` (what zeus draws from) and restore
    both, and the root logger zeus reconfigures, on exit."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def _import_zeus():
    """``import zeus``, leaving Python's and numpy's global random states as they were (its
    first import draws from ``random``, which made a process's first chain differ from the
    next ones with the same seed)."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        import zeus
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return zeus


@contextmanager
def _blas_limit(n_threads: int | None):
    """Limit BLAS threads with threadpoolctl when it is installed (no-op otherwise)."""
    if n_threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=int(n_threads), user_api="blas"):
        yield


def _derived_source(model, derived_model):
    if derived_model is not None:
        if not callable(getattr(derived_model, "derived", None)):
            raise ValueError("derived_model must have a derived(theta, z) method (e.g. a SEDModel)")
        return derived_model
    if callable(getattr(model, "derived", None)):
        return model
    burst = getattr(model, "burst_model", None)           # the Emulator's SSP model
    if burst is not None and callable(getattr(burst, "derived", None)):
        return burst
    return None


def _compute_derived(source, samples, z) -> dict:
    parts: dict[str, list] = {}
    for s in range(0, len(samples), _DERIVED_CHUNK):
        chunk = samples[s:s + _DERIVED_CHUNK]
        for k, v in source.derived(chunk, np.full(len(chunk), z)).items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def initial_walkers(log_post: LogPosterior, prior: Prior, n_walkers: int, rng,
                    n_init: int = 4096, init_scale: float = 0.01, init: str = "ball"):
    """Starting positions from ``n_init`` prior draws evaluated in one batched call.

    ``"ball"``: a small ball of prior draws pulled towards the best prior draw.
    ``"resample"``: walkers drawn from the prior draws with weights proportional to their
    likelihood (sampling-importance-resampling), each pulled ``init_scale`` of the way
    towards a fresh prior draw so that repeats separate. The walkers then start spread
    over the posterior's bulk where the likelihood is broad (most parameters of a
    five-band fit) and near the best draw where it is sharp; an ensemble started in a tiny
    ball must instead expand to the posterior's width first, which took the bc03 fits
    more than 4,000 iterations (split-R-hat 1.5-3).

    Parameters
    ----------
    log_post : LogPosterior
    prior : Prior
    n_walkers : int
    rng : numpy.random.Generator
    n_init : int
        Prior draws evaluated (one batched model call) to find the best start.
    init_scale : float
        w_k = w_best + init_scale (w'_k - w_best) with w'_k fresh prior draws (for
        "resample", w_best is each walker's resampled draw).
    init : {"ball", "resample"}

    Returns
    -------
    start : ndarray of shape (n_walkers, 11)
    log_prob : ndarray of shape (n_walkers,)

    Raises
    ------
    RuntimeError
        No prior draw, or not every walker, has a finite posterior density.
    """
    draws = prior.sample_warped(n_init, seed=rng)
    lp = log_post(draws)
    if not np.any(np.isfinite(lp)):
        raise RuntimeError(f"none of {n_init} prior draws has a finite posterior density; "
                           "check the data and the model")
    if init == "resample":
        with np.errstate(invalid="ignore", divide="ignore"):
            log_l = lp - prior.log_prob_warped(draws)
        log_l = np.where(np.isfinite(log_l), log_l, -np.inf)
        wts = np.exp(log_l - log_l.max())
        best = draws[rng.choice(len(draws), size=n_walkers, p=wts / wts.sum())]
    elif init == "ball":
        best = draws[int(np.argmax(lp))]
    else:
        raise ValueError(f"init must be 'ball' or 'resample', got {init!r}")
    start = best + init_scale * (prior.sample_warped(n_walkers, seed=rng) - best)
    start = np.clip(start, prior.low, prior.high)            # guards rounding only
    lp_start = log_post(start)
    if not np.all(np.isfinite(lp_start)):
        raise RuntimeError("some starting walkers have a non-finite posterior density")
    return start, lp_start


def run_mcmc(x, model, n_walkers: int = 30, n_steps: int = 10000, burn_in: int = 2000,
             seed=0, prior: Prior | None = None, thin: int = 1, progress: bool = True, *,
             ivar=None, derived_model=None, compute_derived: bool = True, n_init: int = 4096,
             init_scale: float = 0.01, tau_factor: float = 50.0,
             rhat_max: float = 1.05, blas_threads: int | None = 1,
             fixed_redshift: bool = True, likelihood: str = "flux",
             init: str | None = None, move: str = "differential",
             precondition=None) -> MCMCResult:
    """Sample one galaxy's posterior with zeus ensemble slice sampling.

    Parameters
    ----------
    x : array_like of shape (11,)
        [m_u, m_g, m_r, m_i, m_z (AB mag), sigma_u .. sigma_z (mag), z].
    model : object
        ``model.photometry(theta (N, 12), z (N,)) -> (N, 5)`` AB nanomaggies: an
        ``Emulator`` or a ``SEDModel``. If it has ``z_range``, z must lie in it.
    n_walkers, n_steps, burn_in, thin, n_init, init_scale, tau_factor, rhat_max, init, move
        See :class:`MCMCConfig` (defaults as the paper: 30 walkers, 10,000 iterations,
        2,000 of burn-in).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds everything (the initialisation and zeus); the same seed gives identical
        results for a deterministic model.
    prior : Prior, optional
        Default ``Prior()`` (flat Dirichlet on the betas). Any object with ``low``,
        ``high`` (shape (11,)), ``sample_warped(n, seed)`` and ``log_prob_warped(w)`` works.
    progress : bool
        Show zeus's progress bar.
    ivar : array_like of shape (5,), optional
        Flux inverse variances (nmgy^-2) to use instead of the magnitude errors in x.
    derived_model : object, optional
        Has ``derived(theta, z)``; default ``model`` itself if it has ``derived``, else
        ``model.burst_model`` (the emulator's SEDModel) if that has it.
    compute_derived : bool
        Compute derived properties of the samples (None in the result if no source).
    blas_threads : int or None
        BLAS threads while sampling (through ``threadpoolctl``, installed with
        scikit-learn; ignored without it). Default 1: zeus evaluates at most
        n_walkers / 2 points per call, too few for threaded BLAS to pay. On a loaded
        2-core machine a 15-point call took 58 ms -> 8 ms (bc03 SEDModel) and
        1.7 s -> 18 ms (PROVABGS NMF emulator) with one BLAS thread. None leaves BLAS
        as it is. The batched initial call (``n_init`` points) is not limited.
    init : {"resample", "ball", "flow"} or None
        None: "flow" with ``precondition``, otherwise "resample".
    precondition : ConditionalFlow, FlowEnsemble or Posterior, optional
        Sample the flow's base noise instead of the warped parameters (NeuTra, see the
        module docstring and :func:`~provabgs_sbi.experimental.neutra.preconditioning_flow`). The
        posterior is unchanged.
    fixed_redshift : bool
        If the model has ``at_redshift(z)`` (the :class:`~provabgs_sbi.emulator.Emulator`),
        sample with that evaluator (:func:`sampling_model`): the work that depends only on
        z is done once. False calls ``model.photometry``.
    likelihood : {"flux", "mag"}
        See :class:`LogPosterior`: "flux" (default, the paper's; uses ``ivar`` or the errors
        in x) or "mag" (Gaussian in magnitudes with the errors in x, as the training sets
        are simulated; ``ivar`` is then ignored).

    Returns
    -------
    MCMCResult

    Raises
    ------
    ValueError
        Bad x or ivar (see :func:`observed_flux`), or bad settings (see :class:`MCMCConfig`).
    RuntimeError
        No finite posterior density among the prior draws.
    """
    t_start = time.perf_counter()
    flow = None
    if precondition is not None:       # imported only here: it imports the flow code
        from provabgs_sbi.experimental.neutra import FlowTarget, flow_walkers, preconditioning_flow

        flow = preconditioning_flow(precondition)
    if init is None:
        init = "resample" if flow is None else "flow"
    config = MCMCConfig(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in, thin=thin,
                        n_init=n_init, init_scale=init_scale, tau_factor=tau_factor,
                        rhat_max=rhat_max, likelihood=likelihood, init=init, move=move,
                        precondition="none" if flow is None else "flow")
    if not callable(getattr(model, "photometry", None)):
        raise ValueError("model must have a photometry(theta, z) method")
    prior = Prior() if prior is None else prior
    flux, ivar, z = observed_flux(x, ivar, model)
    rng = np.random.default_rng(seed)
    fast = sampling_model(model, z) if fixed_redshift else model
    xa = np.asarray(x, dtype=np.float64)
    log_post = LogPosterior(flux, ivar, z, fast, prior, likelihood=config.likelihood,
                            mags=XL.mags(xa), sigma_mag=XL.errors(xa))

    if flow is None:
        target = log_post
        start, _ = initial_walkers(log_post, prior, config.n_walkers, rng, config.n_init,
                                   config.init_scale, config.init)
    else:
        if not (np.allclose(flow.low, prior.low) and np.allclose(flow.high, prior.high)):
            raise ValueError("the preconditioning flow's box is not the prior's box")
        target = FlowTarget(log_post, flow, xa)
        start, _ = flow_walkers(target, config.n_walkers, rng, config.n_init)
    t_init = time.perf_counter()
    log_post.reset_counters()
    flow_s0 = getattr(target, "flow_s", 0.0)

    zeus_seed = int(rng.integers(2**32))
    zeus = _import_zeus()
    with _zeus_global_state(zeus_seed), _blas_limit(blas_threads):
        moves = {"differential": zeus.moves.DifferentialMove, "kde": zeus.moves.KDEMove,
                 "global": zeus.moves.GlobalMove}[config.move]()
        sampler = zeus.EnsembleSampler(config.n_walkers, N_WARPED, target, vectorize=True,
                                       verbose=False, moves=moves)
        sampler.run_mcmc(start, nsteps=config.n_steps, progress=progress)
    chain = np.asarray(sampler.get_chain(), dtype=np.float64)        # (n_steps, W, 11)
    chain_lp = np.asarray(sampler.get_log_prob(), dtype=np.float64)  # (n_steps, W)
    flow_s = getattr(target, "flow_s", 0.0) - flow_s0
    t_sampled = time.perf_counter()
    if flow is not None:
        # Back to w: the density of w is that of eps minus the map's log-Jacobian.
        start_eps = start
        w, log_det = target.to_warped(chain.reshape(-1, N_WARPED))
        chain = w.reshape(chain.shape)
        chain_lp = chain_lp - log_det.reshape(chain_lp.shape)
        start = target.to_warped(start_eps)[0]

    keep = slice(config.burn_in, config.n_steps, config.thin)
    samples_w = chain[keep].reshape(-1, N_WARPED)
    samples = from_warped(samples_w)
    conv = convergence_report(chain[config.burn_in:], config.tau_factor, config.rhat_max)

    derived = None
    if compute_derived:
        source = _derived_source(model, derived_model)
        if source is not None:
            derived = _compute_derived(source, samples, z)
    t_end = time.perf_counter()

    n_calls = log_post.n_calls
    timing = {
        "init_s": t_init - t_start,
        "sampling_s": t_sampled - t_init,
        "derived_s": t_end - t_sampled,
        "total_s": t_end - t_start,
        "n_model_calls": int(n_calls),
        "n_model_points": int(log_post.n_points),
        "model_s": float(log_post.model_s),
        "s_per_call": float(log_post.model_s / n_calls) if n_calls else float("nan"),
        "points_per_call": float(log_post.n_points / n_calls) if n_calls else float("nan"),
        "flow_s": float(flow_s),
    }
    return MCMCResult(samples=samples, samples_warped=samples_w,
                      log_prob=chain_lp[keep].reshape(-1), chain=chain, chain_log_prob=chain_lp,
                      convergence=conv, timing=timing, derived=derived, flux=flux, ivar=ivar,
                      z=z, x=np.asarray(x, dtype=np.float64).copy(), start=start, config=config,
                      prior_kind=getattr(prior, "kind", "custom"))


# ------------------------------------------------------------------------ checks
def chi2_of_median(x, samples, model, ivar=None, per_band: bool = False):
    """Posterior predictive check: chi^2 of the posterior-median model photometry.

    The median is taken per coordinate in the **warped** coordinates (so the betas of the
    median stay on the simplex) and mapped back; the model is called once.

    Parameters
    ----------
    x : array_like of shape (11,)
        The galaxy's conditioning vector (as for :func:`run_mcmc`).
    samples : ndarray of shape (n, 12) or MCMCResult
        Physical posterior samples.
    model : object
        ``photometry(theta, z)`` in AB nanomaggies.
    ivar : array_like of shape (5,), optional
        Flux inverse variances, instead of the magnitude errors in x.
    per_band : bool
        Return the five per-band terms instead of their sum.

    Returns
    -------
    float, or ndarray of shape (5,) with ``per_band``
        sum_b ivar_b (f_b - F_b(theta_median))^2 over ugriz.
    """
    from provabgs_sbi.inference.ppc import median_parameters

    flux, ivar, z = observed_flux(x, ivar, model)
    if isinstance(samples, MCMCResult):
        med = from_warped(samples.median_warped()[None])
    else:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != N_PARAMS or len(samples) == 0:
            raise ValueError(f"samples must have shape (n >= 1, {N_PARAMS}), got {samples.shape}")
        med = median_parameters(samples[None])
    model_flux = np.asarray(model.photometry(med, np.array([z])))[0]
    terms = ivar * (model_flux - flux) ** 2
    return terms if per_band else float(terms.sum())


# ------------------------------------------------------------------------ catalogs
_TMP_PREFIX = "_writing_"


def _row_name(row: int) -> str:
    return f"row_{int(row)}"


def _json_attr(obj) -> str:
    def conv(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (np.floating, np.bool_)):
            return v.item()
        raise TypeError(f"cannot serialise {type(v)}")

    return json.dumps(obj, default=conv, sort_keys=True)


def _model_description(model) -> dict:
    desc = {"class": type(model).__name__}
    ssp_hash = getattr(model, "ssp_hash", None) or getattr(getattr(model, "burst_model", None),
                                                          "ssp_hash", None)
    if ssp_hash:
        desc["ssp_hash"] = str(ssp_hash)
    manifest = getattr(model, "manifest_sha256", None)      # tells apart emulators of one table
    if manifest:
        desc["manifest_sha256"] = str(manifest)
    return desc


def _same_settings(stored: dict, wanted: dict) -> bool:
    """Whether a results file's settings are these. Files written before the emulator's
    manifest SHA-256 was recorded (when one bc03 emulator existed) keep resuming."""
    if "manifest_sha256" not in stored.get("model", {}):
        wanted = {**wanted, "model": {k: v for k, v in wanted.get("model", {}).items()
                                      if k != "manifest_sha256"}}
    return stored == wanted


def _open_catalog(catalog_or_path):
    from astropy.table import Table

    from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog

    if isinstance(catalog_or_path, PhotometryCatalog):
        return catalog_or_path
    if isinstance(catalog_or_path, (str, os.PathLike, Table)):
        return read_catalog(catalog_or_path)
    raise ValueError("catalog must be a PhotometryCatalog, an astropy Table or a file path; "
                     f"got {type(catalog_or_path).__name__}")


def _write_result(group, res: MCMCResult, n_save: int | None) -> None:
    sl = slice(None) if n_save is None else slice(-int(n_save), None)
    kw = {"compression": "gzip", "shuffle": True}
    group.create_dataset("samples", data=res.samples[sl], **kw)
    group.create_dataset("samples_warped", data=res.samples_warped[sl], **kw)
    group.create_dataset("log_prob", data=res.log_prob[sl], **kw)
    if res.derived is not None:
        sub = group.create_group("derived")
        for k, v in res.derived.items():
            sub.create_dataset(k, data=np.asarray(v)[sl], **kw)
    conv = res.convergence
    for k in ("tau", "n_eff", "rhat", "tau_ok", "rhat_ok"):
        group.attrs[k] = np.asarray(conv[k])
    group.attrs["converged"] = bool(conv["converged"])
    group.attrs["criteria"] = conv["criteria"]
    group.attrs["n_post"] = int(conv["n_post"])
    group.attrs["timing"] = _json_attr(res.timing)
    group.attrs["flux"] = res.flux
    group.attrs["ivar"] = res.ivar


def run_mcmc_catalog(catalog_or_path, rows, model, out, n_walkers: int = 30,
                     n_steps: int = 10000, burn_in: int = 2000, seed: int = 0,
                     progress: bool = True, *, prior: Prior | None = None, thin: int = 1,
                     n_save: int | None = None, derived_model=None,
                     compute_derived: bool = True, retry_failed: bool = False,
                     blas_threads: int | None = 1, likelihood: str = "flux",
                     precondition=None) -> dict:
    """Run :func:`run_mcmc` on selected catalog rows, writing an HDF5 file; resumable.

    Parameters
    ----------
    catalog_or_path : PhotometryCatalog, astropy Table or path
        Read with :func:`~provabgs_sbi.io.catalog.read_catalog` unless already a catalog.
        Each row is fitted with its x (:meth:`PhotometryCatalog.to_x`) and the catalog's
        flux inverse variances (``ivar=``).
    rows : sequence of int or None
        Row indices to fit (None: every row).
    model : object
        As for :func:`run_mcmc`.
    out : path-like
        HDF5 output. Created if missing; otherwise its settings must match.
    n_walkers, n_steps, burn_in, progress, prior, thin, derived_model, compute_derived, blas_threads
        As for :func:`run_mcmc`.
    seed : int
        Row ``r`` is sampled with ``numpy.random.SeedSequence([seed, r])``, so a row's
        result does not depend on which other rows are fitted or in which call.
    n_save : int, optional
        Keep only the last ``n_save`` samples per row (SEDflow keeps 10,000); default all.
    retry_failed : bool
        Re-run rows stored as failed (default: skip them like finished rows).
    likelihood : {"flux", "mag"}
        "flux" uses the catalog's inverse variances; "mag" the magnitude errors of its x.
    precondition : ConditionalFlow, FlowEnsemble or Posterior, optional
        As for :func:`run_mcmc`; the flow's identity
        (:func:`~provabgs_sbi.experimental.neutra.flow_description`) is part of the file's settings.

    Returns
    -------
    dict
        ``done`` (rows fitted now), ``skipped`` (already in the file), ``failed`` (rows
        whose input or model raised ValueError/RuntimeError now; stored with their error).

    Notes
    -----
    Layout: root attributes ``settings`` (JSON: the :class:`MCMCConfig`, seed, prior,
    ``n_save`` and the model's class and SSP hash, checked on resume), ``param_names``,
    ``warped_names``, ``catalog_source``; one group ``row_<r>`` per row with datasets
    ``samples`` (n, 12), ``samples_warped`` (n, 11), ``log_prob`` (n,), ``derived/<name>`` (n,)
    and attributes ``row``, ``id``, ``z``, ``x``, ``status`` ("ok" or "failed"), ``error``,
    the convergence report (``tau``, ``n_eff``, ``rhat``, ``converged``, ...) and
    ``timing`` (JSON).

    Writes are atomic per row: a row is written into a temporary group and renamed to
    ``row_<r>`` (one link operation) only when complete, so a crash leaves at most a
    temporary group, which the next call deletes. (A crash inside HDF5's own write can still
    damage the file, as with any HDF5 file; the file itself is first created under a
    temporary name and renamed.)
    """
    import h5py

    from provabgs_sbi._version import __version__

    catalog = _open_catalog(catalog_or_path)
    n_rows = len(catalog)
    rows = list(range(n_rows)) if rows is None else [int(r) for r in np.atleast_1d(rows)]
    bad = [r for r in rows if not 0 <= r < n_rows]
    if bad:
        raise ValueError(f"rows {bad[:5]} are outside the catalog (0 .. {n_rows - 1})")
    prior = Prior() if prior is None else prior
    flow = None
    if precondition is not None:
        from provabgs_sbi.experimental.neutra import flow_description, preconditioning_flow

        flow = preconditioning_flow(precondition)
    config = MCMCConfig(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in, thin=thin,
                        likelihood=likelihood, init="resample" if flow is None else "flow",
                        precondition="none" if flow is None else "flow")
    if n_save is not None and int(n_save) < 1:
        raise ValueError(f"n_save must be >= 1 or None, got {n_save}")
    config_dict = asdict(config)
    if flow is None:
        del config_dict["precondition"]     # files written before preconditioning keep resuming
    settings = {"config": config_dict, "seed": int(seed),
                "prior": getattr(prior, "kind", type(prior).__name__),
                "n_save": None if n_save is None else int(n_save),
                "model": _model_description(model)}
    if flow is not None:
        settings["precondition"] = flow_description(flow)
    settings_json = _json_attr(settings)

    out = Path(out)
    if not out.exists():
        tmp = out.with_name(out.name + ".part")
        with h5py.File(tmp, "w") as fh:
            fh.attrs["kind"] = "provabgs_sbi.mcmc"
            fh.attrs["version"] = __version__
            fh.attrs["settings"] = settings_json
            fh.attrs["param_names"] = list(PARAM_NAMES)
            fh.attrs["warped_names"] = list(WARPED_NAMES)
            fh.attrs["catalog_source"] = str(catalog.source)
            fh.attrs["catalog_sha256"] = str(catalog.source_sha256 or "")
        os.replace(tmp, out)
    with h5py.File(out, "a") as fh:
        if fh.attrs.get("kind") != "provabgs_sbi.mcmc":
            raise ValueError(f"{out} is not a provabgs_sbi MCMC results file")
        if not _same_settings(json.loads(fh.attrs["settings"]), json.loads(settings_json)):
            raise ValueError(f"{out} was written with other settings ({fh.attrs['settings']}); "
                             f"these are {settings_json}. Use another output file.")
        for name in [k for k in fh.keys() if k.startswith(_TMP_PREFIX)]:
            del fh[name]                                      # left by an interrupted write

    x_all = catalog.to_x()
    summary = {"done": [], "skipped": [], "failed": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(rows), desc="galaxies")
    for r in rows:
        name = _row_name(r)
        with h5py.File(out, "r") as fh:
            existing = fh[name].attrs.get("status") if name in fh else None
        if existing == "ok" or (existing == "failed" and not retry_failed):
            summary["skipped"].append(r)
            if bar is not None:
                bar.update()
            continue
        res, error = None, ""
        bad_flags = [n for bit, n in CATALOG_FLAG_NAMES.items()
                     if catalog.flags[r] & bit & FLAGS_UNCONVERTIBLE]
        try:
            if bad_flags:
                raise ValueError(f"catalog row {r} cannot be fitted: flagged {', '.join(bad_flags)}")
            res = run_mcmc(x_all[r], model, n_walkers=config.n_walkers, n_steps=config.n_steps,
                           burn_in=config.burn_in, thin=config.thin,
                           seed=np.random.SeedSequence([int(seed), r]), prior=prior,
                           progress=progress,
                           ivar=catalog.ivar[r] if likelihood == "flux" else None,
                           derived_model=derived_model, compute_derived=compute_derived,
                           blas_threads=blas_threads, likelihood=likelihood, precondition=flow)
        except (ValueError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with h5py.File(out, "a") as fh:
            tmp_name = _TMP_PREFIX + name
            if tmp_name in fh:
                del fh[tmp_name]
            g = fh.create_group(tmp_name)
            g.attrs["row"] = r
            g.attrs["id"] = str(catalog.ids[r])
            g.attrs["z"] = float(catalog.z[r])
            g.attrs["x"] = x_all[r]
            g.attrs["error"] = error
            g.attrs["status"] = "ok" if res is not None else "failed"
            if res is not None:
                _write_result(g, res, n_save)
            fh.flush()
            if name in fh:
                del fh[name]                                  # a failed row being retried
            fh.move(tmp_name, name)
        summary["done" if res is not None else "failed"].append(r)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return summary


def read_mcmc_row(path, row: int) -> dict:
    """Read one row written by :func:`run_mcmc_catalog`.

    Returns
    -------
    dict
        ``status``, ``error``, ``id``, ``z``, ``x`` and, for finished rows, ``samples``
        (n, 12), ``samples_warped`` (n, 11), ``log_prob`` (n,), ``derived`` (dict or None),
        ``convergence`` (dict: tau, n_eff, rhat, converged, ...) and ``timing`` (dict).
    """
    import h5py

    with h5py.File(path, "r") as fh:
        name = _row_name(row)
        if name not in fh:
            raise KeyError(f"row {row} is not in {path}")
        g = fh[name]
        out = {k: g.attrs[k] for k in ("status", "error", "id", "z", "x")}
        if out["status"] == "ok":
            out["samples"] = g["samples"][()]
            out["samples_warped"] = g["samples_warped"][()]
            out["log_prob"] = g["log_prob"][()]
            out["derived"] = ({k: v[()] for k, v in g["derived"].items()}
                              if "derived" in g else None)
            out["convergence"] = {k: g.attrs[k] for k in ("tau", "n_eff", "rhat", "tau_ok",
                                                          "rhat_ok", "converged", "criteria",
                                                          "n_post")}
            out["timing"] = json.loads(g.attrs["timing"])
    return out

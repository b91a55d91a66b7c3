"""zeus ensemble slice sampling of one galaxy's posterior: settings, result, sampler.

The posterior is :class:`~provabgs_sbi.baselines.likelihood.LogPosterior` in the prior's 11
warped coordinates; :mod:`provabgs_sbi.baselines.mcmc` describes the method.

Initialisation
--------------
``n_init`` (default 4096) points are drawn from the prior and evaluated in one batched model
call; the walkers are then drawn among them by likelihood (``init="resample"``, the
default) or pulled towards the best of them (``"ball"``), each ``init_scale`` (default 0.01)
of the way from a fresh prior draw (:func:`~provabgs_sbi.baselines.walkers.initial_walkers`).
Each walker is a convex combination of two points of the (convex) support box, so it lies
in the support. The burn-in then forgets the start.

Randomness
----------
Everything is drawn from ``numpy.random.default_rng(seed)``. zeus's global random state is
seeded from that generator for the run and restored afterwards
(:mod:`~provabgs_sbi.baselines.zeus_state`): the same seed gives identical chains, and the
caller's global random state and logging are left untouched.

Flow preconditioning (NeuTra)
-----------------------------
With ``precondition=flow`` zeus samples the flow's base noise eps instead of w
(:mod:`provabgs_sbi.experimental.neutra`): the same posterior, in other coordinates. The
walkers start as flow draws resampled by their importance weights; the chain, samples and
log densities are reported in w as without preconditioning, and the convergence report is
computed on w.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from provabgs_sbi.baselines.convergence import convergence_report
from provabgs_sbi.baselines.derived import derived_properties, derived_source
from provabgs_sbi.baselines.likelihood import (LIKELIHOODS, LogPosterior, flux_chi2,
                                               observed_flux)
from provabgs_sbi.baselines.walkers import initial_walkers
from provabgs_sbi.baselines.zeus_state import blas_limit, import_zeus, zeus_globals
from provabgs_sbi.experimental.neutra import FlowTarget, flow_walkers, preconditioning_flow
from provabgs_sbi.inference.ppc import median_parameters
from provabgs_sbi.model.observation import SDSS as XL
from provabgs_sbi.model.parameters import N_PARAMS, N_WARPED, PARAM_NAMES, from_warped
from provabgs_sbi.model.priors import Prior

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
    precondition : {"none", "flow"}
        Sample w directly, or a flow's base noise (module docstring). "flow" needs
        ``init="flow"`` (walkers start as flow draws), and only "flow" allows it.

    Notes
    -----
    zeus proposes slice directions with its differential move (the difference of two other
    walkers). Its KDE and global moves, once options here, did not help on these
    posteriors (the MCMC study in the docs) and were removed.
    """

    # the chain
    n_walkers: int = 30
    n_steps: int = 10000
    burn_in: int = 2000
    thin: int = 1
    # the start
    n_init: int = 4096
    init_scale: float = 0.01
    init: str = "resample"
    # when it has converged
    tau_factor: float = 50.0
    rhat_max: float = 1.05
    # what is sampled
    likelihood: str = "flux"
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


def run_mcmc(x, model, n_walkers: int = 30, n_steps: int = 10000, burn_in: int = 2000,
             seed=0, prior: Prior | None = None, thin: int = 1, progress: bool = True, *,
             ivar=None, derived_model=None, compute_derived: bool = True, n_init: int = 4096,
             init_scale: float = 0.01, tau_factor: float = 50.0,
             rhat_max: float = 1.05, blas_threads: int | None = 1,
             fixed_redshift: bool = True, likelihood: str = "flux",
             init: str | None = None, precondition=None) -> MCMCResult:
    """Sample one galaxy's posterior with zeus ensemble slice sampling.

    Parameters
    ----------
    x : array_like of shape (11,)
        [m_u, m_g, m_r, m_i, m_z (AB mag), sigma_u .. sigma_z (mag), z].
    model : object
        ``model.photometry(theta (N, 12), z (N,)) -> (N, 5)`` AB nanomaggies: an
        ``Emulator`` or a ``SEDModel``. If it has ``z_range``, z must lie in it.
    n_walkers, n_steps, burn_in, thin, n_init, init_scale, tau_factor, rhat_max, init
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
    if precondition is not None:
        flow = preconditioning_flow(precondition)
    if init is None:
        init = "resample" if flow is None else "flow"
    config = MCMCConfig(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in, thin=thin,
                        n_init=n_init, init_scale=init_scale, tau_factor=tau_factor,
                        rhat_max=rhat_max, likelihood=likelihood, init=init,
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
    zeus = import_zeus()
    with zeus_globals(zeus_seed), blas_limit(blas_threads):
        sampler = zeus.EnsembleSampler(config.n_walkers, N_WARPED, target, vectorize=True,
                                       verbose=False, moves=zeus.moves.DifferentialMove())
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
        source = derived_source(model, derived_model)
        if source is not None:
            derived = derived_properties(source, samples, z)
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
    flux, ivar, z = observed_flux(x, ivar, model)
    if isinstance(samples, MCMCResult):
        med = from_warped(samples.median_warped()[None])
    else:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != N_PARAMS or len(samples) == 0:
            raise ValueError(f"samples must have shape (n >= 1, {N_PARAMS}), got {samples.shape}")
        med = median_parameters(samples[None])
    model_flux = np.asarray(model.photometry(med, np.array([z])))[0]
    chi2 = flux_chi2(model_flux, flux, ivar, per_band=per_band)
    return chi2 if per_band else float(chi2)


__all__ = ["MCMCConfig", "MCMCResult", "chi2_of_median", "run_mcmc", "sampling_model"]

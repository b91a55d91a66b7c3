"""The MCMC baseline: ensemble slice sampling of one galaxy's posterior (model-spec 2.5).

SEDflow refits the galaxies its flow cannot handle, and checks the flow, with PROVABGS's
MCMC: zeus ensemble slice sampling (Karamanis & Beutler 2020) with 30 walkers, 10,000
iterations and 2,000 of burn-in, the emulator evaluated ~2.9 ms per call. This module
does the same for any model with ``photometry(theta (N, 12), z) -> (N, 5)`` AB nanomaggies:
the :class:`~provabgs_sbi.emulator.core.Emulator`, or the direct
:class:`~provabgs_sbi.model.sed_model.SEDModel` (to check the emulator itself).

Where things are
----------------
- :mod:`~provabgs_sbi.baselines.likelihood`: the observation (:func:`observed_flux`) and the
  log posterior in the prior's 11 warped coordinates (:class:`LogPosterior`), shared with
  importance sampling;
- :mod:`~provabgs_sbi.baselines.sampler`: :class:`MCMCConfig`, :class:`MCMCResult`,
  :func:`run_mcmc`, :func:`sampling_model`, :func:`chi2_of_median`;
- :mod:`~provabgs_sbi.baselines.walkers`: the starting walkers (:func:`initial_walkers`);
- :mod:`~provabgs_sbi.baselines.convergence`: tau, split-R-hat, :func:`convergence_report`;
- :mod:`~provabgs_sbi.baselines.zeus_state`: seeding zeus and restoring the global state;
- :mod:`~provabgs_sbi.baselines.mcmc_catalog`: many galaxies into one resumable HDF5 file
  (:func:`run_mcmc_catalog`, :func:`read_mcmc_row`);
- :mod:`provabgs_sbi.experimental.neutra`: flow preconditioning (``precondition=``).

This module is the stable import path of them all.
"""
from __future__ import annotations

from provabgs_sbi.baselines.convergence import autocorr_time, convergence_report, split_rhat
from provabgs_sbi.baselines.likelihood import (LIKELIHOODS, LogPosterior, flux_and_ivar,
                                               flux_chi2, observed_flux)
from provabgs_sbi.baselines.mcmc_catalog import read_mcmc_row, run_mcmc_catalog
from provabgs_sbi.baselines.sampler import (MCMCConfig, MCMCResult, chi2_of_median, run_mcmc,
                                            sampling_model)
from provabgs_sbi.baselines.walkers import initial_walkers

__all__ = ["LIKELIHOODS", "LogPosterior", "MCMCConfig", "MCMCResult", "autocorr_time",
           "chi2_of_median", "convergence_report", "flux_and_ivar", "flux_chi2",
           "initial_walkers", "observed_flux", "read_mcmc_row", "run_mcmc", "run_mcmc_catalog",
           "sampling_model", "split_rhat"]

"""provabgs-sbi: amortized posteriors of galaxy properties with the PROVABGS SED model.

Data flows one way: SSP table -> SED model -> photometry -> training set -> flow ->
posteriors. The subpackages follow it: :mod:`~provabgs_sbi.model` (physics),
:mod:`~provabgs_sbi.emulator`, :mod:`~provabgs_sbi.inference`, :mod:`~provabgs_sbi.baselines`,
:mod:`~provabgs_sbi.diagnostics`, :mod:`~provabgs_sbi.workflows`, :mod:`~provabgs_sbi.plots`,
:mod:`~provabgs_sbi.cli`, with files and places in :mod:`~provabgs_sbi.io`.
"""
from provabgs_sbi._version import __version__
from provabgs_sbi.baselines.importance import importance_sample
from provabgs_sbi.baselines.mcmc import run_mcmc
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.inference.ensemble import FlowEnsemble
from provabgs_sbi.inference.flows import ConditionalFlow
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.parameters import PARAM_NAMES, WARPED_NAMES
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.sed_model import SEDConfig, SEDModel
from provabgs_sbi.workflows.fit import fit_catalog

__all__ = ["ConditionalFlow", "DEFAULT_FLOW", "Emulator", "FlowEnsemble", "PARAM_NAMES",
           "Posterior", "Prior", "SEDConfig", "SEDModel", "WARPED_NAMES", "__version__",
           "fit_catalog", "importance_sample", "run_mcmc"]

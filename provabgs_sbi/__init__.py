"""provabgs-sbi: amortized posteriors of galaxy properties with the PROVABGS SED model.

Data flows one way: SSP table -> SED model -> photometry -> training set -> flow ->
posteriors. The subpackages follow it: :mod:`~provabgs_sbi.model` (physics),
:mod:`~provabgs_sbi.emulator`, :mod:`~provabgs_sbi.inference`, :mod:`~provabgs_sbi.baselines`,
:mod:`~provabgs_sbi.diagnostics`, :mod:`~provabgs_sbi.workflows`, :mod:`~provabgs_sbi.plots`,
:mod:`~provabgs_sbi.cli`, with files and places in :mod:`~provabgs_sbi.io`.

The public names below are imported on first use, so ``import provabgs_sbi`` (and the
command line, which must quiet TensorFlow's logging before importing it) loads neither
TensorFlow nor the rest of the package.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from provabgs_sbi._version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "importance_sample": "provabgs_sbi.baselines.importance",
    "run_mcmc": "provabgs_sbi.baselines.mcmc",
    "Emulator": "provabgs_sbi.emulator",
    "FlowEnsemble": "provabgs_sbi.inference.ensemble",
    "ConditionalFlow": "provabgs_sbi.inference.flows",
    "Posterior": "provabgs_sbi.inference.posterior",
    "DEFAULT_FLOW": "provabgs_sbi.io.paths",
    "PARAM_NAMES": "provabgs_sbi.model.parameters",
    "WARPED_NAMES": "provabgs_sbi.model.parameters",
    "Prior": "provabgs_sbi.model.priors",
    "SEDConfig": "provabgs_sbi.model.sed_model",
    "SEDModel": "provabgs_sbi.model.sed_model",
    "fit_catalog": "provabgs_sbi.workflows.fit",
}
#: Subpackages reachable as attributes (``provabgs_sbi.model`` after ``import provabgs_sbi``).
_SUBPACKAGES = ("baselines", "cli", "diagnostics", "emulator", "experimental", "inference",
                "io", "model", "plots", "workflows")

__all__ = ["ConditionalFlow", "DEFAULT_FLOW", "Emulator", "FlowEnsemble", "PARAM_NAMES",
           "Posterior", "Prior", "SEDConfig", "SEDModel", "WARPED_NAMES", "__version__",
           "fit_catalog", "importance_sample", "run_mcmc"]

if TYPE_CHECKING:  # for static analysis and IDEs; at run time see __getattr__
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


def __getattr__(name: str):
    """Import a public name (or a subpackage) on first use and keep it here."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBPACKAGES})

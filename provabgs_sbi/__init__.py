"""provabgs-sbi: amortized posteriors of galaxy properties with the PROVABGS SED model.

Data flows one way: SSP table -> SED model -> photometry -> training set -> flow ->
posteriors.
"""
__version__ = "0.1.0"

from .parameters import PARAM_NAMES, WARPED_NAMES  # noqa: E402
from .priors import Prior  # noqa: E402
from .sed_model import SEDConfig, SEDModel  # noqa: E402

__all__ = ["PARAM_NAMES", "WARPED_NAMES", "Prior", "SEDConfig", "SEDModel", "__version__"]

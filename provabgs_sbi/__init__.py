"""provabgs-sbi: amortized posteriors of galaxy properties with the PROVABGS SED model.

Data flows one way: SSP table -> SED model -> photometry -> training set -> flow ->
posteriors.
"""
__version__ = "0.1.0"

from .emulator import Emulator  # noqa: E402
from .parameters import PARAM_NAMES, WARPED_NAMES  # noqa: E402
from .posterior import Posterior  # noqa: E402
from .priors import Prior  # noqa: E402
from .sed_model import SEDConfig, SEDModel  # noqa: E402

__all__ = ["Emulator", "PARAM_NAMES", "Posterior", "WARPED_NAMES", "Prior", "SEDConfig",
           "SEDModel", "__version__"]

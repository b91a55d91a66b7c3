"""The diagnostics' former single module, kept so that old imports still work.

Everything here lives in :mod:`provabgs_sbi.diagnostics` (import from there).
"""
from provabgs_sbi.diagnostics import *  # noqa: F401,F403
from provabgs_sbi.diagnostics import __all__  # noqa: F401

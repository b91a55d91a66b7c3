"""The ``provabgs-sbi`` console script: argument parsing and thin commands that call
:mod:`provabgs_sbi.workflows`.
"""

from provabgs_sbi.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

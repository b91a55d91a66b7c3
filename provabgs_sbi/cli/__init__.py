"""The ``provabgs-sbi`` console script: argument parsing (:mod:`~provabgs_sbi.cli.main`),
thin commands that call :mod:`provabgs_sbi.workflows` (:mod:`~provabgs_sbi.cli.commands`)
and a quiet console (:mod:`~provabgs_sbi.cli.console`).
"""

from provabgs_sbi.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

"""SSP tables: one per SPS configuration, built once and cached.

>>> from provabgs_sbi.model.sps import load_ssp_table
>>> table = load_ssp_table("bc03")        # builds ~/.cache/provabgs_sbi/sps/bc03.h5 on first use

Backends: ``bc03`` (BC03 + MILES, stars only; the default), ``bc03_nebular`` (the same
populations plus Cloudy nebular continuum and lines at log U = -2.5,
:mod:`provabgs_sbi.model.sps.nebular`), its two additive parts ``bc03_nebular_continuum``
(without the lines) and ``bc03_nebular_lines`` (the lines alone), which an emulator with exact
lines is built from (:mod:`provabgs_sbi.emulator.lines`), and ``fsps`` (python-fsps, needs
SPS_HOME).
"""
from __future__ import annotations

import sys
from pathlib import Path

from provabgs_sbi.io.paths import cache_dir
from provabgs_sbi.model.sps.table import SSPTable, content_hash, read_ssp_table, write_ssp_table

BACKENDS = ("bc03", "bc03_nebular", "bc03_nebular_continuum", "bc03_nebular_lines", "fsps")
#: Backends whose emission lines can be computed apart: name -> (its table without the lines,
#: the table of the lines alone), :func:`~provabgs_sbi.model.sps.nebular.add_nebular`.
LINE_SPLITS = {"bc03_nebular": ("bc03_nebular_continuum", "bc03_nebular_lines")}

__all__ = ["BACKENDS", "LINE_SPLITS", "SSPTable", "build_ssp_table", "content_hash", "load_ssp_table",
           "read_ssp_table", "table_path", "write_ssp_table"]


def table_path(backend: str) -> Path:
    """Cache path of the SSP table of ``backend``."""
    _check_backend(backend)
    return cache_dir() / "sps" / f"{backend}.h5"


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown SPS backend {backend!r}; choose one of {BACKENDS}")


def build_ssp_table(backend: str = "bc03", force: bool = False) -> Path:
    """Build (if missing or ``force``) and cache the SSP table of ``backend``.

    Returns
    -------
    pathlib.Path
        The cached HDF5 file.
    """
    path = table_path(backend)
    if path.exists() and not force:
        return path
    print(f"provabgs-sbi: building the {backend} SSP table (once) -> {path}", file=sys.stderr,
          flush=True)
    if backend == "bc03":
        from provabgs_sbi.model.sps.bc03 import build_bc03_table
        table = build_bc03_table()
    elif backend.startswith("bc03_nebular"):
        from provabgs_sbi.model.sps.nebular import build_bc03_nebular_table
        parts = backend[len("bc03_nebular_"):] or "all"
        table = build_bc03_nebular_table(parts=parts)
    else:
        from provabgs_sbi.model.sps.fsps_backend import build_fsps_table
        table = build_fsps_table()
    write_ssp_table(table, path)
    return path


def load_ssp_table(sps: "str | SSPTable" = "bc03") -> SSPTable:
    """Return an SSP table: ``sps`` may be a backend name, a path to an HDF5 table, or a table."""
    if isinstance(sps, SSPTable):
        return sps
    if isinstance(sps, str) and sps in BACKENDS:
        return read_ssp_table(build_ssp_table(sps))
    path = Path(sps)
    if path.exists():
        return read_ssp_table(path)
    raise ValueError(f"{sps!r} is neither an SPS backend {BACKENDS} nor an SSP table file")

"""Where provabgs-sbi finds its inputs and keeps its cache.

Two settings, each an environment variable with a sensible default:

``PROVABGS_SBI_DATA``
    Folder holding the PROVABGS NMF basis files and pretrained emulator
    (``sfh_t_int.txt``, ``NMF_2basis_*.txt``, ``nmf.v0.1.*.npz``). Default: the
    ``shared/data/provabgs`` folder beside the repository checkout
    (``<repo>/../shared/data/provabgs``). These files are read in place, never
    copied into the repository.
``PROVABGS_SBI_CACHE``
    Folder for files the package derives or downloads at run time (SSP tables,
    the wheels they come from, the SDSS sample). Default:
    ``~/.cache/provabgs_sbi`` (``$XDG_CACHE_HOME/provabgs_sbi`` when set).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

DATA_ENV = "PROVABGS_SBI_DATA"
CACHE_ENV = "PROVABGS_SBI_CACHE"


def data_dir() -> Path:
    """Folder with the PROVABGS NMF bases and emulator files.

    Returns
    -------
    pathlib.Path
        ``$PROVABGS_SBI_DATA`` if set, else ``<repo>/../shared/data/provabgs``.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist, with the setting to change.
    """
    env = os.environ.get(DATA_ENV)
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "provabgs"
    if not path.is_dir():
        raise FileNotFoundError(
            f"PROVABGS data folder {path} not found. Point the environment variable "
            f"{DATA_ENV} at the folder holding sfh_t_int.txt and the NMF_2basis_*.txt files."
        )
    return path


def cache_dir() -> Path:
    """Folder for cached SSP tables, downloaded wheels and catalogs (created if needed)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "provabgs_sbi"
    path.mkdir(parents=True, exist_ok=True)
    return path


#: The committed artifacts: one folder per configuration under each.
EMULATOR_ROOT = REPO_ROOT / "emulator"
FLOW_ROOT = REPO_ROOT / "flows"
#: The posterior of the main job and the default of every command that takes a flow.
DEFAULT_FLOW = FLOW_ROOT / "bc03_logbeta1"

"""Where provabgs-sbi finds its artifacts and inputs, and keeps its cache.

Three settings, each an environment variable with a sensible default:

``PROVABGS_SBI_ARTIFACTS``
    Folder holding the trained artifacts: ``emulator/`` (one folder per emulator),
    ``flows/`` (one folder per posterior) and ``data/`` (the SDSS noise model). Default
    (:func:`artifact_root`): the repository checkout the package sits in (a clone, or an
    editable install of one); else the copy a wheel installs as package data in
    ``provabgs_sbi/_artifacts/``.
``PROVABGS_SBI_DATA``
    Folder holding the optional PROVABGS pretrained FSPS emulator (``nmf.v0.1.*.npz``),
    read in place, never copied. Default: ``<repo>/../shared/data/provabgs``.
``PROVABGS_SBI_CACHE``
    Folder for files the package derives or downloads at run time (SSP tables,
    the wheels they come from, the SDSS sample). Default:
    ``~/.cache/provabgs_sbi`` (``$XDG_CACHE_HOME/provabgs_sbi`` when set).

The module constants :data:`EMULATOR_ROOT`, :data:`FLOW_ROOT` and :data:`DEFAULT_FLOW`
are read once, when the module is imported; set ``PROVABGS_SBI_ARTIFACTS`` before that.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The installed package folder (``.../provabgs_sbi``).
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: The folder the package folder sits in: the repository root in a clone or an editable
#: install, ``site-packages`` in a wheel install.
CHECKOUT_DIR = PACKAGE_DIR.parent
#: Where a wheel installs the artifacts (package data copied from the repository's
#: ``emulator/``, ``flows/`` and ``data/`` folders; see ``setup.cfg``).
PACKAGED_ARTIFACTS = PACKAGE_DIR / "_artifacts"

ARTIFACTS_ENV = "PROVABGS_SBI_ARTIFACTS"
DATA_ENV = "PROVABGS_SBI_DATA"
CACHE_ENV = "PROVABGS_SBI_CACHE"


def checkout_root() -> Path | None:
    """The repository checkout the package sits in, or None (a wheel install).

    A checkout is recognised by its ``setup.cfg`` and committed ``flows/`` folder beside
    the package folder.
    """
    if (CHECKOUT_DIR / "setup.cfg").is_file() and (CHECKOUT_DIR / "flows").is_dir():
        return CHECKOUT_DIR
    return None


def artifact_root() -> Path:
    """Folder holding ``emulator/``, ``flows/`` and ``data/``.

    Returns
    -------
    pathlib.Path
        ``$PROVABGS_SBI_ARTIFACTS`` if set; else the repository checkout the package sits
        in (:func:`checkout_root`); else the package data of a wheel install,
        ``provabgs_sbi/_artifacts``. The folder is not checked here: loading an artifact
        from it names the file that is missing.
    """
    env = os.environ.get(ARTIFACTS_ENV)
    if env:
        return Path(env).expanduser()
    return checkout_root() or PACKAGED_ARTIFACTS


def default_noise_file() -> Path:
    """The committed SDSS noise model, ``artifact_root()/data/noise_model_sdss.ecsv``."""
    return artifact_root() / "data" / "noise_model_sdss.ecsv"


def data_dir() -> Path:
    """Folder with the optional PROVABGS pretrained emulator files (``nmf.v0.1.*.npz``).

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
    path = Path(env) if env else CHECKOUT_DIR.parent / "shared" / "data" / "provabgs"
    if not path.is_dir():
        raise FileNotFoundError(
            f"PROVABGS data folder {path} not found. Point the environment variable "
            f"{DATA_ENV} at the folder holding the PROVABGS files (nmf.v0.1.*.npz).")
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
EMULATOR_ROOT = artifact_root() / "emulator"
FLOW_ROOT = artifact_root() / "flows"
#: The posterior of the main job and the default of every command that takes a flow.
DEFAULT_FLOW = FLOW_ROOT / "bc03_logbeta1"

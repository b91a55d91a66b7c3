"""Artifact folders: a JSON manifest with versions, config, input hashes, metrics and the
SHA-256 of every file, written last and verified on load.

Every manifest in the package lists its files the same way, a ``files`` mapping of file
name (relative to the folder) to hex SHA-256, and every reader checks it with
:func:`verify_files`: the artifact manifests written by :func:`write_manifest`
(emulators, posteriors), a saved flow's ``manifest.json`` (``{"format", "files"}``) and a
flow ensemble's index. :func:`read_format_file` reads the small JSON files that name
their format (``{"format": "provabgs_sbi.ConditionalFlow/1", ...}``).
"""
from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

from provabgs_sbi.io.atomic import atomic_write_text
from provabgs_sbi.io.hashing import sha256_file

MANIFEST = "manifest.json"


class ChecksumError(ValueError):
    """A file does not match the SHA-256 its manifest records (or the manifest lists none)."""


def verify_files(folder, files: dict, listed_in) -> None:
    """Check files under ``folder`` against the SHA-256 a manifest records for them.

    Parameters
    ----------
    folder : path-like
        The folder the names are relative to.
    files : dict
        File name (may contain ``/``) -> hex SHA-256 it must have; ``None`` means the
        manifest lists no hash for it, which is an error.
    listed_in : path-like or str
        The manifest the hashes come from, named in error messages.

    Raises
    ------
    FileNotFoundError
        A listed file is missing.
    ChecksumError
        A file's hash differs from the manifest's, or the manifest has none for it.
    """
    folder = Path(folder)
    for name, expected in files.items():
        f = folder / name
        if expected is None:
            raise ChecksumError(f"{listed_in} lists no hash for {name}")
        if not f.exists():
            raise FileNotFoundError(f"{f} is listed in {listed_in} but missing")
        got = sha256_file(f)
        if got != expected:
            raise ChecksumError(f"{f}: SHA-256 {got[:12]}... does not match the hash in "
                                f"{listed_in} ({expected[:12]}...); the file was modified or "
                                "corrupted")


def read_format_file(path, fmt: str, what: str) -> dict:
    """Read a JSON file whose ``format`` key must be ``fmt``.

    Parameters
    ----------
    path : path-like
        The JSON file (a saved flow's ``manifest.json``, an ensemble's ``ensemble.json``).
    fmt : str
        The format name it must hold, e.g. ``"provabgs_sbi.ConditionalFlow/1"``.
    what : str
        What the folder should be, for the error message ("a saved ConditionalFlow").

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file holds another format.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {path.name} in {path.parent}: not {what}")
    content = json.loads(path.read_text())
    if content.get("format") != fmt:
        raise ValueError(f"{path} holds format {content.get('format')!r}, expected {fmt!r}")
    return content


def library_versions() -> dict:
    """Versions of Python and the numerical libraries an artifact depends on."""
    import importlib.metadata as md

    from provabgs_sbi._version import __version__

    out = {"provabgs_sbi": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "astropy", "h5py", "scikit-learn", "tensorflow",
                "tensorflow-probability", "tf-keras", "speclite"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_manifest(folder, kind: str, config: dict, inputs: dict, metrics: dict,
                   extra: dict | None = None) -> dict:
    """Write ``folder/manifest.json`` covering every other file in ``folder``.

    Parameters
    ----------
    kind : str
        What the artifact is ("emulator", "flow", ...).
    config : dict
        The configuration it was built with (a frozen dataclass as a dict).
    inputs : dict
        Hashes of its inputs (SSP table, training set, ...).
    metrics : dict
        Numbers measured when it was made.
    """
    folder = Path(folder)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.name != MANIFEST and not p.name.endswith(".part")}
    manifest = {"kind": kind, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "versions": library_versions(), "config": config, "inputs": inputs,
                "metrics": metrics, "files": files, **(extra or {})}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder, verify: bool = True) -> dict:
    """Read ``folder/manifest.json`` and (by default) check every file's SHA-256.

    Raises
    ------
    FileNotFoundError
        No manifest or a listed file is missing.
    ChecksumError
        A file's hash differs from the manifest (a ValueError).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a provabgs-sbi artifact folder")
    manifest = json.loads(path.read_text())
    if verify:
        verify_files(folder, manifest.get("files", {}), path)
    return manifest


def find_emulator(emulator_id: str, root=None) -> Path:
    """The committed emulator folder whose ``manifest.json`` has SHA-256 ``emulator_id``.

    A posterior records the emulator its training set was made with by that id, so the
    commands that need a posterior's emulator (the posterior predictive check, validation,
    the MCMC baseline) find it here rather than trusting a separate ``--emulator`` default.

    Parameters
    ----------
    emulator_id : str
        Manifest SHA-256 (64 hex digits).
    root : path-like, optional
        Folder of emulator folders (default ``artifact_root()/emulator``, see
        :func:`provabgs_sbi.io.paths.artifact_root`).

    Raises
    ------
    FileNotFoundError
        No folder under ``root`` has that manifest; names the ones there are.
    """
    from provabgs_sbi.io.paths import EMULATOR_ROOT

    root = Path(root) if root is not None else EMULATOR_ROOT
    found = []
    for manifest in sorted(root.glob(f"*/{MANIFEST}")):
        if sha256_file(manifest) == emulator_id:
            return manifest.parent
        found.append(manifest.parent.name)
    raise FileNotFoundError(
        f"no emulator folder under {root} has manifest SHA-256 {emulator_id[:12]}... "
        f"(there are: {', '.join(found) or 'none'}); pass the posterior's emulator explicitly")

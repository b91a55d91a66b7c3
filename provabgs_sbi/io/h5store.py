"""The resumable HDF5 store every long-running writer uses.

A job that fills an HDF5 file for minutes or hours (training spectra, training sets,
catalog fits, MCMC and importance sampling of many galaxies) must survive an interruption
without losing finished work or keeping half-written work. Two layouts cover them:

- **rows in chunks** (:func:`open_store` + :func:`commit`): datasets created up front (or
  growable), filled chunk by chunk; a progress attribute is written *after* each chunk's
  data is flushed, so a crash leaves the rows of at most one chunk beyond the recorded
  progress, which the next run overwrites;
- **one group per item** (:func:`write_group`): each item (a galaxy) is written into a
  temporary group and renamed to its final name (one link operation) only when complete;
  :func:`open_store` deletes temporary groups left by an interruption.

Either way the file records the job's ``settings`` (a JSON string) when it is created, and
a later run resumes it only when its own settings are the same.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

#: Prefix of a group being written (renamed when complete).
TMP_PREFIX = "_writing_"
#: Suffix of temporary groups written by earlier versions (also cleaned up).
_LEGACY_TMP_SUFFIX = ".tmp"


def settings_json(settings) -> str:
    """Canonical JSON of a settings mapping (sorted keys; numpy scalars and arrays as
    Python numbers and lists), or ``settings`` unchanged if it is already a string."""
    if isinstance(settings, str):
        return settings

    def conv(v):
        if hasattr(v, "tolist"):
            return v.tolist()
        raise TypeError(f"cannot serialise {type(v).__name__} in settings")

    return json.dumps(settings, default=conv, sort_keys=True)


class SettingsMismatch(ValueError):
    """An existing file was written by a job with other settings."""


def open_store(path, settings, create: Callable, *, on_mismatch: str = "raise",
               same: Callable[[str, str], bool] | None = None, atomic_create: bool = False,
               adopt_unkeyed: bool = False):
    """Open ``path`` for appending, creating it with ``create(fh)`` if it does not exist.

    Parameters
    ----------
    path : path-like
        The HDF5 file (its folder is created if missing).
    settings : dict or str
        What the job is; stored as the root attribute ``settings`` (JSON) on creation.
    create : callable
        ``create(fh)`` makes the datasets and attributes of a new file (``settings`` is
        written for it).
    on_mismatch : {"raise", "restart"}
        What to do when the file exists with other settings: raise
        :class:`SettingsMismatch` naming both, or delete the file and start afresh.
    same : callable, optional
        ``same(stored_json, wanted_json) -> bool``; default: the strings are equal.
    atomic_create : bool
        Create the new file under a temporary name and rename it once ``create`` has run,
        so the file never exists without its settings.
    adopt_unkeyed : bool
        A file with no ``settings`` attribute (written before its kind recorded them) is
        given these settings and resumed, instead of being treated as a mismatch.

    Returns
    -------
    h5py.File
        Open in mode ``"r+"``; use it as a context manager. Temporary groups left by an
        interrupted :func:`write_group` are deleted.
    """
    import h5py

    from provabgs_sbi.io.atomic import atomic_path

    if on_mismatch not in ("raise", "restart"):
        raise ValueError(f"on_mismatch must be 'raise' or 'restart', got {on_mismatch!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wanted = settings_json(settings)
    same = same or (lambda a, b: a == b)
    if path.exists():
        with h5py.File(path, "r+" if adopt_unkeyed else "r") as fh:
            stored = fh.attrs.get("settings")
            if stored is None and adopt_unkeyed:
                fh.attrs["settings"] = stored = wanted
        if stored is None or not same(stored, wanted):
            if on_mismatch == "restart":
                path.unlink()
            else:
                raise SettingsMismatch(
                    f"{path} was made with other settings ({stored}); these are {wanted}. "
                    "Delete it or choose another path.")
    if not path.exists():
        if atomic_create:
            with atomic_path(path) as tmp:
                with h5py.File(tmp, "w") as fh:
                    fh.attrs["settings"] = wanted
                    create(fh)
        else:
            with h5py.File(path, "w") as fh:
                fh.attrs["settings"] = wanted
                create(fh)
    fh = h5py.File(path, "r+")
    stale = [k for k in fh.keys() if k.startswith(TMP_PREFIX) or k.endswith(_LEGACY_TMP_SUFFIX)]
    for name in stale:
        del fh[name]
    return fh


def commit(fh, **progress) -> None:
    """Record progress after a step's data: flush the data, write the ``progress``
    attributes (JSON-able values are stored as given), flush again."""
    fh.flush()
    for key, value in progress.items():
        fh.attrs[key] = value
    fh.flush()


def write_group(fh, name: str, fill: Callable) -> None:
    """Write group ``name`` atomically: ``fill(group)`` writes a temporary group, which
    replaces any existing ``name`` only once it is complete."""
    tmp = TMP_PREFIX + name
    if tmp in fh:
        del fh[tmp]
    group = fh.create_group(tmp)
    fill(group)
    fh.flush()
    if name in fh:
        del fh[name]
    fh.move(tmp, name)
    fh.flush()


def finished_groups(fh, prefix: str = "row_") -> list[str]:
    """Names of the complete groups starting with ``prefix`` (temporary ones excluded)."""
    return [k for k in fh.keys() if k.startswith(prefix) and not k.endswith(_LEGACY_TMP_SUFFIX)]


def finish(part: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Rename a completed working file to its final name (atomic) and return the name."""
    os.replace(part, out)
    return Path(out)

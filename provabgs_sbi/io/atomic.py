"""Atomic writes: a file appears complete under its name or not at all.

Everything is written to a temporary file in the target's folder (so the final
``os.replace`` is a rename on one file system) and renamed only when complete; on any
error, including KeyboardInterrupt, the temporary file is removed.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = False):
    """Yield a temporary path beside ``path``; rename it to ``path`` when the block ends.

    For writers that want a file name rather than bytes (h5py, numpy, zip extraction).
    The parent folder is created if missing.

    Parameters
    ----------
    path : path-like
        The final name.
    fsync : bool
        Flush the file to disk before the rename.

    Examples
    --------
    >>> with atomic_path("table.h5") as tmp:          # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as fh:
    ...         fh["x"] = x
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; a written file gets the usual mode
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (synced to disk by default)."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=False)


def npz_bytes(arrays: dict) -> bytes:
    """The bytes of an uncompressed ``.npz`` holding ``arrays`` (name -> ndarray), for
    :func:`atomic_write_bytes`."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()

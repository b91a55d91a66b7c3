"""SHA-256 digests of files, bytes and arrays: the one hash every manifest, resume key and
content check in the package uses."""
from __future__ import annotations

import hashlib
import os

import numpy as np

#: Bytes read at a time when hashing a file.
_BLOCK = 1 << 22


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = _BLOCK) -> str:
    """Hex SHA-256 of a file, read in blocks of ``chunk`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_arrays(*arrays) -> str:
    """Hex SHA-256 of arrays' shapes and float64 values, in order.

    Two calls agree exactly when every array has the same shape and the same float64
    values (so a float32 array and its float64 copy hash alike).
    """
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()

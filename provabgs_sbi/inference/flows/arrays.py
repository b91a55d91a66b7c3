"""Input checks shared by the flow's constructor, its training and its evaluation."""
from __future__ import annotations

import numpy as np

__all__ = ["as_2d", "check_box"]


def as_2d(a, name: str, width: int | None = None) -> np.ndarray:
    """Float64 2-d copy of ``a``, rejecting NaN/inf and wrong widths.

    A 1-d ``a`` is one row when ``width`` is given and equals its length, else a column.
    """
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :] if width is not None and arr.shape[0] == width else arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-d or 2-d, got shape {np.shape(a)}")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{name} must have {width} columns, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{name} has a non-finite value ({arr[i, j]}) at row {i}, column {j}")
    return arr


def check_box(low, high, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``low`` and ``high`` broadcast to float64 arrays of shape (d,), finite, low < high."""
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), (d,)).copy()
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), (d,)).copy()
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("low and high must be finite")
    if np.any(low >= high):
        raise ValueError(f"need low < high in every dimension, got low={low}, high={high}")
    return low, high

"""The timing loop shared by the benchmark scripts (imported as ``_timing`` when a script in
``benchmarks/`` is run directly)."""
from __future__ import annotations

import time

import numpy as np


def timed(fn, repeats: int, warmup: bool = True) -> np.ndarray:
    """Seconds of ``repeats`` calls of ``fn`` after one untimed warm-up call (XLA
    compilation, caches; ``warmup=False``: none), shape (repeats,)."""
    if warmup:
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.array(out)

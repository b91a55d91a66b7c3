"""What zeus needs around it so that a seeded run is reproducible and leaves no trace.

zeus draws from numpy's global ``np.random`` and from Python's ``random`` (the pair choice of
its differential move), its first import draws from ``random``, and it resets the root
logger when a sampler is built. :func:`zeus_globals` seeds both generators for a run and
restores them, and the logger, afterwards; :func:`import_zeus` imports it without moving
the global random states; :func:`blas_limit` keeps BLAS to one thread while zeus evaluates
its few points per call.
"""
from __future__ import annotations

import logging
import random
from contextlib import contextmanager

import numpy as np


@contextmanager
def zeus_globals(seed: int):
    """Seed numpy's global RNG and Python's ``random`` (what zeus draws from) and restore
    both, and the root logger zeus reconfigures, on exit.

    Parameters
    ----------
    seed : int
        In [0, 2^32).
    """
    np_state = np.random.get_state()
    py_state = random.getstate()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def import_zeus():
    """``import zeus``, leaving Python's and numpy's global random states as they were (its
    first import draws from ``random``, which made a process's first chain differ from the
    next ones with the same seed).

    Returns
    -------
    module
        ``zeus``.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        import zeus
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return zeus


@contextmanager
def blas_limit(n_threads: int | None):
    """Limit BLAS threads with threadpoolctl when it is installed (no-op otherwise, and
    with ``n_threads=None``)."""
    if n_threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=int(n_threads), user_api="blas"):
        yield


__all__ = ["blas_limit", "import_zeus", "zeus_globals"]

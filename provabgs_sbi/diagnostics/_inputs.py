"""Checks of the inputs shared by the diagnostics (and the names of their figures' panels).

Conventions of every diagnostic: ``samples`` is an ndarray of shape (n_test, n_samples, d)
(posterior draws per test galaxy), ``truth`` an ndarray of shape (n_test, d), ``ranks`` an
integer ndarray of shape (n_test, d) in 0..n_samples.
"""
from __future__ import annotations

import numpy as np


def check_samples_truth(samples, truth) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` (n_test, n_samples, d) and ``truth`` (n_test, d) as finite float arrays.

    Raises
    ------
    ValueError
        Wrong shapes, an empty axis, or a non-finite value.
    """
    samples = np.asarray(samples, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (n_test, n_samples, d), got {samples.shape}")
    if truth.shape != (samples.shape[0], samples.shape[2]):
        expected = (samples.shape[0], samples.shape[2])
        raise ValueError(f"truth must have shape (n_test, d) = {expected}, got {truth.shape}")
    if samples.shape[0] < 1 or samples.shape[1] < 1 or samples.shape[2] < 1:
        raise ValueError(f"samples has an empty axis: {samples.shape}")
    if not (np.all(np.isfinite(samples)) and np.all(np.isfinite(truth))):
        raise ValueError("samples and truth must be finite")
    return samples, truth


def check_ranks(ranks, n_samples: int) -> np.ndarray:
    """SBC ranks as an int array of shape (n_test, d) (a 1-D array is one parameter).

    Raises
    ------
    ValueError
        Non-integer ranks, ranks outside 0..n_samples, or a bad ``n_samples``.
    """
    ranks = np.asarray(ranks)
    if ranks.ndim == 1:
        ranks = ranks[:, None]
    if ranks.ndim != 2 or ranks.shape[0] < 1:
        raise ValueError(f"ranks must have shape (n_test, d), got {ranks.shape}")
    check_integer(n_samples, "n_samples")
    if not np.issubdtype(ranks.dtype, np.integer):
        if not np.all(ranks == np.round(ranks)):
            raise ValueError("ranks must be integers")
        ranks = ranks.astype(np.int64)
    if ranks.min() < 0 or ranks.max() > n_samples:
        raise ValueError(f"ranks must lie in 0..n_samples={n_samples}, "
                         f"got {ranks.min()}..{ranks.max()}")
    return ranks


def check_level(level: float, name: str = "level") -> float:
    """A probability content strictly between 0 and 1, as float."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {level}")
    return float(level)


def check_integer(value, name: str, minimum: int = 1) -> None:
    """Raise ValueError unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value}")


def parameter_names(names, d: int) -> list[str]:
    """``names`` as a list of d strings (default ``theta_0`` .. ``theta_{d-1}``)."""
    if names is None:
        return [f"theta_{j}" for j in range(d)]
    names = [str(n) for n in names]
    if len(names) != d:
        raise ValueError(f"{len(names)} names for {d} parameters")
    return names

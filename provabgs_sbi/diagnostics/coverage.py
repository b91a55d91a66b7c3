"""Coverage of central credible intervals: how often the truth falls inside them."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.diagnostics._inputs import check_samples_truth, parameter_names

__all__ = ["coverage", "coverage_by_name"]


def coverage(samples, truth, levels=(0.5, 0.68, 0.9, 0.95, 0.99)) -> np.ndarray:
    """Empirical coverage of central credible intervals.

    For each galaxy, parameter and nominal level ``c`` the interval runs between the
    ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles of the posterior draws
    (``numpy.quantile``, linear interpolation); coverage is the fraction of galaxies
    whose truth lies inside. For a calibrated posterior it is ``c`` within binomial
    noise, standard deviation ``sqrt(c (1 - c) / n_test)``.

    Parameters
    ----------
    samples : ndarray of shape (n_test, n_samples, d)
    truth : ndarray of shape (n_test, d)
    levels : sequence of float in (0, 1), length n_levels

    Returns
    -------
    ndarray of shape (n_levels, d)
    """
    samples, truth = check_samples_truth(samples, truth)
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"levels must lie in (0, 1), got {levels}")
    q = np.concatenate([(1.0 - levels) / 2.0, (1.0 + levels) / 2.0])
    bounds = np.quantile(samples, q, axis=1)              # (2 n_levels, n_test, d)
    lo, hi = bounds[: len(levels)], bounds[len(levels):]
    inside = (truth[None] >= lo) & (truth[None] <= hi)
    return inside.mean(axis=1)


def coverage_by_name(samples, truth, names, levels=(0.68, 0.95),
                     decimals: int | None = None) -> dict[str, dict[str, float]]:
    """:func:`coverage` as a JSON-ready table: ``{f"{level:g}": {name: fraction}}``.

    Parameters
    ----------
    samples : ndarray of shape (n_test, n_samples, d)
    truth : ndarray of shape (n_test, d)
    names : sequence of str of length d
    levels : sequence of float in (0, 1)
    decimals : int, optional
        Round the fractions to this many decimals.

    Returns
    -------
    dict
        One dict per level (keys such as ``"0.68"``), mapping each parameter name to the
        fraction of galaxies whose truth lies in its central interval.
    """
    cov = coverage(samples, truth, levels)
    names = parameter_names(names, cov.shape[1])
    if decimals is not None:
        cov = cov.round(decimals)
    return {f"{c:g}": dict(zip(names, cov[k].tolist())) for k, c in enumerate(levels)}

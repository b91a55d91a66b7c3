"""TARP, Tests of Accuracy with Random Points (Lemos et al. 2023, ICML, arXiv:2302.03026):
expected coverage of balls around random reference points, a joint (all-parameter) test,
with a bootstrap p-value for the distance from the diagonal.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from provabgs_sbi.diagnostics._inputs import check_integer, check_level, check_samples_truth

__all__ = ["TARPResult", "tarp"]


class TARPResult(NamedTuple):
    """Outcome of :func:`tarp`.

    Attributes
    ----------
    alpha : ndarray of shape (n_alpha,)
        Credibility levels, 0..1.
    ecp : ndarray of shape (n_alpha,)
        Expected coverage probability at each ``alpha``; the diagonal when calibrated.
    ecp_lo, ecp_hi : ndarray of shape (n_alpha,)
        Bootstrap band (over galaxies) of probability content ``level`` around ``ecp``.
    distance : float
        ``max_alpha |ecp - alpha|``, the test statistic.
    p_value : float
        Bootstrap p-value of ``distance`` under calibration (see :func:`tarp`).
    ks_pvalue : float
        Bonferroni-combined exact Kolmogorov-Smirnov p-value: ``n_refs`` times the smallest
        of the KS p-values of the credibility values of each reference set, capped at 1.
    atc : float
        Area to curve, ``mean over alpha > 0.5 of (ecp - alpha)``: > 0 posterior too wide,
        < 0 too narrow or biased.
    f : ndarray of shape (n_test, n_refs)
        Credibility value of the truth for each galaxy and reference point; uniform in
        (0, 1) under calibration.
    level : float
    """

    alpha: np.ndarray
    ecp: np.ndarray
    ecp_lo: np.ndarray
    ecp_hi: np.ndarray
    distance: float
    p_value: float
    ks_pvalue: float
    atc: float
    f: np.ndarray
    level: float


def tarp(samples, truth, n_refs: int = 10, seed: int = 0, bootstrap: int = 500,
         low=None, high=None, n_alpha: int = 201, level: float = 0.95) -> TARPResult:
    """Tests of Accuracy with Random Points (Lemos et al. 2023), with a p-value.

    All parameters are first mapped to the unit box with ``(theta - low) / (high - low)``
    (pass the prior bounds; default the min and max of ``truth`` per parameter, as the
    ``tarp`` package does). For each galaxy ``i`` and each of ``n_refs`` reference points
    ``theta_r`` drawn uniformly in the box, the credibility value is the fraction of
    posterior draws closer (Euclidean) to ``theta_r`` than the truth:
    ``f = (n_closer + V) / (L + 1)`` with ties broken at random and a uniform jitter
    ``V``, so that ``f`` is exactly Uniform(0, 1) when the posterior is right (the rank
    of the statistic ``-|theta - theta_r|``, as in SBC). The expected coverage
    probability is ``ECP(alpha) = mean_{i, r} 1[f_ir < alpha]``; it is the diagonal for a
    calibrated posterior. Several references per galaxy average out the arbitrariness
    of one random point.

    Calibration test. Statistic ``D = max_alpha |ECP(alpha) - alpha|`` (Kolmogorov-Smirnov
    type distance from the diagonal). Its null distribution is approximated by the
    centred bootstrap over galaxies: ``D* = max_alpha |ECP*(alpha) - ECP(alpha)|`` for
    ``bootstrap`` resamples of the galaxies (all references of a galaxy kept together, so
    their correlation is respected), and ``p = (1 + #{D* >= D}) / (bootstrap + 1)``.
    ``ks_pvalue`` is an exact check: for each reference set separately the ``f`` are
    i.i.d. Uniform(0, 1) under calibration, so a one-sample KS test is exact; the
    ``n_refs`` p-values are combined with Bonferroni (valid under any dependence,
    conservative). The two-sample KS of the curve ``ecp`` against ``alpha`` used by some
    packages is not used: it compares the values of two curves, not the coverage, and
    has almost no power.

    Parameters
    ----------
    samples : ndarray of shape (n_test, n_samples, d)
    truth : ndarray of shape (n_test, d)
    n_refs : int
        Reference points per galaxy.
    seed : int
        Seeds references, tie-breaking, jitter and bootstrap.
    bootstrap : int
        Bootstrap resamples (p-value resolution ``1 / (bootstrap + 1)``); >= 99.
    low, high : array_like of shape (d,), optional
        Parameter box (prior bounds).
    n_alpha : int
        Points of the ``alpha`` grid, ``linspace(0, 1, n_alpha)``.
    level : float
        Content of the bootstrap band ``ecp_lo..ecp_hi``.

    Returns
    -------
    TARPResult

    Notes
    -----
    With references independent of the data, TARP is a necessary condition for an
    accurate posterior (Lemos et al. show sufficiency for references that depend on x);
    it is a joint test of all parameters, complementing the per-parameter SBC and p-p.
    """
    samples, truth = check_samples_truth(samples, truth)
    level = check_level(level)
    check_integer(n_refs, "n_refs")
    check_integer(bootstrap, "bootstrap", 99)
    check_integer(n_alpha, "n_alpha", 3)
    n_test, L, d = samples.shape
    low = truth.min(axis=0) if low is None else np.broadcast_to(np.asarray(low, float), (d,))
    high = truth.max(axis=0) if high is None else np.broadcast_to(np.asarray(high, float), (d,))
    width = high - low
    if np.any(~np.isfinite(width)) or np.any(width <= 0):
        raise ValueError("need high > low (finite) for every parameter")
    s = (samples - low) / width
    t = (truth - low) / width
    rng = np.random.default_rng(seed)
    f = np.empty((n_test, int(n_refs)))
    for r in range(int(n_refs)):
        ref = rng.random((n_test, d))
        d_samples = np.sum((s - ref[:, None, :]) ** 2, axis=2)             # (n_test, L)
        d_truth = np.sum((t - ref) ** 2, axis=1)                            # (n_test,)
        n_closer = np.sum(d_samples < d_truth[:, None], axis=1)
        n_tie = np.sum(d_samples == d_truth[:, None], axis=1)
        rank = n_closer + rng.integers(0, n_tie + 1)
        f[:, r] = (rank + rng.random(n_test)) / (L + 1.0)
    alpha = np.linspace(0.0, 1.0, int(n_alpha))
    per_galaxy = np.mean(f[:, :, None] < alpha[None, None, :], axis=1)     # (n_test, n_alpha)
    ecp = per_galaxy.mean(axis=0)
    distance = float(np.max(np.abs(ecp - alpha)))
    weights = rng.multinomial(n_test, np.full(n_test, 1.0 / n_test), size=int(bootstrap)) / n_test
    ecp_boot = weights @ per_galaxy                                          # (bootstrap, n_alpha)
    d_boot = np.max(np.abs(ecp_boot - ecp[None, :]), axis=1)
    p_value = float((1.0 + np.sum(d_boot >= distance)) / (bootstrap + 1.0))
    ecp_lo, ecp_hi = np.quantile(ecp_boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    ks_p = min(1.0, n_refs * min(stats.kstest(f[:, r], "uniform").pvalue for r in range(n_refs)))
    upper = alpha > 0.5
    atc = float(np.mean(ecp[upper] - alpha[upper]))
    return TARPResult(alpha=alpha, ecp=ecp, ecp_lo=ecp_lo, ecp_hi=ecp_hi, distance=distance,
                      p_value=p_value, ks_pvalue=float(ks_p), atc=atc, f=f, level=level)

"""p-p curve: the ECDF of fractional SBC ranks with a simultaneous band (Säilynoja, Bürkner &
Vehtari 2022, Stat. Comput. 32, 32).

:func:`ecdf_band` gives the band within which the whole ECDF of ``n_test`` uniform values
stays with probability ``level``; :func:`pp_curve` evaluates the ranks' ECDF against it and
gives each parameter's p-value.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from provabgs_sbi.diagnostics._inputs import check_integer, check_level, check_ranks

__all__ = ["PPCurve", "ecdf_band", "pp_curve"]


class PPCurve(NamedTuple):
    """ECDF of fractional SBC ranks with a simultaneous band (:func:`pp_curve`).

    Attributes
    ----------
    z : ndarray of shape (n_eval,)
        Evaluation points in (0, 1): the nominal quantile (x axis of the p-p plot).
    ecdf : ndarray of shape (n_eval, d)
        Fraction of galaxies whose fractional rank is below ``z`` (y axis).
    lo, hi : ndarray of shape (n_eval,)
        Simultaneous band for uniform ranks.
    inside : ndarray of bool of shape (d,)
        Whether each parameter's curve stays inside the band at every ``z``.
    pvalue : ndarray of shape (d,)
        Probability, under uniform ranks, of a curve at least as extreme (smallest
        pointwise tail probability as small or smaller), estimated from the simulations
        (resolution ``1 / n_sim``, smallest value reported ``1 / n_sim``); ``inside`` is
        true exactly when ``pvalue > 1 - level``.
    gamma : float
        Adjusted pointwise level of the band.
    level : float
        Simultaneous probability content of the band.
    """

    z: np.ndarray
    ecdf: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    inside: np.ndarray
    pvalue: np.ndarray
    gamma: float
    level: float


def _tail_probs(counts: np.ndarray, cdf_table: np.ndarray) -> np.ndarray:
    """Two-sided pointwise tail probability ``2 min(P(X <= c), P(X >= c))``.

    ``counts[..., k]`` is the number of values below ``z_k``, and
    ``cdf_table[k, c + 1] = P(Binomial(N, z_k) <= c)`` for c = -1..N.
    """
    k = np.arange(counts.shape[-1])
    below = cdf_table[k, counts + 1]                       # P(X <= c)
    above = 1.0 - cdf_table[k, counts]                     # P(X >= c)
    return 2.0 * np.minimum(below, above)


def _binom_cdf_table(n: int, z: np.ndarray) -> np.ndarray:
    """``table[k, c + 1] = P(Binomial(n, z_k) <= c)`` for c = -1..n."""
    c = np.arange(-1, n + 1)
    return stats.binom.cdf(c[None, :], n, z[:, None])


def _ecdf_band_counts(n_test: int, z: np.ndarray, level: float, n_sim: int, seed: int):
    """Band in counts, the adjusted level, the sorted simulated minima and the cdf table."""
    if n_sim * (1.0 - level) < 1.0:
        raise ValueError(f"n_sim={n_sim} is too small for level={level}: need "
                         f"n_sim >= 1 / (1 - level)")
    cdf_table = _binom_cdf_table(n_test, z)
    rng = np.random.default_rng(seed)
    u = np.sort(rng.random((int(n_sim), n_test)), axis=1)
    counts = np.stack([np.searchsorted(row, z, side="left") for row in u])   # (n_sim, n_eval)
    null_min = np.sort(np.min(_tail_probs(counts, cdf_table), axis=-1))
    gamma = float(null_min[int(np.floor((1.0 - level) * n_sim))])
    # The band is {c : tail(c) >= gamma} at each z_k, from the same numbers as the test,
    # so that "inside the band" and "smallest tail >= gamma" agree exactly.
    c = np.arange(n_test + 1)
    ok = _tail_probs(np.broadcast_to(c[:, None], (n_test + 1, len(z))), cdf_table) >= gamma
    lo_c = np.argmax(ok, axis=0)
    hi_c = n_test - np.argmax(ok[::-1], axis=0)
    return lo_c, hi_c, gamma, null_min, cdf_table


def ecdf_band(n_test: int, z, level: float = 0.95, n_sim: int = 1000,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Simultaneous band for the ECDF of ``n_test`` uniform values, at points ``z``.

    The simulation method of Säilynoja, Bürkner & Vehtari (2022, Sect. 2.2): at each
    ``z_k`` the count of values below it is Binomial(n_test, z_k); a pointwise interval
    of level ``1 - gamma`` is widened until the *whole* curve is inside with probability
    ``level``. To find ``gamma``, ``n_sim`` sets of ``n_test`` uniform values are drawn;
    for each, the smallest two-sided pointwise tail probability
    ``2 min(P(X <= c_k), P(X >= c_k))`` over all ``z_k`` is recorded, and ``gamma`` is the
    ``floor((1 - level) n_sim)``-th smallest of these minima (the empirical ``1 - level``
    quantile). The band at ``z_k`` holds the counts whose tail probability is at least
    ``gamma`` (the binomial quantiles ``gamma / 2`` and ``1 - gamma / 2``), over ``n_test``.

    Parameters
    ----------
    n_test : int
        Number of values in the ECDF (N in the paper).
    z : ndarray of shape (n_eval,)
        Increasing evaluation points in (0, 1) (K of them in the paper).
    level : float
        Simultaneous coverage, ``1 - alpha``.
    n_sim : int
        Simulated uniform samples (M in the paper).
    seed : int

    Returns
    -------
    lo, hi : ndarray of shape (n_eval,)
        Band on the ECDF (fractions, not counts): a curve is inside if
        ``lo <= ecdf <= hi`` at every point.
    gamma : float
        Adjusted pointwise level.
    """
    level = check_level(level)
    z = np.asarray(z, dtype=float)
    if z.ndim != 1 or np.any((z <= 0) | (z >= 1)) or np.any(np.diff(z) <= 0):
        raise ValueError("z must be increasing points in (0, 1)")
    check_integer(n_sim, "n_sim", 10)
    check_integer(n_test, "n_test")
    lo_c, hi_c, gamma, _, _ = _ecdf_band_counts(int(n_test), z, level, int(n_sim), seed)
    return lo_c / n_test, hi_c / n_test, gamma


def pp_curve(ranks, n_samples: int, level: float = 0.95, n_eval: int | None = None,
             n_sim: int = 1000, seed: int = 0) -> PPCurve:
    """p-p curve (ECDF of fractional SBC ranks) with a simultaneous band.

    The ranks ``r`` in 0..L (L = n_samples) are uniform for a calibrated posterior. The
    ECDF is evaluated at ``z_k = m_k / (L + 1)`` for integers ``m_k``, as the fraction of
    galaxies with ``r < m_k``; at these points its null distribution is exactly that of
    the ECDF of continuous uniform values (``r = floor((L + 1) u)``), so the band of
    :func:`ecdf_band` is exact for discrete ranks (Säilynoja et al. 2022).

    Parameters
    ----------
    ranks : ndarray of int of shape (n_test, d)
        From :func:`~provabgs_sbi.diagnostics.sbc.sbc_ranks`.
    n_samples : int
        Posterior draws per galaxy.
    level : float
        Simultaneous coverage of the band (0.95 as in Säilynoja et al.), per parameter:
        with d calibrated parameters at least one curve leaves its band with probability
        ``1 - level**d`` (46% for 12 at 0.95); use ``level = 1 - alpha / d`` for a
        family-wise ``1 - alpha``.
    n_eval : int, optional
        Number of evaluation points, at most ``n_samples``; default
        ``min(n_samples, n_test, 200)``. More points see finer features and widen the
        band slightly.
    n_sim : int
        Simulations for the band.
    seed : int

    Returns
    -------
    PPCurve
    """
    ranks = check_ranks(ranks, n_samples)
    n_test = ranks.shape[0]
    L1 = int(n_samples) + 1
    if n_eval is None:
        n_eval = min(L1 - 1, n_test, 200)
    if int(n_eval) != n_eval or not 1 <= n_eval <= L1 - 1:
        raise ValueError(f"n_eval must be an integer in 1..n_samples={L1 - 1}, got {n_eval}")
    m = np.unique(np.round(np.linspace(0, L1, int(n_eval) + 2)[1:-1]).astype(np.int64))
    m = m[(m > 0) & (m < L1)]
    z = m / L1
    check_integer(n_sim, "n_sim", 10)
    level = check_level(level)
    lo_c, hi_c, gamma, null_min, cdf_table = _ecdf_band_counts(n_test, z, level, int(n_sim), seed)
    counts = np.sum(ranks[:, None, :] < m[None, :, None], axis=0)            # (n_eval, d)
    ecdf = counts / n_test
    inside = np.all((counts >= lo_c[:, None]) & (counts <= hi_c[:, None]), axis=0)
    obs_min = np.min(_tail_probs(counts.T, cdf_table), axis=-1)              # (d,)
    n_le = np.searchsorted(null_min, obs_min, side="right")
    pvalue = np.maximum(n_le, 1) / len(null_min)
    lo, hi = lo_c / n_test, hi_c / n_test
    return PPCurve(z=z, ecdf=ecdf, lo=lo, hi=hi, inside=inside, pvalue=pvalue, gamma=gamma,
                   level=float(level))

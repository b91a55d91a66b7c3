"""Calibration and accuracy checks of amortized posteriors (pure array functions).

SEDflow (Hahn & Melchior 2022) validates its amortized posteriors three ways: p-p plots
and simulation-based-calibration (SBC) rank histograms over a test set drawn from the
prior, and a comparison with MCMC posteriors galaxy by galaxy. This module computes the
numbers behind those checks; :mod:`provabgs_sbi.plots.validation` draws them.

Conventions
-----------
``samples`` is an ndarray of shape (n_test, n_samples, d): ``n_samples`` posterior draws
for each of ``n_test`` test galaxies; ``truth`` is an ndarray of shape (n_test, d) of the
parameters the test photometry was simulated from. The test set must be drawn from the
prior the posterior estimator was trained on, otherwise SBC, p-p and TARP test nothing.
Every random step takes a ``seed`` and gives the same answer for the same seed.

Checks
------
Ranks (Talts et al. 2018, arXiv:1804.06788)
    :func:`sbc_ranks`: the number of posterior draws below the truth, ties broken at
    random. If the posterior is right, ranks are uniform on {0, ..., n_samples}.
    :func:`sbc_histogram` bins them; :func:`binomial_band` gives, for each bin, the
    central ``level`` interval of its count under uniformity (Binomial(n_test, p_bin));
    :func:`sbc_outside_band` counts bins outside it and how many are expected by chance.
p-p curve (Säilynoja, Bürkner & Vehtari 2022, Stat. Comput. 32, 32)
    :func:`pp_curve`: the ECDF of the fractional ranks with a *simultaneous* band: the
    whole curve of a calibrated posterior stays inside with probability ``level``.
Coverage
    :func:`coverage`: how often the truth falls in the central credible interval of each
    nominal level.
TARP (Lemos et al. 2023, ICML, arXiv:2302.03026)
    :func:`tarp`: expected coverage of balls around random reference points, a joint
    (all-parameter) test, with a bootstrap p-value for the distance from the diagonal.
Posterior vs posterior (ANPE vs MCMC)
    :func:`c2st` (classifier two-sample test as in sbibm, Lueckmann et al. 2021),
    :func:`ks_per_parameter`, :func:`marginal_agreement`.

:func:`summary` runs everything with a :class:`ValidationConfig` and returns a
JSON-serialisable dict.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "PPCurve", "TARPResult", "ValidationConfig", "binomial_band", "c2st", "coverage",
    "ecdf_band", "ks_per_parameter", "marginal_agreement", "pp_curve", "sbc_bin_probabilities",
    "sbc_chi2", "sbc_histogram", "sbc_outside_band", "sbc_ranks", "summary", "tarp",
]


# ---------------------------------------------------------------------- checks of inputs
def _check_samples_truth(samples, truth) -> tuple[np.ndarray, np.ndarray]:
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


def _check_ranks(ranks, n_samples: int) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim == 1:
        ranks = ranks[:, None]
    if ranks.ndim != 2 or ranks.shape[0] < 1:
        raise ValueError(f"ranks must have shape (n_test, d), got {ranks.shape}")
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}")
    if not np.issubdtype(ranks.dtype, np.integer):
        if not np.all(ranks == np.round(ranks)):
            raise ValueError("ranks must be integers")
        ranks = ranks.astype(np.int64)
    if ranks.min() < 0 or ranks.max() > n_samples:
        raise ValueError(f"ranks must lie in 0..n_samples={n_samples}, "
                         f"got {ranks.min()}..{ranks.max()}")
    return ranks


def _check_level(level: float, name: str = "level") -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {level}")
    return float(level)


def _names(names, d: int) -> list[str]:
    if names is None:
        return [f"theta_{j}" for j in range(d)]
    names = [str(n) for n in names]
    if len(names) != d:
        raise ValueError(f"{len(names)} names for {d} parameters")
    return names


# ------------------------------------------------------------------------------ SBC
def sbc_ranks(samples, truth, seed: int = 0) -> np.ndarray:
    """Rank of the true value among the posterior draws, per galaxy and parameter.

    ``rank = #{draws < truth} + U``, with ``U`` uniform on {0, ..., #{draws == truth}}
    (random tie-breaking, as Talts et al. recommend, so that discrete or clipped
    posteriors still give uniform ranks when calibrated).

    Parameters
    ----------
    samples : ndarray of shape (n_test, n_samples, d)
        Posterior draws.
    truth : ndarray of shape (n_test, d)
        True parameters.
    seed : int
        Seeds the tie-breaking.

    Returns
    -------
    ndarray of int64 of shape (n_test, d)
        Ranks in 0..n_samples; uniform on that set when the posterior is calibrated.
    """
    samples, truth = _check_samples_truth(samples, truth)
    n_less = np.sum(samples < truth[:, None, :], axis=1)
    n_equal = np.sum(samples == truth[:, None, :], axis=1)
    rng = np.random.default_rng(seed)
    return (n_less + rng.integers(0, n_equal + 1)).astype(np.int64)


def sbc_bin_probabilities(n_samples: int, n_bins: int) -> np.ndarray:
    """Probability of each SBC histogram bin under uniform ranks.

    Rank ``r`` in 0..n_samples goes to bin ``floor(r * n_bins / (n_samples + 1))``. The
    bins are equal (all ``1 / n_bins``) when ``n_bins`` divides ``n_samples + 1`` (the
    choice Talts et al. recommend); otherwise they differ by one rank value.

    Returns
    -------
    ndarray of shape (n_bins,)
        Fraction of the ``n_samples + 1`` rank values in each bin (sums to 1).
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}")
    if n_bins > n_samples + 1:
        raise ValueError(f"n_bins={n_bins} exceeds the {n_samples + 1} possible rank values")
    r = np.arange(n_samples + 1)
    per_bin = np.bincount(r * n_bins // (n_samples + 1), minlength=n_bins)
    return per_bin / (n_samples + 1.0)


def sbc_histogram(ranks, n_samples: int, n_bins: int = 20) -> np.ndarray:
    """Counts of SBC ranks in ``n_bins`` bins, per parameter.

    Parameters
    ----------
    ranks : ndarray of int of shape (n_test, d)
        From :func:`sbc_ranks`.
    n_samples : int
        Posterior draws per galaxy (ranks lie in 0..n_samples).
    n_bins : int
        Number of bins; best a divisor of ``n_samples + 1`` so all bins are equal
        (see :func:`sbc_bin_probabilities`).

    Returns
    -------
    ndarray of int64 of shape (n_bins, d)
        Number of galaxies whose rank falls in each bin; columns sum to n_test.
    """
    ranks = _check_ranks(ranks, n_samples)
    sbc_bin_probabilities(n_samples, n_bins)           # validates n_bins
    bins = ranks * n_bins // (n_samples + 1)
    return np.stack([np.bincount(bins[:, j], minlength=n_bins) for j in range(ranks.shape[1])],
                    axis=1).astype(np.int64)


def binomial_band(n_test: int, n_bins: int, level: float = 0.99,
                  bin_prob=None) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of each bin count under uniform ranks (Talts et al.).

    The count in a bin of probability ``p`` is Binomial(n_test, p); the band is its
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (``scipy.stats.binom.ppf``). It
    is pointwise: each bin is inside with probability >= ``level`` (>= because counts are
    discrete), so some bins out of many fall outside by chance (see
    :func:`sbc_outside_band`).

    Parameters
    ----------
    n_test : int
        Number of test galaxies (histogram entries per parameter).
    n_bins : int
    level : float
        Probability content of the band, in (0, 1).
    bin_prob : ndarray of shape (n_bins,), optional
        Bin probabilities (:func:`sbc_bin_probabilities`); default ``1 / n_bins`` each.

    Returns
    -------
    lo, hi : ndarray of int64 of shape (n_bins,)
        A count ``c`` is inside the band when ``lo <= c <= hi``.
    """
    level = _check_level(level)
    if int(n_test) != n_test or n_test < 1:
        raise ValueError(f"n_test must be a positive integer, got {n_test}")
    p = np.full(int(n_bins), 1.0 / n_bins) if bin_prob is None else np.asarray(bin_prob, float)
    if p.shape != (int(n_bins),):
        raise ValueError(f"bin_prob must have shape ({n_bins},), got {p.shape}")
    lo = stats.binom.ppf((1.0 - level) / 2.0, n_test, p)
    hi = stats.binom.ppf((1.0 + level) / 2.0, n_test, p)
    return lo.astype(np.int64), hi.astype(np.int64)


def sbc_outside_band(counts, n_samples: int, level: float = 0.99) -> tuple[np.ndarray, float]:
    """Number of histogram bins outside the binomial band, and the number expected.

    Parameters
    ----------
    counts : ndarray of int of shape (n_bins, d)
        From :func:`sbc_histogram`.
    n_samples : int
        Posterior draws per galaxy (fixes the bin probabilities).
    level : float
        Band level (:func:`binomial_band`).

    Returns
    -------
    n_outside : ndarray of int64 of shape (d,)
        Bins outside the band, per parameter.
    expected : float
        Expected number of bins outside for uniform ranks,
        ``sum_b [P(X_b < lo_b) + P(X_b > hi_b)]`` with ``X_b ~ Binomial(n_test, p_b)``
        (at most ``(1 - level) * n_bins``).
    """
    counts = np.asarray(counts)
    if counts.ndim == 1:
        counts = counts[:, None]
    n_bins = counts.shape[0]
    n_test = int(counts[:, 0].sum())
    if np.any(counts.sum(axis=0) != n_test):
        raise ValueError("every column of counts must sum to the same n_test")
    p = sbc_bin_probabilities(n_samples, n_bins)
    lo, hi = binomial_band(n_test, n_bins, level, bin_prob=p)
    outside = (counts < lo[:, None]) | (counts > hi[:, None])
    expected = float(np.sum(stats.binom.cdf(lo - 1, n_test, p) + stats.binom.sf(hi, n_test, p)))
    return outside.sum(axis=0).astype(np.int64), expected


def sbc_chi2(counts, n_samples: int) -> np.ndarray:
    """Pearson chi-square p-value of uniformity of each parameter's rank histogram.

    Parameters
    ----------
    counts : ndarray of int of shape (n_bins, d)
    n_samples : int

    Returns
    -------
    ndarray of shape (d,)
        p-values (``n_bins - 1`` degrees of freedom; expected counts from
        :func:`sbc_bin_probabilities`).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim == 1:
        counts = counts[:, None]
    p = sbc_bin_probabilities(n_samples, counts.shape[0])
    expected = p[:, None] * counts.sum(axis=0, keepdims=True)
    return stats.chisquare(counts, expected, axis=0).pvalue


# ------------------------------------------------------------------------- coverage
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
    samples, truth = _check_samples_truth(samples, truth)
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    if levels.ndim != 1 or np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"levels must lie in (0, 1), got {levels}")
    q = np.concatenate([(1.0 - levels) / 2.0, (1.0 + levels) / 2.0])
    bounds = np.quantile(samples, q, axis=1)              # (2 n_levels, n_test, d)
    lo, hi = bounds[: len(levels)], bounds[len(levels):]
    inside = (truth[None] >= lo) & (truth[None] <= hi)
    return inside.mean(axis=1)


# ----------------------------------------------------------------- p-p curve and band
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
    level = _check_level(level)
    z = np.asarray(z, dtype=float)
    if z.ndim != 1 or np.any((z <= 0) | (z >= 1)) or np.any(np.diff(z) <= 0):
        raise ValueError("z must be increasing points in (0, 1)")
    if int(n_sim) != n_sim or n_sim < 10:
        raise ValueError(f"n_sim must be an integer >= 10, got {n_sim}")
    if int(n_test) != n_test or n_test < 1:
        raise ValueError(f"n_test must be a positive integer, got {n_test}")
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
        From :func:`sbc_ranks`.
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
    ranks = _check_ranks(ranks, n_samples)
    n_test = ranks.shape[0]
    L1 = int(n_samples) + 1
    if n_eval is None:
        n_eval = min(L1 - 1, n_test, 200)
    if int(n_eval) != n_eval or not 1 <= n_eval <= L1 - 1:
        raise ValueError(f"n_eval must be an integer in 1..n_samples={L1 - 1}, got {n_eval}")
    m = np.unique(np.round(np.linspace(0, L1, int(n_eval) + 2)[1:-1]).astype(np.int64))
    m = m[(m > 0) & (m < L1)]
    z = m / L1
    if int(n_sim) != n_sim or n_sim < 10:
        raise ValueError(f"n_sim must be an integer >= 10, got {n_sim}")
    level = _check_level(level)
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


# ------------------------------------------------------------------------------ TARP
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
    samples, truth = _check_samples_truth(samples, truth)
    level = _check_level(level)
    if int(n_refs) != n_refs or n_refs < 1:
        raise ValueError(f"n_refs must be a positive integer, got {n_refs}")
    if int(bootstrap) != bootstrap or bootstrap < 99:
        raise ValueError(f"bootstrap must be an integer >= 99, got {bootstrap}")
    if int(n_alpha) != n_alpha or n_alpha < 3:
        raise ValueError(f"n_alpha must be an integer >= 3, got {n_alpha}")
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


# ------------------------------------------------------------ posterior vs posterior
def c2st(a, b, seed: int = 1, n_folds: int = 5, stratified: bool = True,
         max_iter: int = 10000, n_jobs: int | None = None) -> float:
    """Classifier two-sample test accuracy (Lopez-Paz & Oquab 2017), set up as in sbibm.

    Both sets are z-scored with the mean and standard deviation (ddof=1) of ``a``; a
    scikit-learn ``MLPClassifier`` (ReLU, two hidden layers of ``10 * dim`` units, Adam,
    ``max_iter``, ``random_state=seed``) is scored by ``n_folds``-fold shuffled
    cross-validation. ``stratified=True`` keeps the two classes balanced in every fold
    (``StratifiedKFold``); ``stratified=False`` uses the plain shuffled ``KFold`` of
    sbibm 1.1.0 (identical folds in practice when the sets have equal size).

    Parameters
    ----------
    a : ndarray of shape (n_a, dim)
        Reference samples (e.g. MCMC posterior draws of one galaxy).
    b : ndarray of shape (n_b, dim)
        Samples to compare (e.g. ANPE draws of the same galaxy).
    seed : int
    n_folds : int
    stratified : bool
    max_iter : int
    n_jobs : int, optional
        Folds fitted in parallel.

    Returns
    -------
    float
        Mean held-out accuracy: 0.5 for indistinguishable sets, 1.0 for separable ones.
        Use equal sizes: the chance level is otherwise ``max(n_a, n_b) / (n_a + n_b)``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (n, dim) arrays of the same dim, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < n_folds:
        raise ValueError(f"need at least n_folds={n_folds} samples in each set")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("c2st inputs must be finite")
    mean = a.mean(axis=0)
    std = a.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    data = np.concatenate([(a - mean) / std, (b - mean) / std])
    target = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    dim = a.shape[1]
    clf = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim),
                        max_iter=max_iter, solver="adam", random_state=seed)
    folds = (StratifiedKFold if stratified else KFold)(n_splits=n_folds, shuffle=True,
                                                       random_state=seed)
    # One BLAS thread per classifier: its matrices are small, and multi-threaded BLAS on a
    # busy machine made C2ST >10x slower (measured on 2 shared cores).
    with threadpool_limits(limits=1, user_api="blas"):
        scores = cross_val_score(clf, data, target, cv=folds, scoring="accuracy", n_jobs=n_jobs)
    return float(np.mean(scores))


def ks_per_parameter(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov test of each marginal (``scipy.stats.ks_2samp``).

    Parameters
    ----------
    a : ndarray of shape (n_a, d)
    b : ndarray of shape (n_b, d)

    Returns
    -------
    statistic, pvalue : ndarray of shape (d,)
        Note that posterior draws are often autocorrelated (MCMC); thin them first or
        the p-values are too small.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two (n, d) arrays of the same d, got {a.shape} and {b.shape}")
    res = [stats.ks_2samp(a[:, j], b[:, j]) for j in range(a.shape[1])]
    return (np.array([r.statistic for r in res]), np.array([r.pvalue for r in res]))


def marginal_agreement(samples_a, samples_b) -> np.ndarray:
    """Offset of the marginal medians in units of the reference posterior's width.

    ``|median(a) - median(b)| / std(b)`` per galaxy and parameter; SEDflow's ANPE and
    MCMC posteriors agree "within 0.3 posterior standard deviations on average" (``a`` =
    ANPE, ``b`` = MCMC).

    Parameters
    ----------
    samples_a : ndarray of shape (n_gal, n_a, d) or (n_a, d)
    samples_b : ndarray of shape (n_gal, n_b, d) or (n_b, d)
        Reference posterior draws.

    Returns
    -------
    ndarray of shape (n_gal, d), or (d,) for 2-D inputs
    """
    a = np.asarray(samples_a, dtype=float)
    b = np.asarray(samples_b, dtype=float)
    single = a.ndim == 2 and b.ndim == 2
    if single:
        a, b = a[None], b[None]
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(f"need (n_gal, n, d) arrays with the same n_gal and d, got {a.shape} "
                         f"and {b.shape}")
    std_b = b.std(axis=1, ddof=1)
    if np.any(std_b <= 0):
        raise ValueError("samples_b has zero spread in some galaxy and parameter")
    out = np.abs(np.median(a, axis=1) - np.median(b, axis=1)) / std_b
    return out[0] if single else out


# ---------------------------------------------------------------------------- summary
@dataclass(frozen=True)
class ValidationConfig:
    """Settings of :func:`summary` (validated on construction).

    Attributes
    ----------
    coverage_levels : tuple of float
        Nominal levels of the central credible intervals.
    n_bins : int
        SBC histogram bins (best a divisor of n_samples + 1).
    sbc_level : float
        Pointwise level of the binomial band on the histogram (Talts et al.: 0.99).
    pp_level : float
        Simultaneous level of the p-p band (Säilynoja et al.: 0.95).
    pp_n_eval : int or None
        Evaluation points of the p-p curve (None: see :func:`pp_curve`).
    n_sim : int
        Simulations for the p-p band.
    tarp_n_refs : int
        TARP reference points per galaxy.
    tarp_bootstrap : int
        TARP bootstrap resamples.
    tarp_level : float
        Content of the TARP bootstrap band.
    seed : int
        Seeds every random step.
    """

    coverage_levels: tuple = (0.5, 0.68, 0.9, 0.95, 0.99)
    n_bins: int = 20
    sbc_level: float = 0.99
    pp_level: float = 0.95
    pp_n_eval: int | None = None
    n_sim: int = 1000
    tarp_n_refs: int = 10
    tarp_bootstrap: int = 500
    tarp_level: float = 0.95
    seed: int = 0

    def __post_init__(self):
        levels = tuple(float(c) for c in np.atleast_1d(self.coverage_levels))
        if not levels or any(not 0.0 < c < 1.0 for c in levels):
            raise ValueError(f"coverage_levels must be non-empty and in (0, 1), got {levels}")
        object.__setattr__(self, "coverage_levels", levels)
        for name in ("sbc_level", "pp_level", "tarp_level"):
            _check_level(getattr(self, name), name)
        for name, minimum in (("n_bins", 1), ("n_sim", 10), ("tarp_n_refs", 1),
                              ("tarp_bootstrap", 99)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
        if self.pp_n_eval is not None and (int(self.pp_n_eval) != self.pp_n_eval
                                           or self.pp_n_eval < 1):
            raise ValueError(f"pp_n_eval must be None or a positive integer, got {self.pp_n_eval}")
        if int(self.seed) != self.seed:
            raise ValueError(f"seed must be an integer, got {self.seed}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["coverage_levels"] = list(self.coverage_levels)
        return out


def summary(samples, truth, names: Sequence[str] | None = None,
            config: ValidationConfig | None = None, low=None, high=None) -> dict:
    """All calibration checks of a test set, as a JSON-serialisable dict.

    Parameters
    ----------
    samples : ndarray of shape (n_test, n_samples, d)
    truth : ndarray of shape (n_test, d)
    names : sequence of str of length d, optional
        Parameter names (default ``theta_0``...).
    config : ValidationConfig, optional
    low, high : array_like of shape (d,), optional
        Prior box for TARP (default: range of ``truth``).

    Returns
    -------
    dict
        ``n_test``, ``n_samples``, ``names``, ``config``; ``sbc_band`` (``lo``, ``hi``,
        ``level``, ``expected_outside``); ``pp_band`` (``z``, ``lo``, ``hi``, ``gamma``,
        ``level``); ``parameters``: for each name, ``coverage`` ({level: fraction}),
        ``coverage_sigma`` (binomial standard deviation per level), ``sbc_counts``,
        ``sbc_outside_band``, ``sbc_chi2_pvalue``, ``pp_inside_band``, ``pp_pvalue``,
        ``pp_max_deviation``, ``zscore_mean`` and ``zscore_std`` (of
        ``(truth - mean) / std`` of the draws: 0 and 1 when calibrated and near-Gaussian);
        ``tarp`` (``distance``, ``p_value``, ``ks_pvalue``, ``atc``, ``n_refs``).
    """
    config = ValidationConfig() if config is None else config
    samples, truth = _check_samples_truth(samples, truth)
    n_test, L, d = samples.shape
    names = _names(names, d)
    ranks = sbc_ranks(samples, truth, seed=config.seed)
    counts = sbc_histogram(ranks, L, config.n_bins)
    bin_prob = sbc_bin_probabilities(L, config.n_bins)
    lo, hi = binomial_band(n_test, config.n_bins, config.sbc_level, bin_prob=bin_prob)
    n_out, expected_out = sbc_outside_band(counts, L, config.sbc_level)
    chi2_p = sbc_chi2(counts, L)
    cov = coverage(samples, truth, config.coverage_levels)
    levels = np.asarray(config.coverage_levels)
    cov_sigma = np.sqrt(levels * (1 - levels) / n_test)
    pp = pp_curve(ranks, L, level=config.pp_level, n_eval=config.pp_n_eval, n_sim=config.n_sim,
                  seed=config.seed)
    pp_dev = np.max(np.abs(pp.ecdf - pp.z[:, None]), axis=0)
    zscore = (truth - samples.mean(axis=1)) / np.maximum(samples.std(axis=1, ddof=1), 1e-300)
    tr = tarp(samples, truth, n_refs=config.tarp_n_refs, seed=config.seed,
              bootstrap=config.tarp_bootstrap, low=low, high=high, level=config.tarp_level)
    params = {}
    for j, name in enumerate(names):
        params[name] = {
            "coverage": {f"{c:g}": float(cov[k, j]) for k, c in enumerate(levels)},
            "coverage_sigma": {f"{c:g}": float(cov_sigma[k]) for k, c in enumerate(levels)},
            "sbc_counts": counts[:, j].tolist(),
            "sbc_outside_band": int(n_out[j]),
            "sbc_chi2_pvalue": float(chi2_p[j]),
            "pp_inside_band": bool(pp.inside[j]),
            "pp_pvalue": float(pp.pvalue[j]),
            "pp_max_deviation": float(pp_dev[j]),
            "zscore_mean": float(zscore[:, j].mean()),
            "zscore_std": float(zscore[:, j].std(ddof=1)) if n_test > 1 else None,
        }
    return {
        "n_test": int(n_test), "n_samples": int(L), "names": names, "config": config.to_dict(),
        "sbc_band": {"lo": lo.tolist(), "hi": hi.tolist(), "level": config.sbc_level,
                     "expected_outside": expected_out},
        "pp_band": {"z": pp.z.tolist(), "lo": pp.lo.tolist(), "hi": pp.hi.tolist(),
                    "gamma": pp.gamma, "level": pp.level},
        "parameters": params,
        "tarp": {"distance": tr.distance, "p_value": tr.p_value, "ks_pvalue": tr.ks_pvalue,
                 "atc": tr.atc, "n_refs": config.tarp_n_refs,
                 "alpha": tr.alpha.tolist(), "ecp": tr.ecp.tolist()},
    }

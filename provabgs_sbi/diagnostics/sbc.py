"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788): ranks and their
histogram against the binomial band.

:func:`sbc_ranks` counts the posterior draws below the truth, ties broken at random; if the
posterior is right the ranks are uniform on {0, ..., n_samples}. :func:`sbc_histogram` bins
them; :func:`binomial_band` gives, for each bin, the central ``level`` interval of its count
under uniformity (Binomial(n_test, p_bin)); :func:`sbc_outside_band` counts the bins outside
it and how many are expected by chance; :func:`sbc_chi2` is Pearson's test of uniformity.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from provabgs_sbi.diagnostics._inputs import (check_integer, check_level, check_ranks,
                                              check_samples_truth)

__all__ = ["binomial_band", "sbc_bin_probabilities", "sbc_chi2", "sbc_histogram",
           "sbc_outside_band", "sbc_ranks"]


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
    samples, truth = check_samples_truth(samples, truth)
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
    check_integer(n_bins, "n_bins")
    check_integer(n_samples, "n_samples")
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
    ranks = check_ranks(ranks, n_samples)
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
    level = check_level(level)
    check_integer(n_test, "n_test")
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

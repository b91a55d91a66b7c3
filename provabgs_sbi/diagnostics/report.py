"""Every calibration check of a test set at once: :func:`summary` with its
:class:`ValidationConfig`, as a JSON-serialisable dict.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from provabgs_sbi.diagnostics._inputs import (check_integer, check_level, check_samples_truth,
                                              parameter_names)
from provabgs_sbi.diagnostics.coverage import coverage
from provabgs_sbi.diagnostics.pp import pp_curve
from provabgs_sbi.diagnostics.sbc import (binomial_band, sbc_bin_probabilities, sbc_chi2,
                                          sbc_histogram, sbc_outside_band, sbc_ranks)
from provabgs_sbi.diagnostics.tarp import tarp

__all__ = ["ValidationConfig", "summary"]


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
        Evaluation points of the p-p curve (None: see
        :func:`~provabgs_sbi.diagnostics.pp.pp_curve`).
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
            check_level(getattr(self, name), name)
        for name, minimum in (("n_bins", 1), ("n_sim", 10), ("tarp_n_refs", 1),
                              ("tarp_bootstrap", 99)):
            check_integer(getattr(self, name), name, minimum)
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
    samples, truth = check_samples_truth(samples, truth)
    n_test, L, d = samples.shape
    names = parameter_names(names, d)
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

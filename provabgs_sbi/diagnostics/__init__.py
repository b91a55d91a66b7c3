"""Calibration and accuracy checks of amortized posteriors (pure array functions).

SEDflow (Hahn & Melchior 2022) validates its amortized posteriors three ways: p-p plots
and simulation-based-calibration (SBC) rank histograms over a test set drawn from the
prior, and a comparison with MCMC posteriors galaxy by galaxy. This package computes the
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

Modules
-------
:mod:`~provabgs_sbi.diagnostics.sbc` (ranks, histogram, binomial band),
:mod:`~provabgs_sbi.diagnostics.pp` (p-p curve and ECDF band),
:mod:`~provabgs_sbi.diagnostics.coverage`, :mod:`~provabgs_sbi.diagnostics.tarp`,
:mod:`~provabgs_sbi.diagnostics.two_sample` (C2ST, KS, marginal agreement) and
:mod:`~provabgs_sbi.diagnostics.report` (:class:`ValidationConfig`, :func:`summary`); every
public name is importable from this package.
"""
from provabgs_sbi.diagnostics.coverage import coverage, coverage_by_name
from provabgs_sbi.diagnostics.pp import PPCurve, ecdf_band, pp_curve
from provabgs_sbi.diagnostics.report import ValidationConfig, summary
from provabgs_sbi.diagnostics.sbc import (binomial_band, sbc_bin_probabilities, sbc_chi2,
                                          sbc_histogram, sbc_outside_band, sbc_ranks)
from provabgs_sbi.diagnostics.tarp import TARPResult, tarp
from provabgs_sbi.diagnostics.two_sample import c2st, ks_per_parameter, marginal_agreement

__all__ = [
    "PPCurve", "TARPResult", "ValidationConfig", "binomial_band", "c2st", "coverage",
    "coverage_by_name", "ecdf_band", "ks_per_parameter", "marginal_agreement", "pp_curve",
    "sbc_bin_probabilities", "sbc_chi2", "sbc_histogram", "sbc_outside_band", "sbc_ranks",
    "summary", "tarp",
]

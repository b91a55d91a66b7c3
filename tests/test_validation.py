"""Calibration checks on posteriors whose calibration is known.

A conjugate Gaussian model gives exact posteriors: truth ~ N(0, prior_sd^2) per
parameter, data = truth + N(0, noise_sd^2), posterior N(m, s^2) in closed form. Samples
from it must pass every check; samples too narrow, too wide or shifted must fail. All
seeds are fixed; tolerances are stated next to each assertion.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats

from provabgs_sbi import diagnostics as val

N_TEST, L, D = 400, 199, 4          # L + 1 = 200 rank values: 20 equal SBC bins


def gaussian_posteriors(n_test=N_TEST, n_samples=L, d=D, seed=0, scale=1.0, shift=0.0):
    """Truths and posterior draws of the conjugate Gaussian model.

    ``scale`` multiplies the posterior width and ``shift`` moves its centre, both in
    units of the exact posterior standard deviation (1 and 0: exact posterior).
    """
    rng = np.random.default_rng(seed)
    prior_sd = np.linspace(0.5, 2.0, d)
    noise_sd = np.linspace(1.0, 0.3, d)
    truth = rng.normal(0.0, prior_sd, (n_test, d))
    data = truth + rng.normal(0.0, noise_sd, (n_test, d))
    post_var = 1.0 / (1.0 / prior_sd ** 2 + 1.0 / noise_sd ** 2)
    post_mean = post_var * data / noise_sd ** 2
    s = np.sqrt(post_var)
    draws = rng.standard_normal((n_test, n_samples, d))
    samples = post_mean[:, None, :] + shift * s + scale * s * draws
    return samples, truth


def coverage_ok(cov, levels, n_test, n_sigma=3.5):
    """Coverage within n_sigma binomial standard deviations of nominal, everywhere."""
    levels = np.asarray(levels)[:, None]
    sigma = np.sqrt(levels * (1 - levels) / n_test)
    return bool(np.all(np.abs(cov - levels) <= n_sigma * sigma))


LEVELS = (0.5, 0.68, 0.9, 0.95)
MISCALIBRATED = {"too narrow": dict(scale=0.6), "too wide": dict(scale=1.5),
                 "biased": dict(shift=0.5)}


# ------------------------------------------------------------------------ SBC ranks
def test_ranks_uniform_under_null():
    samples, truth = gaussian_posteriors(seed=1)
    ranks = val.sbc_ranks(samples, truth, seed=0)
    assert ranks.shape == (N_TEST, D) and ranks.dtype == np.int64
    assert ranks.min() >= 0 and ranks.max() <= L
    counts = val.sbc_histogram(ranks, L, 20)
    assert counts.shape == (20, D) and np.all(counts.sum(axis=0) == N_TEST)
    # Pearson chi2 against uniform, per parameter and pooled: no rejection at 1%.
    assert np.all(val.sbc_chi2(counts, L) > 0.01)
    assert stats.chisquare(counts.sum(axis=1)).pvalue > 0.01
    np.testing.assert_array_equal(ranks, val.sbc_ranks(samples, truth, seed=0))


def test_ranks_of_too_narrow_posterior_are_not_uniform():
    samples, truth = gaussian_posteriors(seed=1, scale=0.6)
    counts = val.sbc_histogram(val.sbc_ranks(samples, truth), L, 20)
    assert np.all(val.sbc_chi2(counts, L) < 1e-6)


def test_tie_breaking_makes_discrete_ranks_uniform():
    # Uninformative data: truth and posterior draws from the same 3-valued distribution.
    rng = np.random.default_rng(3)
    p = [0.5, 0.3, 0.2]
    truth = rng.choice(3, p=p, size=(2000, 1)).astype(float)
    samples = rng.choice(3, p=p, size=(2000, 19, 1)).astype(float)
    ranks = val.sbc_ranks(samples, truth, seed=0)
    counts = val.sbc_histogram(ranks, 19, 10)
    assert val.sbc_chi2(counts, 19)[0] > 0.01
    # Without tie-breaking (count of draws strictly below) the ranks pile up low.
    naive = np.sum(samples < truth[:, None, :], axis=1)
    assert val.sbc_chi2(val.sbc_histogram(naive, 19, 10), 19)[0] < 1e-10


# ---------------------------------------------------------------- binomial band (Talts)
def test_binomial_band_matches_scipy_quantiles():
    for n_test, n_bins, level in [(400, 20, 0.99), (1000, 50, 0.95), (37, 5, 0.9)]:
        lo, hi = val.binomial_band(n_test, n_bins, level)
        assert lo.shape == hi.shape == (n_bins,)
        np.testing.assert_array_equal(lo, stats.binom.ppf((1 - level) / 2, n_test, 1 / n_bins))
        np.testing.assert_array_equal(hi, stats.binom.ppf((1 + level) / 2, n_test, 1 / n_bins))
        binom = stats.binom(n_test, 1 / n_bins)
        content = binom.cdf(hi) - binom.cdf(lo - 1)
        assert np.all(content >= level)


def test_unequal_bins_when_rank_values_do_not_divide():
    p = val.sbc_bin_probabilities(100, 20)              # 101 rank values in 20 bins
    assert p.sum() == pytest.approx(1.0)
    assert sorted(np.unique(np.round(p * 101)).tolist()) == [5, 6]
    assert np.allclose(val.sbc_bin_probabilities(199, 20), 1 / 20)
    lo, hi = val.binomial_band(400, 20, 0.99, bin_prob=p)
    np.testing.assert_array_equal(hi, stats.binom.ppf(0.995, 400, p))


def test_expected_bins_outside_band_matches_simulation():
    n_test, n_bins, level = 300, 20, 0.99
    rng = np.random.default_rng(4)
    counts = rng.multinomial(n_test, np.full(n_bins, 1 / n_bins), size=4000).T   # (n_bins, 4000)
    n_out, expected = val.sbc_outside_band(counts, L, level)
    assert expected <= (1 - level) * n_bins
    # Mean of 4000 draws; its standard error is about sqrt(expected / 4000) ~ 0.007.
    assert n_out.mean() == pytest.approx(expected, abs=0.03)


# ----------------------------------------------------------- p-p curve and its band
def test_pp_band_is_simultaneous():
    rng = np.random.default_rng(5)
    ranks = rng.integers(0, L + 1, size=(200, 2000))    # 2000 calibrated "parameters"
    pp = val.pp_curve(ranks, L, level=0.95, seed=1)
    # Whole curves inside ~95% of the time (binomial s.e. 0.005 + band simulation noise).
    assert 0.93 <= pp.inside.mean() <= 0.97
    np.testing.assert_array_equal(pp.inside, pp.pvalue > 0.05)
    # A pointwise 95% band would be crossed somewhere by most null curves.
    z = pp.z
    lo_pw = stats.binom.ppf(0.025, 200, z)[:, None] / 200
    hi_pw = stats.binom.ppf(0.975, 200, z)[:, None] / 200
    inside_pw = np.all((pp.ecdf >= lo_pw) & (pp.ecdf <= hi_pw), axis=0)
    assert inside_pw.mean() < 0.6
    assert np.all(pp.lo <= lo_pw[:, 0]) and np.all(pp.hi >= hi_pw[:, 0])
    assert pp.gamma < 0.05


def test_ecdf_band_reproducible_and_monotone():
    z = np.arange(1, 100) / 100
    lo1, hi1, g1 = val.ecdf_band(150, z, seed=3)
    lo2, hi2, g2 = val.ecdf_band(150, z, seed=3)
    np.testing.assert_array_equal(lo1, lo2)
    assert g1 == g2
    assert np.all(np.diff(lo1) >= 0) and np.all(np.diff(hi1) >= 0)
    assert np.all((lo1 <= z) & (z <= hi1))


# ------------------------------------------------------------ calibrated vs not
def test_calibrated_posterior_passes_every_check():
    samples, truth = gaussian_posteriors(seed=0)
    cov = val.coverage(samples, truth, LEVELS)
    assert cov.shape == (len(LEVELS), D)
    assert coverage_ok(cov, LEVELS, N_TEST)
    ranks = val.sbc_ranks(samples, truth)
    pp = val.pp_curve(ranks, L)
    assert np.all(pp.inside)
    n_out, expected = val.sbc_outside_band(val.sbc_histogram(ranks, L, 20), L, 0.99)
    # Chance level: about 0.16 bins per parameter, 0.64 over 4; P(>= 4 | Poisson) ~ 0.5%.
    assert expected < 0.2 and n_out.sum() <= 3
    result = val.tarp(samples, truth, n_refs=10, seed=0, bootstrap=300)
    assert result.p_value > 0.01 and result.ks_pvalue > 0.01
    assert abs(result.atc) < 0.03


@pytest.mark.parametrize("kind", list(MISCALIBRATED))
def test_miscalibrated_posterior_fails(kind):
    samples, truth = gaussian_posteriors(seed=0, **MISCALIBRATED[kind])
    cov = val.coverage(samples, truth, LEVELS)
    assert not coverage_ok(cov, LEVELS, N_TEST)
    if kind == "too narrow":
        assert np.all(cov < np.asarray(LEVELS)[:, None])
    if kind == "too wide":
        assert np.all(cov > np.asarray(LEVELS)[:, None])
    ranks = val.sbc_ranks(samples, truth)
    assert not np.any(val.pp_curve(ranks, L).inside)
    n_out, _ = val.sbc_outside_band(val.sbc_histogram(ranks, L, 20), L, 0.99)
    assert np.all(n_out >= 2)
    result = val.tarp(samples, truth, n_refs=10, seed=0, bootstrap=300)
    assert result.p_value < 0.01 and result.ks_pvalue < 0.01
    if kind == "too narrow":
        assert result.atc < -0.05
    if kind == "too wide":
        assert result.atc > 0.05


# --------------------------------------------------------------------------- TARP
def test_tarp_pvalue_is_calibrated_under_the_null():
    pvalues = []
    for rep in range(40):
        samples, truth = gaussian_posteriors(n_test=200, n_samples=99, d=3, seed=100 + rep)
        pvalues.append(val.tarp(samples, truth, n_refs=5, seed=rep, bootstrap=199).p_value)
    pvalues = np.array(pvalues)
    # Expected 0.4 of 40 below 0.01 and 2 below 0.05.
    assert np.sum(pvalues < 0.01) <= 3
    assert np.sum(pvalues < 0.05) <= 6
    assert 0.3 < np.median(pvalues) < 0.7


def test_tarp_rejects_small_bias_every_time():
    for rep in range(8):
        samples, truth = gaussian_posteriors(n_test=300, n_samples=99, d=3, seed=200 + rep,
                                             shift=0.6)
        assert val.tarp(samples, truth, n_refs=5, seed=rep, bootstrap=499).p_value < 0.01


def test_tarp_single_reference_agrees_with_exact_ks():
    for rep in range(4):
        samples, truth = gaussian_posteriors(n_test=300, n_samples=99, d=3, seed=300 + rep)
        result = val.tarp(samples, truth, n_refs=1, seed=rep, bootstrap=999, n_alpha=1001)
        assert result.f.shape == (300, 1)
        assert result.p_value == pytest.approx(result.ks_pvalue, abs=0.1)
        # The credibility values of a calibrated posterior are Uniform(0, 1).
        assert stats.kstest(result.f[:, 0], "uniform").pvalue == pytest.approx(result.ks_pvalue)


def test_tarp_curve_shape_and_band():
    samples, truth = gaussian_posteriors(n_test=200, n_samples=99, seed=7)
    r = val.tarp(samples, truth, n_refs=3, seed=0, bootstrap=199, n_alpha=51,
                 low=-6 * np.ones(D), high=6 * np.ones(D))
    assert r.alpha.shape == r.ecp.shape == r.ecp_lo.shape == (51,)
    assert r.ecp[0] == 0.0 and r.ecp[-1] == 1.0 and np.all(np.diff(r.ecp) >= 0)
    assert np.all(r.ecp_lo <= r.ecp + 1e-12) and np.all(r.ecp <= r.ecp_hi + 1e-12)
    with pytest.raises(ValueError):
        val.tarp(samples, truth, low=np.ones(D), high=np.ones(D))


def test_coverage_by_name_is_coverage_as_a_table():
    samples, truth = gaussian_posteriors(n_test=50, n_samples=99, d=2, seed=12)
    cov = val.coverage(samples, truth, (0.68, 0.95))
    table = val.coverage_by_name(samples, truth, ["a", "b"], (0.68, 0.95))
    assert table == {"0.68": {"a": cov[0, 0], "b": cov[0, 1]},
                     "0.95": {"a": cov[1, 0], "b": cov[1, 1]}}
    rounded = val.coverage_by_name(samples, truth, ["a", "b"], (0.68,), decimals=1)
    assert rounded == {"0.68": {"a": round(cov[0, 0], 1), "b": round(cov[0, 1], 1)}}
    with pytest.raises(ValueError):
        val.coverage_by_name(samples, truth, ["a"])


# ----------------------------------------------------- posterior against posterior
def test_c2st_chance_for_same_distribution_and_one_for_separated():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(300, 2))
    b = rng.normal(size=(300, 2))
    # max_iter lowered for speed: an MLP fitting noise runs to sbibm's 10000 otherwise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning
        same = val.c2st(a, b, seed=1, max_iter=100)
    assert abs(same - 0.5) < 0.07            # s.e. of 600 coin flips is 0.02
    c = rng.normal(size=(300, 2)) + np.array([4.0, 0.0])
    assert val.c2st(a, c, seed=1) > 0.95
    with pytest.raises(ValueError):
        val.c2st(a, rng.normal(size=(300, 3)))


def test_ks_per_parameter():
    rng = np.random.default_rng(9)
    a = rng.normal(size=(2000, 2))
    b = rng.normal(size=(2000, 2)) + np.array([0.0, 0.3])
    statistic, pvalue = val.ks_per_parameter(a, b)
    assert statistic.shape == pvalue.shape == (2,)
    assert pvalue[0] > 0.01 and pvalue[1] < 1e-10
    assert statistic[1] == pytest.approx(stats.ks_2samp(a[:, 1], b[:, 1]).statistic)


def test_marginal_agreement_in_posterior_sigmas():
    rng = np.random.default_rng(10)
    mu_a = rng.normal(size=(5, 3))
    mu_b = mu_a + np.array([0.0, 0.6, -1.0])
    sd_b = np.array([1.0, 2.0, 0.5])
    a = mu_a[:, None, :] + 0.5 * rng.standard_normal((5, 20000, 3))
    b = mu_b[:, None, :] + sd_b * rng.standard_normal((5, 20000, 3))
    agreement = val.marginal_agreement(a, b)
    assert agreement.shape == (5, 3)
    np.testing.assert_allclose(agreement, np.broadcast_to([0.0, 0.3, 2.0], (5, 3)), atol=0.04)
    assert val.marginal_agreement(a[0], b[0]).shape == (3,)


# ------------------------------------------------------------------ summary, config
def test_summary_is_json_and_flags_the_bad_parameter():
    samples, truth = gaussian_posteriors(n_test=300, seed=11)
    samples[..., 2] = samples[..., 2].mean(axis=1, keepdims=True) + \
        0.5 * (samples[..., 2] - samples[..., 2].mean(axis=1, keepdims=True))
    names = ["log_mstar", "tau_bc", "tau_ism", "n_dust"]
    cfg = val.ValidationConfig(n_sim=300, tarp_n_refs=3, tarp_bootstrap=199)
    out = json.loads(json.dumps(val.summary(samples, truth, names, cfg)))
    assert out["names"] == names and out["n_samples"] == L
    assert set(out["parameters"]) == set(names)
    assert out["config"]["coverage_levels"] == list(cfg.coverage_levels)
    inside = {n: out["parameters"][n]["pp_inside_band"] for n in names}
    assert inside == {"log_mstar": True, "tau_bc": True, "tau_ism": False, "n_dust": True}
    assert out["parameters"]["tau_ism"]["coverage"]["0.68"] < 0.5
    assert out["parameters"]["tau_ism"]["zscore_std"] > 1.5
    assert abs(out["parameters"]["log_mstar"]["zscore_std"] - 1) < 0.15
    assert 0.0 <= out["tarp"]["p_value"] <= 1.0     # one narrow marginal of 4: TARP is weak


@pytest.mark.parametrize("bad", [dict(coverage_levels=(0.5, 1.0)), dict(n_bins=0),
                                 dict(pp_level=1.2), dict(tarp_bootstrap=10),
                                 dict(n_sim=2.5), dict(pp_n_eval=0)])
def test_config_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        val.ValidationConfig(**bad)


def test_inputs_are_checked():
    samples, truth = gaussian_posteriors(n_test=10, n_samples=9, d=2)
    with pytest.raises(ValueError):
        val.sbc_ranks(samples, truth[:, :1])
    bad = samples.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        val.coverage(bad, truth)
    with pytest.raises(ValueError):
        val.sbc_histogram(np.full((10, 2), 10), 9, 5)      # rank above n_samples
    with pytest.raises(ValueError):
        val.pp_curve(np.zeros((10, 2), int), 9, level=0.99, n_sim=50)


# -------------------------------------------------------------------------- plots
def _is_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize("kind", ["calibrated", "too narrow"])
def test_plots_write_png(tmp_path, kind):
    from provabgs_sbi.plots import validation as vp

    kw = {} if kind == "calibrated" else MISCALIBRATED[kind]
    d = 5                   # readability for 12-19 panels was checked by eye, not here
    samples, truth = gaussian_posteriors(n_test=200, n_samples=99, d=d, seed=12, **kw)
    names = [f"param_{j}" for j in range(d)]
    ranks = val.sbc_ranks(samples, truth)
    pp = val.pp_curve(ranks, 99, n_sim=200)
    assert np.all(pp.inside) == (kind == "calibrated")
    if kind == "calibrated":
        counts = val.sbc_histogram(ranks, 99, 20)
        n_out, expected = val.sbc_outside_band(counts, 99)
        vp.plot_pp(pp, tmp_path / "pp.png", names=names)
        vp.plot_sbc(counts, val.binomial_band(200, 20), tmp_path / "sbc.png", names=names,
                    n_outside=n_out, expected_outside=expected)
    else:
        vp.plot_pp(pp, tmp_path / "pp.png", names=names, difference=True)
        vp.plot_pp(pp, tmp_path / "sbc.png", names=names, layout="single")
    result = val.tarp(samples, truth, n_refs=2, bootstrap=99)
    vp.plot_tarp({kind: result, "again": result}, tmp_path / "tarp.png")
    for name in ("pp", "sbc", "tarp"):
        assert _is_png(tmp_path / f"{name}.png")
    with pytest.raises(ValueError):
        vp.plot_pp(pp, tmp_path / "x.png", names=names[:3])


def test_cached_test_sets_of_other_redshift_ranges_do_not_meet(monkeypatch, tmp_path):
    """Two posteriors of one survey and emulator, one trusted only above z = 0.005 (as
    ``flow zrange`` records): each gets its own cached test file, not the other's."""
    from types import SimpleNamespace

    from provabgs_sbi.model.survey import get_survey
    from provabgs_sbi.workflows import validate as wv

    paths = []
    monkeypatch.setattr(wv, "make_training_set", lambda path, *a, **k: paths.append(path))
    monkeypatch.setattr(wv, "_emulator_id", lambda emulator: "ab" * 32)
    survey = get_survey("galex_sdss_2mass")
    for z_range in (survey.z_range, (0.005, 0.2)):
        post = SimpleNamespace(prior=SimpleNamespace(kind="default"), z_range=z_range,
                               survey=survey, noise=None)
        wv.test_set(post, emulator=None, n_test=10, work_dir=tmp_path)
    assert paths[0].name == "test_default_10_s0_eabababababab_galex_sdss_2mass.h5"
    assert paths[1].name == "test_default_10_s0_eabababababab_galex_sdss_2mass_z0.005-0.2.h5"

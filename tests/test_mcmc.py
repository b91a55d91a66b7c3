"""The MCMC baseline: exact posterior of a linear-Gaussian toy, truth recovery with the SED
model on a fake SSP table, determinism, input checks, diagnostics, catalog runs and resume.

Most runs use :class:`LinearToy`, whose posterior is known in closed form and whose
photometry costs microseconds; the SED-model runs are kept short (a few hundred
iterations on the fake table)."""
from __future__ import annotations

import json
import random

import h5py
import numpy as np
import pytest

from provabgs_sbi.baselines import mcmc
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.model.parameters import N_WARPED, from_warped, to_warped
from provabgs_sbi.model.photometry import nanomaggies_to_mag
from provabgs_sbi.model.priors import Prior

LN10 = np.log(10.0)


# ----------------------------------------------------------------------------- helpers
class LinearToy:
    """flux = c + A (w_S - w0): linear in the warped coordinates S = (log_mstar, tau_ism,
    n_dust), independent of the other 8. With a uniform prior on S (the likelihood far from
    the box edges) the posterior on S is Gaussian with covariance (A^T Lambda A)^-1; the other
    coordinates keep their prior marginals."""

    idx = [0, 9, 10]
    w0 = np.array([10.0, 1.2, -0.5])
    A = 10.0 * np.array([[30., 5, -4], [40, -6, 3], [50, 2, 8], [45, 9, -2], [35, -3, 5]])
    c = np.array([100., 150, 200, 220, 240])
    z_range = (0.0, 0.3)

    def __init__(self):
        self.n_points = 0

    def photometry(self, theta, z):
        theta = np.atleast_2d(theta)
        assert np.shape(z) == (len(theta),)
        self.n_points += len(theta)
        return self.c + (to_warped(theta)[:, self.idx] - self.w0) @ self.A.T


class DerivedStub:
    def derived(self, theta, z):
        return {"log_mstar_formed": np.asarray(theta)[:, 0].copy(), "z": np.asarray(z).copy()}


def x_from_flux(flux, sigma_flux, z):
    """x = [mags, mag errors, z] from fluxes (nmgy) and their errors."""
    flux = np.asarray(flux, dtype=float)
    return np.concatenate([nanomaggies_to_mag(flux), 2.5 / LN10 * np.asarray(sigma_flux) / flux, [z]])


SIGMA_TOY = np.array([3.0, 4.0, 5.0, 4.0, 3.0])


def toy_x(seed=0):
    toy = LinearToy()
    rng = np.random.default_rng(seed)
    w_true = np.array([10.02, 1.1, -0.45])
    flux = toy.c + toy.A @ (w_true - toy.w0) + SIGMA_TOY * rng.standard_normal(5)
    return x_from_flux(flux, SIGMA_TOY, 0.1), flux


class BoxPrior:
    """Uniform prior on a sub-box of the warped support (duck-types Prior)."""

    kind = "box"

    def __init__(self, low, high):
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)

    def sample_warped(self, n, seed=None):
        return np.random.default_rng(seed).uniform(self.low, self.high, size=(int(n), N_WARPED))

    def log_prob_warped(self, w):
        w = np.atleast_2d(w)
        inside = np.all((w >= self.low) & (w <= self.high), axis=1)
        return np.where(inside, -np.log(self.high - self.low).sum(), -np.inf)


SHORT = dict(n_walkers=22, n_steps=40, burn_in=10, progress=False, n_init=256)


# ----------------------------------------------------------------------------- posterior
@pytest.mark.slow
def test_linear_gaussian_toy_recovers_exact_posterior():
    """Mean, std and correlations of the constrained coordinates against the closed form;
    the unconstrained ones against their prior marginals (Beta(3,1), Beta(2,1), uniform).

    Tolerances: 800 post-burn-in iterations of 30 walkers with tau ~ 25 give ~1000
    effective samples, so the Monte Carlo error of a mean is ~0.03 sd and of an sd ~2-3%;
    we allow 0.2 sd, 15% and 0.1 in a correlation coefficient. (With 600 iterations, seeds
    0-5 gave at most 0.16 sd, 6% and 0.04 over all eleven coordinates.)"""
    toy = LinearToy()
    x, flux = toy_x(seed=0)
    lam = np.diag(1.0 / SIGMA_TOY**2)
    cov = np.linalg.inv(toy.A.T @ lam @ toy.A)
    mean = toy.w0 + cov @ toy.A.T @ lam @ (flux - toy.c)
    res = mcmc.run_mcmc(x, toy, n_walkers=30, n_steps=1000, burn_in=200, seed=1, progress=False)
    w = res.samples_warped
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(w[:, toy.idx].mean(0) - mean), 0.2 * sd)
    np.testing.assert_allclose(w[:, toy.idx].std(0), sd, rtol=0.15)
    corr = cov / np.outer(sd, sd)
    np.testing.assert_allclose(np.corrcoef(w[:, toy.idx].T), corr, atol=0.1)
    # Prior marginals of the coordinates the data do not touch.
    prior = Prior()
    free = {1: (0.75, np.sqrt(3 / 80)), 2: (2 / 3, np.sqrt(2 / 36)), 3: (0.5, np.sqrt(1 / 12))}
    for j in (4, 5, 6, 7, 8):
        width = prior.high[j] - prior.low[j]
        free[j] = (0.5 * (prior.low[j] + prior.high[j]), width / np.sqrt(12))
    for j, (m, s) in free.items():
        assert abs(w[:, j].mean() - m) < 0.2 * s, (j, w[:, j].mean(), m)
        assert abs(w[:, j].std() / s - 1) < 0.15, (j, w[:, j].std(), s)
    # Samples are consistent: physical = from_warped(warped), all in the support.
    np.testing.assert_allclose(res.samples, from_warped(w))
    assert np.all(prior.in_support(res.samples))
    assert res.samples.shape == (30 * 800, 12) and res.log_prob.shape == (30 * 800,)
    assert res.chain.shape == (1000, 30, 11)
    assert res.timing["n_model_calls"] > 1000 and res.timing["s_per_call"] > 0


@pytest.mark.slow
def test_sed_model_truth_inside_99_percent_interval(fake_model):
    """A noise-free galaxy from the SED model (fake SSP table), 0.02 mag errors. The other
    ten coordinates are held to +-2% windows of their prior ranges around the truth, so the
    data alone constrain log M* (over the full [7, 12.5]); its 99% interval must contain the
    truth and be narrower than 0.15 dex (a 1500-iteration run gives [10.466, 10.537]; seeds
    0-7 of this 150-iteration run all give widths 0.06-0.08 around 10.5). Wrong flux units,
    error propagation or warping would move it off."""
    theta = np.array([10.5, 0.3, 0.3, 0.2, 0.2, 0.1, 2.0, 3e-3, 2e-3, 0.5, 0.4, -0.3])
    z = 0.08
    flux = fake_model.photometry(theta[None], z)[0]
    x = np.concatenate([nanomaggies_to_mag(flux), np.full(5, 0.02), [z]])
    full = Prior()
    w_true = to_warped(theta[None])[0]
    half = 0.02 * (full.high - full.low)
    low = np.maximum(w_true - half, full.low)
    high = np.minimum(w_true + half, full.high)
    low[0], high[0] = full.low[0], full.high[0]
    res = mcmc.run_mcmc(x, fake_model, n_walkers=22, n_steps=150, burn_in=75, seed=2,
                        prior=BoxPrior(low, high), progress=False, n_init=1024)
    lo, hi = np.quantile(res.samples[:, 0], [0.005, 0.995])
    assert lo < theta[0] < hi, (lo, hi)
    assert hi - lo < 0.15
    # Derived properties come from SEDModel.derived.
    assert set(res.derived) >= {"log_mstar_surviving", "sfr_1gyr", "z_mw"}
    np.testing.assert_array_equal(res.derived["log_mstar_formed"], res.samples[:, 0])
    # Posterior predictive: the median model is a good fit, the truth a perfect one.
    assert mcmc.chi2_of_median(x, res, fake_model) < 5.0
    assert mcmc.chi2_of_median(x, np.tile(theta, (7, 1)), fake_model) < 1e-10
    per_band = mcmc.chi2_of_median(x, res.samples, fake_model, per_band=True)
    assert per_band.shape == (5,) and np.all(per_band >= 0)


# ----------------------------------------------------------------------------- likelihood
def test_likelihood_in_nanomaggies_matches_hand_computation():
    toy = LinearToy()
    x, _ = toy_x()
    flux, ivar, z = mcmc.observed_flux(x, model=toy)
    f_obs = 10 ** (-0.4 * (x[:5] - 22.5))
    np.testing.assert_allclose(flux, f_obs)
    np.testing.assert_allclose(ivar, 1 / (f_obs * LN10 / 2.5 * x[5:10]) ** 2)
    np.testing.assert_allclose(1 / np.sqrt(ivar), SIGMA_TOY, rtol=1e-10)   # round trip
    prior = Prior()
    lp = mcmc.LogPosterior(flux, ivar, z, toy, prior)
    w = prior.sample_warped(5, seed=3)
    w[4, 0] = 13.0                                   # outside the box: -inf, no model call
    got = lp(w)
    model = toy.photometry(from_warped(w[:4]), np.full(4, z))
    want = (prior.log_prob_warped(w[:4]) - 0.5 * (ivar * (model - flux) ** 2).sum(1)
            - 0.5 * np.log(2 * np.pi / ivar).sum())
    np.testing.assert_allclose(got[:4], want)
    assert got[4] == -np.inf
    assert lp.n_calls == 1 and lp.n_points == 4
    # ivar= overrides the magnitude errors (which may then be NaN).
    x_nan = x.copy()
    x_nan[5:10] = np.nan
    _, ivar2, _ = mcmc.observed_flux(x_nan, ivar=np.full(5, 0.5))
    np.testing.assert_array_equal(ivar2, np.full(5, 0.5))


def test_one_chi2_for_mcmc_and_the_predictive_checks():
    """flux_and_ivar reads many x at once as observed_flux reads one; flux_chi2 is the
    likelihood's chi^2 (LogPosterior = prior - chi^2 / 2 + norm) and, with an error floor,
    divides by the floored variance."""
    from provabgs_sbi.model.observation import flux_and_ivar, flux_chi2

    toy = LinearToy()
    xs = np.stack([toy_x(seed=s)[0] for s in range(3)])
    flux, ivar = flux_and_ivar(xs)
    for i in range(3):
        f1, iv1, _ = mcmc.observed_flux(xs[i])
        np.testing.assert_array_equal(flux[i], f1)
        np.testing.assert_array_equal(ivar[i], iv1)
    prior = Prior()
    w = prior.sample_warped(4, seed=1)
    model = toy.photometry(from_warped(w), np.full(4, 0.1))
    lp = mcmc.LogPosterior(flux[0], ivar[0], 0.1, toy, prior)
    np.testing.assert_allclose(lp(w), prior.log_prob_warped(w) - 0.5 * flux_chi2(model, flux[0], ivar[0])
                               + lp.log_norm)
    np.testing.assert_allclose(flux_chi2(model, flux[0], ivar[0], per_band=True).sum(1),
                               ((model - flux[0]) ** 2 * ivar[0]).sum(1))
    var = 1 / ivar[0] + (flux[0] * LN10 / 2.5 * 0.05) ** 2
    np.testing.assert_allclose(flux_chi2(model, flux[0], ivar[0], sigma_sys=0.05),
                               ((model - flux[0]) ** 2 / var).sum(1))
    assert np.all(flux_chi2(model, flux[0], ivar[0], sigma_sys=0.05)
                  < flux_chi2(model, flux[0], ivar[0]))


def test_nonfinite_model_flux_gives_minus_inf():
    class Bad(LinearToy):
        def photometry(self, theta, z):
            out = super().photometry(theta, z)
            out[0, 0] = np.nan
            return out

    x, _ = toy_x()
    flux, ivar, z = mcmc.observed_flux(x)
    lp = mcmc.LogPosterior(flux, ivar, z, Bad(), Prior())
    got = lp(Prior().sample_warped(3, seed=0))
    assert got[0] == -np.inf and np.all(np.isfinite(got[1:]))


# ----------------------------------------------------------------------------- determinism
def test_same_seed_identical_and_global_state_untouched():
    x, _ = toy_x()
    np.random.seed(7)
    random.seed(7)
    np_state, py_state = np.random.get_state(), random.getstate()
    a = mcmc.run_mcmc(x, LinearToy(), seed=5, **SHORT)
    b = mcmc.run_mcmc(x, LinearToy(), seed=5, **SHORT)
    c = mcmc.run_mcmc(x, LinearToy(), seed=6, **SHORT)
    np.testing.assert_array_equal(a.chain, b.chain)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)
    assert not np.array_equal(a.chain, c.chain)
    # zeus's global RNGs were seeded for the run and then restored.
    after_np = np.random.get_state()
    assert np.array_equal(after_np[1], np_state[1]) and after_np[2] == np_state[2]
    assert random.getstate() == py_state


def test_walkers_start_in_a_small_ball_inside_the_support():
    x, _ = toy_x()
    res = mcmc.run_mcmc(x, LinearToy(), seed=0, init="ball", **SHORT)
    prior = Prior()
    assert np.all(np.isfinite(prior.log_prob_warped(res.start)))
    spread = res.start.max(0) - res.start.min(0)
    assert np.all(spread > 0)
    assert np.all(spread <= 0.01 * (prior.high - prior.low) + 1e-12)
    np.testing.assert_array_equal(res.chain.shape, (40, 22, 11))
    assert res.samples.shape == (22 * 30, 12)


def test_resampled_walkers_follow_the_likelihood():
    """SIR start: spread like the prior where the data are silent, like the likelihood
    where they constrain (the toy's 3 coordinates)."""
    toy = LinearToy()
    x, flux = toy_x(seed=0)
    lam = np.diag(1.0 / SIGMA_TOY**2)
    cov = np.linalg.inv(toy.A.T @ lam @ toy.A)
    mean = toy.w0 + cov @ toy.A.T @ lam @ (flux - toy.c)
    rng = np.random.default_rng(2)
    prior = Prior()
    fx, ivar, z = mcmc.observed_flux(x)
    lp = mcmc.LogPosterior(fx, ivar, z, toy, prior)
    start, lp_start = mcmc.initial_walkers(lp, prior, 200, rng, n_init=200_000, init="resample")
    assert np.all(np.isfinite(lp_start)) and np.all(prior.in_support(from_warped(start)))
    sd = np.sqrt(np.diag(cov))
    # Constrained coordinates: near the posterior mean (a few prior draws carry most of the
    # weight of so sharp a likelihood, so within a few sigma, not a sample of it) ...
    assert np.all(np.abs(np.median(start[:, toy.idx], axis=0) - mean) < 4 * sd)
    # ... and far tighter than the prior.
    assert np.all(np.ptp(start[:, toy.idx], axis=0) < 0.15 * (prior.high - prior.low)[toy.idx])
    # A free coordinate (tburst) spreads far beyond a 1% ball (over the few prior draws
    # that carry the weight).
    j = 5
    assert np.ptp(start[:, j]) > 0.3 * (prior.high[j] - prior.low[j])
    with pytest.raises(ValueError, match="init"):
        mcmc.initial_walkers(lp, prior, 30, rng, n_init=100, init="uniform")


def test_likelihood_in_magnitudes_matches_hand_computation():
    toy = LinearToy()
    x, _ = toy_x()
    flux, ivar, z = mcmc.observed_flux(x, model=toy)
    prior = Prior()
    lp = mcmc.LogPosterior(flux, ivar, z, toy, prior, likelihood="mag", mags=x[:5],
                           sigma_mag=x[5:10])
    w = prior.sample_warped(4, seed=3)
    w[:, toy.idx] = toy.w0 + np.array([0.01, 0.05, -0.05])   # positive model fluxes
    model = toy.photometry(from_warped(w), np.full(4, z))
    m = 22.5 - 2.5 * np.log10(model)
    want = (prior.log_prob_warped(w) - 0.5 * (((m - x[:5]) / x[5:10]) ** 2).sum(1)
            - 0.5 * np.log(2 * np.pi * x[5:10] ** 2).sum())
    np.testing.assert_allclose(lp(w), want)
    with pytest.raises(ValueError, match="likelihood"):
        mcmc.LogPosterior(flux, ivar, z, toy, prior, likelihood="poisson")
    res = mcmc.run_mcmc(x, toy, seed=0, likelihood="mag", **SHORT)
    assert res.config.likelihood == "mag" and np.all(np.isfinite(res.log_prob))


def test_thin_keeps_every_kth_iteration():
    x, _ = toy_x()
    a = mcmc.run_mcmc(x, LinearToy(), seed=4, **SHORT)
    b = mcmc.run_mcmc(x, LinearToy(), seed=4, thin=3, **SHORT)
    np.testing.assert_array_equal(b.samples_warped, a.chain[10::3].reshape(-1, 11))
    assert len(b.samples) == b.config.n_kept == 22 * 10


def test_derived_sources():
    x, _ = toy_x()
    # No derived method anywhere: None.
    assert mcmc.run_mcmc(x, LinearToy(), seed=0, **SHORT).derived is None
    # The emulator's convention: model.burst_model supplies derived().
    emu_like = LinearToy()
    emu_like.burst_model = DerivedStub()
    res = mcmc.run_mcmc(x, emu_like, seed=0, **SHORT)
    np.testing.assert_array_equal(res.derived["log_mstar_formed"], res.samples[:, 0])
    np.testing.assert_array_equal(res.derived["z"], np.full(len(res.samples), 0.1))
    # An explicit derived_model.
    res = mcmc.run_mcmc(x, LinearToy(), seed=0, derived_model=DerivedStub(), **SHORT)
    assert set(res.derived) == {"log_mstar_formed", "z"}
    with pytest.raises(ValueError, match="derived"):
        mcmc.run_mcmc(x, LinearToy(), seed=0, derived_model=object(), **SHORT)


# ----------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("change, match", [
    (lambda x: x[:10], "shape"),
    (lambda x: np.concatenate([x, [1.0]]), "shape"),
    (lambda x: np.where(np.arange(11) == 2, np.nan, x), "non-finite magnitudes"),
    (lambda x: np.where(np.arange(11) == 6, 0.0, x), "errors must be finite and > 0"),
    (lambda x: np.where(np.arange(11) == 7, -0.1, x), "errors must be finite and > 0"),
    (lambda x: np.where(np.arange(11) == 8, np.nan, x), "errors must be finite and > 0"),
    (lambda x: np.where(np.arange(11) == 10, np.nan, x), "non-finite redshift"),
    (lambda x: np.where(np.arange(11) == 10, 0.0, x), "must be > 0"),
    (lambda x: np.where(np.arange(11) == 10, 0.35, x), r"outside the model's range \[0.0, 0.3\]"),
])
def test_bad_x_raises(change, match):
    x, _ = toy_x()
    with pytest.raises(ValueError, match=match):
        mcmc.run_mcmc(change(x.copy()), LinearToy(), **SHORT)


@pytest.mark.parametrize("ivar, match", [
    (np.array([1.0, 1, 0, 1, 1]), "ivar must be finite and > 0"),
    (np.array([1.0, 1, -2, 1, 1]), "ivar must be finite and > 0"),
    (np.array([1.0, np.nan, 1, 1, 1]), "ivar must be finite and > 0"),
    (np.ones(4), "ivar must have shape"),
])
def test_bad_ivar_raises(ivar, match):
    x, _ = toy_x()
    with pytest.raises(ValueError, match=match):
        mcmc.run_mcmc(x, LinearToy(), ivar=ivar, **SHORT)


@pytest.mark.parametrize("kw, match", [
    (dict(n_walkers=21), "even"),
    (dict(n_walkers=20), ">= 22"),
    (dict(n_steps=10, burn_in=8), "burn_in"),
    (dict(burn_in=-1), "burn_in"),
    (dict(thin=0), "thin"),
    (dict(init_scale=0.0), "init_scale"),
    (dict(rhat_max=1.0), "rhat_max"),
    (dict(n_steps=40.5), "integer"),
])
def test_bad_settings_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        mcmc.MCMCConfig(**kw)


def test_model_without_photometry_refused():
    x, _ = toy_x()
    with pytest.raises(ValueError, match="photometry"):
        mcmc.run_mcmc(x, object(), **SHORT)


def test_sed_model_rejects_z_zero(fake_model):
    x, _ = toy_x()
    x[10] = 0.0
    with pytest.raises(ValueError, match="z = 0"):
        mcmc.run_mcmc(x, fake_model, **SHORT)


# ----------------------------------------------------------------------------- diagnostics
def test_autocorr_time_of_ar1_process():
    """AR(1) with coefficient phi has tau = (1 + phi) / (1 - phi) exactly."""
    rng = np.random.default_rng(0)
    n, walkers = 20000, 16
    out = np.zeros((n, walkers, 2))
    phis = np.array([0.5, 0.9])
    eps = rng.standard_normal((n, walkers, 2))
    for t in range(1, n):
        out[t] = phis * out[t - 1] + eps[t]
    tau = mcmc.autocorr_time(out)
    np.testing.assert_allclose(tau, (1 + phis) / (1 - phis), rtol=0.1)


def test_split_rhat_flags_disagreeing_chains():
    rng = np.random.default_rng(1)
    iid = rng.standard_normal((2000, 20, 2))
    assert np.all(mcmc.split_rhat(iid) < 1.01)
    shifted = iid.copy()
    shifted[:, :10, 0] += 1.0                      # half the walkers elsewhere
    trend = iid.copy()
    trend[:, :, 1] += np.linspace(0, 2, 2000)[:, None]   # drifting: halves disagree
    r = mcmc.split_rhat(np.concatenate([shifted[..., :1], trend[..., 1:]], axis=2))
    assert np.all(r > 1.1)
    const = np.ones((10, 22, 1))
    assert np.isnan(mcmc.split_rhat(const)[0]) and np.isnan(mcmc.autocorr_time(const)[0])
    assert not mcmc.convergence_report(const)["converged"]


def test_convergence_report_keys_and_short_chain_not_converged():
    x, _ = toy_x()
    res = mcmc.run_mcmc(x, LinearToy(), seed=0, **SHORT)
    conv = res.convergence
    for k in ("tau", "n_eff", "rhat", "tau_ok", "rhat_ok"):
        assert conv[k].shape == (11,), k
    assert conv["n_post"] == 30
    assert {"converged", "criteria", "tau_factor", "rhat_max"} <= set(conv)
    assert conv["converged"] is False and res.converged is False
    assert not np.all(conv["tau_ok"])              # 30 iterations < 50 tau
    np.testing.assert_allclose(conv["n_eff"], 22 * 30 / conv["tau"])


def test_converged_when_criteria_hold():
    """An iid 'chain' (tau = 1) passes both criteria; the thresholds are what decide."""
    chain = np.random.default_rng(3).standard_normal((400, 22, 11))
    conv = mcmc.convergence_report(chain)
    assert conv["converged"] and np.all(conv["tau"] < 2)
    assert not mcmc.convergence_report(chain, tau_factor=1000)["converged"]


# ----------------------------------------------------------------------------- catalogs
def toy_catalog():
    toy = LinearToy()
    rng = np.random.default_rng(4)
    w = np.array([[10.0, 1.2, -0.5], [10.01, 1.0, -0.4], [9.99, 1.3, -0.6]])
    flux = toy.c + (w - toy.w0) @ toy.A.T + SIGMA_TOY * rng.standard_normal((3, 5))
    ivar = np.tile(1 / SIGMA_TOY**2, (3, 1))
    ivar[1, 2] = 0.0                               # row 1 has no usable error in r
    return PhotometryCatalog.from_arrays(flux, ivar, np.full(3, 0.1), ids=np.array([11, 12, 13]))


CAT_KW = dict(n_walkers=22, n_steps=30, burn_in=10, seed=3, progress=False)


def test_run_mcmc_catalog_writes_and_resumes(tmp_path):
    cat = toy_catalog()
    out = tmp_path / "mcmc.h5"
    toy = LinearToy()
    summary = mcmc.run_mcmc_catalog(cat, [0, 1, 2], toy, out, **CAT_KW)
    assert summary == {"done": [0, 2], "skipped": [], "failed": [1]}
    with h5py.File(out) as fh:
        assert set(fh) == {"row_0", "row_1", "row_2"}
        g = fh["row_2"]
        assert g.attrs["status"] == "ok" and g.attrs["id"] == "13"
        assert g["samples"].shape == (22 * 20, 12) and g["samples_warped"].shape == (22 * 20, 11)
        assert g.attrs["tau"].shape == (11,) and not g.attrs["converged"]
        assert fh["row_1"].attrs["status"] == "failed"
        assert "ivar_bad" in fh["row_1"].attrs["error"]
    row = mcmc.read_mcmc_row(out, 2)
    # A row's result does not depend on the other rows: same as a direct run with its seed
    # and the catalog's inverse variances.
    direct = mcmc.run_mcmc(cat.to_x()[2], LinearToy(), seed=np.random.SeedSequence([3, 2]),
                           ivar=cat.ivar[2], n_walkers=22, n_steps=30, burn_in=10,
                           progress=False)
    np.testing.assert_array_equal(row["samples"], direct.samples)
    # Second call: everything already there, the model is not called.
    n_before = toy.n_points
    again = mcmc.run_mcmc_catalog(cat, [0, 1, 2], toy, out, **CAT_KW)
    assert again == {"done": [], "skipped": [0, 1, 2], "failed": []}
    assert toy.n_points == n_before
    # Other settings are refused rather than mixed into the same file.
    with pytest.raises(ValueError, match="other settings"):
        mcmc.run_mcmc_catalog(cat, [0], toy, out, **{**CAT_KW, "n_steps": 31})


def test_run_mcmc_catalog_tells_emulators_apart(tmp_path):
    """Two emulators of one SSP table differ only in their manifest: a results file of one
    is not resumed with the other. A file from before the manifest was recorded resumes."""
    cat = toy_catalog()
    out = tmp_path / "mcmc.h5"
    toy = LinearToy()
    toy.manifest_sha256 = "a" * 64
    mcmc.run_mcmc_catalog(cat, [0], toy, out, **CAT_KW)
    toy.manifest_sha256 = "b" * 64
    with pytest.raises(ValueError, match="other settings"):
        mcmc.run_mcmc_catalog(cat, [0], toy, out, **CAT_KW)
    with h5py.File(out, "a") as fh:             # as written before the manifest was recorded
        settings = json.loads(fh.attrs["settings"])
        del settings["model"]["manifest_sha256"]
        fh.attrs["settings"] = json.dumps(settings)
    assert mcmc.run_mcmc_catalog(cat, [0], toy, out, **CAT_KW)["skipped"] == [0]


def test_run_mcmc_catalog_cleans_interrupted_write(tmp_path):
    cat = toy_catalog()
    out = tmp_path / "mcmc.h5"
    mcmc.run_mcmc_catalog(cat, [0], LinearToy(), out, n_save=50, **CAT_KW)
    with h5py.File(out, "a") as fh:                # a crash while writing row 2
        fh.create_group("_writing_row_2").create_dataset("samples", data=np.zeros(3))
    summary = mcmc.run_mcmc_catalog(cat, [0, 2], LinearToy(), out, n_save=50, **CAT_KW)
    assert summary["skipped"] == [0] and summary["done"] == [2]
    with h5py.File(out) as fh:
        assert set(fh) == {"row_0", "row_2"}
        assert fh["row_2/samples"].shape == (50, 12)
    with pytest.raises(ValueError, match="outside the catalog"):
        mcmc.run_mcmc_catalog(cat, [5], LinearToy(), out, n_save=50, **CAT_KW)

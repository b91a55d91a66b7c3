"""Flow preconditioning of the MCMC (NeuTra): the numpy map against the flow's own TF map
and density, and MCMC through a strongly non-linear map still sampling the exact posterior
of the linear-Gaussian toy."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from provabgs_sbi.baselines import mcmc
from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
from provabgs_sbi.experimental.neutra import FlowMap, FlowTarget, flow_description, preconditioning_flow
from provabgs_sbi.model.parameters import N_WARPED
from provabgs_sbi.model.priors import Prior

from .test_mcmc import SIGMA_TOY, LinearToy, toy_catalog, toy_x

X0 = np.array([20.5, 18.6, 17.5, 17.0, 16.7, 0.2, 0.01, 0.006, 0.005, 0.01, 0.1])


def random_flow(box_transform="logit", activation="tanh", scale=0.5, seed=0, n_transforms=3,
                hidden=(24, 24)):
    """An untrained flow on the prior box with random weights far from the identity map.

    The output layers get ``scale`` x Glorot weights (the initialisation uses 1e-2), so the
    map from noise to parameters is strongly non-linear and depends on x."""
    prior = Prior()
    cfg = FlowConfig(n_transforms=n_transforms, hidden_units=hidden, activation=activation,
                     box_transform=box_transform, jit_compile=False, seed=seed)
    rng = np.random.default_rng(seed)
    flow = ConditionalFlow(cfg, low=prior.low, high=prior.high, y_mean=rng.normal(0, 0.3, 11),
                           y_std=rng.uniform(0.5, 1.5, 11), x_mean=X0 + 0.1, x_std=np.full(11, 0.5))
    weights = flow.get_weights()
    per_made = len(weights) // n_transforms
    out = []
    for k, w in enumerate(weights):
        w = np.array(w)
        if w.ndim == 2:
            w = rng.normal(0.0, 1.0 / np.sqrt(w.shape[0]), size=w.shape)
            if k % per_made >= per_made - 3:
                w *= scale
        else:
            w = rng.normal(0.0, 0.1, size=w.shape)
        out.append(w.astype(np.float32))
    flow.set_weights(out)
    return flow


@pytest.mark.parametrize("box_transform,activation", [("logit", "tanh"), ("probit", "relu"),
                                                      ("plateau", "elu")])
def test_numpy_map_matches_tensorflow(box_transform, activation):
    """FlowMap (float64, one pass per degree block) against ConditionalFlow.push_forward
    (TF, float32): same theta and log-Jacobian to float32 rounding; and the log-Jacobian
    against the flow's own density, log q(theta) = log N(eps) - log |det dtheta/deps|."""
    flow = random_flow(box_transform, activation)
    eps = np.random.default_rng(1).standard_normal((300, 11))
    th_tf, ld_tf = flow.push_forward(eps, X0)
    fm = FlowMap(flow, X0)
    th_np, ld_np = fm.forward(eps)
    width = flow.high - flow.low
    assert np.max(np.abs(th_np - th_tf) / width) < 1e-4
    assert np.max(np.abs(ld_np - ld_tf)) < 1e-3
    assert np.std(ld_np) > 0.1                      # the Jacobian varies: a non-linear map
    inner = np.all((th_np > flow.low + 1e-3 * width) & (th_np < flow.high - 1e-3 * width), axis=1)
    assert inner.sum() > 100
    log_n = -0.5 * np.sum(eps**2, axis=1) - 5.5 * np.log(2 * np.pi)
    lq = flow.log_prob(th_np[inner], X0)
    np.testing.assert_allclose(lq, log_n[inner] - ld_np[inner], atol=2e-3)
    # A row's result does not depend on the other rows of the call (up to the last bit or
    # two: BLAS may pick another kernel for another number of rows on some CPUs).
    a = fm.forward(eps[:7])
    np.testing.assert_allclose(a[1][:3], fm.forward(eps[:3])[1], rtol=0, atol=1e-12)


def test_map_reports_overflow_as_nan_and_minus_inf():
    flow = random_flow()
    fm = FlowMap(flow, X0)
    eps = np.zeros((3, 11))
    eps[1] = np.inf
    eps[2] = 1e300                      # squashed onto the box's corner: zero density
    th, ld = fm.forward(eps)
    assert np.all(np.isfinite(th[0])) and np.isfinite(ld[0])
    assert np.all(np.isnan(th[1])) and ld[1] == -np.inf
    np.testing.assert_array_equal(th[2], flow.high)
    assert ld[2] < -1e100


def test_preconditioning_flow_and_description():
    flow = random_flow()
    assert preconditioning_flow(flow) is flow
    other = random_flow(seed=1)

    class Holder:                       # a Posterior's .flow, holding an ensemble's members
        def __init__(self, members):
            self.flow = type("Ens", (), {"members": members})()

    assert preconditioning_flow(Holder([other, flow])) is other
    with pytest.raises(ValueError, match="ConditionalFlow"):
        preconditioning_flow(object())
    d1, d2 = flow_description(flow), flow_description(other)
    assert d1["box_transform"] == "logit" and d1["weights_sha256"] != d2["weights_sha256"]


def test_settings_need_flow_init_with_flow_preconditioning():
    with pytest.raises(ValueError, match="init='flow'"):
        mcmc.MCMCConfig(init="flow")
    with pytest.raises(ValueError, match="init='flow'"):
        mcmc.MCMCConfig(precondition="flow", init="resample")
    mcmc.MCMCConfig(precondition="flow", init="flow")


@pytest.mark.slow
def test_neutra_samples_the_exact_toy_posterior():
    """Through a random, strongly non-linear map the chain must still target the toy's
    posterior: the Gaussian on (log_mstar, tau_ism, n_dust) and the prior marginals of the
    rest. Same tolerances as test_mcmc's plain-coordinate test (0.2 sd, 15%, 0.1)."""
    toy = LinearToy()
    x, flux = toy_x(seed=0)
    lam = np.diag(1.0 / SIGMA_TOY**2)
    cov = np.linalg.inv(toy.A.T @ lam @ toy.A)
    mean = toy.w0 + cov @ toy.A.T @ lam @ (flux - toy.c)
    flow = random_flow(scale=0.3)
    res = mcmc.run_mcmc(x, toy, n_walkers=30, n_steps=1000, burn_in=200, seed=1,
                        progress=False, precondition=flow)
    assert res.config.precondition == "flow" and res.config.init == "flow"
    w = res.samples_warped
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(w[:, toy.idx].mean(0) - mean), 0.2 * sd)
    np.testing.assert_allclose(w[:, toy.idx].std(0), sd, rtol=0.15)
    np.testing.assert_allclose(np.corrcoef(w[:, toy.idx].T), cov / np.outer(sd, sd), atol=0.1)
    prior = Prior()
    for j in (4, 5, 6, 7, 8):
        width = prior.high[j] - prior.low[j]
        assert abs(w[:, j].mean() - 0.5 * (prior.low[j] + prior.high[j])) < 0.2 * width / np.sqrt(12)
        assert abs(w[:, j].std() / (width / np.sqrt(12)) - 1) < 0.15
    # The reported log densities are those of w (the map's Jacobian taken out).
    lp_direct = mcmc.LogPosterior(*mcmc.observed_flux(x, None, toy), toy, Prior())(w[:50])
    np.testing.assert_allclose(res.log_prob[:50], lp_direct, atol=1e-6)
    assert res.timing["flow_s"] > 0
    assert np.all(np.isfinite(res.start)) and res.start.shape == (30, N_WARPED)


def test_flow_walkers_are_resampled_where_the_posterior_is():
    """Walkers come from flow draws with finite density, weighted towards the posterior; a
    target that is -inf almost everywhere raises."""
    from provabgs_sbi.experimental.neutra import flow_walkers

    flow = random_flow()

    class Narrow:                       # a narrow Gaussian in log_mstar, -inf above 9.75
        def __call__(self, w):
            return np.where(w[:, 0] < 9.75, -0.5 * ((w[:, 0] - 9.5) / 0.1) ** 2, -np.inf)

    target = FlowTarget(Narrow(), flow, X0)
    start, lp = flow_walkers(target, 30, np.random.default_rng(0), n_init=4000)
    w0 = target.to_warped(start)[0][:, 0]
    assert np.all(np.isfinite(lp)) and np.all(w0 < 9.75)
    assert abs(np.median(w0) - 9.5) < 0.1 and len(np.unique(start[:, 0])) == 30
    np.testing.assert_allclose(lp, target(start))

    class Nowhere:
        def __call__(self, w):
            return np.where(np.arange(len(w)) < 3, 0.0, -np.inf)

    with pytest.raises(RuntimeError, match="only 3 of"):
        flow_walkers(FlowTarget(Nowhere(), flow, X0), 30, np.random.default_rng(0), n_init=100)


def test_catalog_run_records_the_flow_and_refuses_another(tmp_path):
    toy = LinearToy()
    flow = random_flow(scale=0.1)
    out = tmp_path / "neutra.h5"
    kw = dict(n_walkers=22, n_steps=30, burn_in=10, progress=False, seed=3)
    cat = toy_catalog()
    res = mcmc.run_mcmc_catalog(cat, [0], toy, out, precondition=flow, **kw)
    assert res["done"] == [0]
    with h5py.File(out, "r") as fh:
        assert "weights_sha256" in fh.attrs["settings"]
        assert fh["row_0"].attrs["status"] == "ok"
    # Same flow resumes; another flow, or none, is other settings.
    assert mcmc.run_mcmc_catalog(cat, [0], toy, out, precondition=flow, **kw)["skipped"] == [0]
    with pytest.raises(ValueError, match="other settings"):
        mcmc.run_mcmc_catalog(cat, [0], toy, out, precondition=random_flow(seed=2), **kw)
    with pytest.raises(ValueError, match="other settings"):
        mcmc.run_mcmc_catalog(cat, [0], toy, out, **kw)

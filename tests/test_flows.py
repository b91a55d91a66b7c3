"""Tests of provabgs_sbi.inference.flows: the conditional MAF on a box.

Tiny flows trained for a few seconds on fixed-seed toy data; tolerances are stated at
each check. Two flows are trained once per module and shared.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from provabgs_sbi.inference.flows import (ChecksumError, ConditionalFlow, FlowConfig,
                                           TrainingInterrupted)
from provabgs_sbi.inference.flows.checkpoints import resume_key

LOW_2D = np.array([0.0, -3.0])
HIGH_2D = np.array([2.0, 5.0])


def _gaussian_1d(n: int, seed: int):
    """theta | x ~ N(0.5 x, 0.1^2) on the box [-1, 1], x ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    theta = np.clip(0.5 * x + 0.1 * rng.standard_normal((n, 1)), -1.0, 1.0)
    return theta, x


def _box_2d(n: int, seed: int):
    """theta ~ U(box), x = scaled theta + noise: a 2-d posterior that touches the faces."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(LOW_2D, HIGH_2D, size=(n, 2))
    x = (theta - LOW_2D) / (HIGH_2D - LOW_2D) + 0.15 * rng.standard_normal((n, 2))
    return theta, x


@pytest.fixture(scope="module")
def flow_1d():
    theta, x = _gaussian_1d(3000, seed=0)
    cfg = FlowConfig.preset("tiny", max_epochs=60, patience=10, seed=0)
    return ConditionalFlow.fit(theta, x, -1.0, 1.0, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=25, seed=1)
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d_probit():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=25, seed=1, box_transform="probit")
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d_plateau():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=25, seed=1, box_transform="plateau")
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d_spline():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=15, seed=1, transform="spline", spline_bins=6)
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d_coupling():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=25, seed=1, family="coupling")
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


@pytest.fixture(scope="module")
def flow_2d_coupling_spline():
    theta, x = _box_2d(3000, seed=1)
    cfg = FlowConfig.preset("tiny", max_epochs=15, seed=1, family="coupling", transform="spline",
                            spline_bins=6)
    return ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, progress=False)


def _tf_unbound(u, kind):
    """The box maps (flows/box_maps.py) written again in TensorFlow (for the autodiff checks)."""
    import tensorflow as tf

    if kind == "logit":
        return tf.math.log(u) - tf.math.log1p(-u)
    if kind == "probit":
        return tf.math.ndtri(u)
    c = 4.0                                      # box_maps.PLATEAU_HALF_WIDTH
    root = math.sqrt(2 * math.pi)
    mass = root / (2 * c + root)                 # mass of each Gaussian shoulder x 2
    lower = tf.math.ndtri(tf.minimum(u, 0.5 * mass) / mass) - c
    upper = c - tf.math.ndtri(tf.minimum(1.0 - u, 0.5 * mass) / mass)
    return tf.where(u < 0.5 * mass, lower,
                    tf.where(u > 1.0 - 0.5 * mass, upper, (u - 0.5) * (2 * c + root)))


# ------------------------------------------------------------------ config
def test_config_presets_and_validation():
    with pytest.raises(ValueError, match="box_transform"):
        FlowConfig(box_transform="tanh")
    assert FlowConfig.from_dict({}).box_transform == "logit"     # flows saved before it
    assert FlowConfig.from_dict({}).transform == "affine"
    assert FlowConfig.from_dict({}).family == "maf"
    with pytest.raises(ValueError, match="family must be one of"):
        FlowConfig(family="iaf")
    with pytest.raises(ValueError, match="n_transforms >= 2"):
        FlowConfig(family="coupling", n_transforms=1)
    for name in FlowConfig.PRESETS:
        assert isinstance(FlowConfig.preset(name), FlowConfig)
    paper = FlowConfig.preset("sedflow-paper")
    assert (paper.n_transforms, paper.hidden_units, paper.activation,
            paper.learning_rate, paper.batch_size) == (15, (500, 500), "tanh", 5e-4, 50)
    assert FlowConfig(hidden_units=[32, 32]).hidden_units == (32, 32)
    cfg = FlowConfig()
    assert FlowConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3
    bad = [dict(n_transforms=0), dict(hidden_units=()), dict(hidden_units=(0, 4)),
           dict(activation="swishy"), dict(learning_rate=0.0), dict(learning_rate=float("nan")),
           dict(batch_size=0), dict(patience=0), dict(validation_fraction=0.0),
           dict(validation_fraction=0.7), dict(clip_norm=-1.0), dict(seed=-1),
           dict(checkpoint_every=0), dict(max_epochs=2.5), dict(transform="realnvp"),
           dict(spline_bins=1), dict(spline_bound=0.0), dict(spline_bound=float("inf")),
           dict(weight_decay=-1e-3), dict(weight_decay=float("nan"))]
    for kwargs in bad:
        with pytest.raises(ValueError):
            FlowConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown preset"):
        FlowConfig.preset("huge")
    assert FlowConfig.parse_overrides(["lr_patience=3", "transform=spline", "weight_decay=0.3",
                                       "hidden_units=[64, 64]"]) == dict(
        lr_patience=3, transform="spline", weight_decay=0.3, hidden_units=[64, 64])
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        FlowConfig.parse_overrides(["lr_patience"])
    with pytest.raises(ValueError, match="unknown FlowConfig field"):
        FlowConfig.parse_overrides(["lr_patiense=3"])


# ------------------------------------------------------------------ support
def test_samples_inside_box_even_far_from_training_x(flow_2d):
    x_obs = np.array([[0.5, 0.5], [-50.0, 80.0], [1e4, -1e4], [0.0, 1.0]])
    s = flow_2d.sample(x_obs, 4000, seed=2)
    assert s.shape == (4, 4000, 2)
    assert np.all(np.isfinite(s))
    assert np.all(s >= LOW_2D) and np.all(s <= HIGH_2D)
    # A single observation as a 1-d array gives (1, n, d).
    assert flow_2d.sample(np.array([0.5, 0.5]), 10, seed=0).shape == (1, 10, 2)


def test_untrained_relu_flow_stays_in_box_for_extreme_x():
    cfg = FlowConfig.preset("default", n_transforms=2, hidden_units=(32, 32), seed=4)
    flow = ConditionalFlow(cfg, low=[-1, 0, 10], high=[1, 1e-3, 11], y_mean=np.zeros(3),
                           y_std=np.ones(3), x_mean=np.zeros(2), x_std=np.ones(2))
    s = flow.sample(np.array([[1e3, -1e3], [0.0, 0.0]]), 1000, seed=1)
    assert np.all(s >= flow.low) and np.all(s <= flow.high)


def test_log_prob_outside_box_and_on_boundary(flow_2d):
    x = np.array([0.5, 0.5])
    theta = np.array([[1.0, 1.0], [-0.1, 1.0], [1.0, 5.01], [0.0, 1.0], [2.0, 5.0]])
    lp = flow_2d.log_prob(theta, x)
    assert lp.shape == (5,)
    assert np.isfinite(lp[0])
    assert lp[1] == -np.inf and lp[2] == -np.inf
    assert np.all(np.isfinite(lp[3:]))   # exactly on the faces: inside the closed box


# -------------------------------------------------------------- densities
def test_log_prob_integrates_to_one_1d(flow_1d):
    grid = np.linspace(-1.0, 1.0, 4001)[:, None]
    for xv in (-0.8, 0.0, 0.6):
        mass = np.trapezoid(np.exp(flow_1d.log_prob(grid, np.array([xv]))), grid[:, 0])
        assert abs(mass - 1.0) < 2e-3, (xv, mass)


def test_log_prob_integrates_to_one_2d(flow_2d):
    # Midpoint rule on a 300 x 300 grid of the (non-unit) box: checks the Jacobian of
    # the box width and of the standardisation as well as the flow's.
    n = 300
    e0 = np.linspace(LOW_2D[0], HIGH_2D[0], n + 1)
    e1 = np.linspace(LOW_2D[1], HIGH_2D[1], n + 1)
    c0, c1 = 0.5 * (e0[1:] + e0[:-1]), 0.5 * (e1[1:] + e1[:-1])
    g0, g1 = np.meshgrid(c0, c1, indexing="ij")
    theta = np.stack([g0.ravel(), g1.ravel()], axis=1)
    cell = (e0[1] - e0[0]) * (e1[1] - e1[0])
    for x in ([0.3, 0.7], [0.9, 0.1]):
        mass = np.exp(flow_2d.log_prob(theta, np.array(x))).sum() * cell
        assert abs(mass - 1.0) < 1e-2, (x, mass)


@pytest.mark.parametrize("which", ["flow_2d_probit", "flow_2d_plateau", "flow_2d_spline",
                                   "flow_2d_coupling", "flow_2d_coupling_spline"])
def test_flow_density_integrates_to_one_and_matches_autodiff(which, request):
    """The probit and plateau box maps, spline blocks (logit map) and coupling flows
    (affine and spline): mass 1 on a 300 x 300 midpoint grid (1e-2), and log_prob equal to
    base density + log|det| of the autodiff Jacobian of theta -> noise (2e-3)."""
    import tensorflow as tf

    f = request.getfixturevalue(which)
    n = 300
    e0 = np.linspace(LOW_2D[0], HIGH_2D[0], n + 1)
    e1 = np.linspace(LOW_2D[1], HIGH_2D[1], n + 1)
    g0, g1 = np.meshgrid(0.5 * (e0[1:] + e0[:-1]), 0.5 * (e1[1:] + e1[:-1]), indexing="ij")
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1)
    cell = (e0[1] - e0[0]) * (e1[1] - e1[0])
    mass = np.exp(f.log_prob(grid, np.array([0.3, 0.7]))).sum() * cell
    assert abs(mass - 1.0) < 1e-2, mass

    rng = np.random.default_rng(5)
    theta = rng.uniform(LOW_2D + 0.05, HIGH_2D - 0.05, size=(64, 2))
    x = rng.uniform(0.0, 1.0, size=(64, 2))
    c = tf.constant(((x - f._x_mean) / f._x_std).astype(np.float32))
    th = tf.constant(theta)
    with tf.GradientTape() as tape:
        tape.watch(th)
        u = (th - f.low) / (f.high - f.low)
        z = tf.cast((_tf_unbound(u, f.config.box_transform) - f._y_mean) / f._y_std,
                    tf.float32)
        eps, _ = f._net.inverse(z, c)      # the flow's map only, not its log-det
        eps64 = tf.cast(eps, tf.float64)
    jac = tape.batch_jacobian(eps64, th).numpy()
    _, logabsdet = np.linalg.slogdet(jac)
    e = eps.numpy().astype(np.float64)
    lp_jac = -0.5 * np.sum(e ** 2, axis=1) - math.log(2 * math.pi) + logabsdet
    np.testing.assert_allclose(f.log_prob(theta, x), lp_jac, rtol=0, atol=2e-3)
    s = f.sample(x[:3], 2000, seed=0)
    assert np.all((s >= LOW_2D) & (s <= HIGH_2D))


def test_probit_map_fits_a_uniform_that_the_logit_map_cannot():
    """theta ~ U(0, 1) whatever x: its probit image is exactly N(0, 1), its logit image is
    logistic. In one dimension every block is affine in y, so the logit flow can at best be
    the logistic's closest Gaussian, KL = H(Gaussian of variance pi^2 / 3) - H(logistic)
    = 0.5 ln(2 pi e pi^2 / 3) - 2 = 0.0145 nats. The KL of each trained flow from the
    uniform, -integral of log q over the unit interval (midpoint rule, no sampling noise),
    must be < 0.005 for the probit map and > 0.01 for the logit map."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.0, 1.0, size=(6000, 1))
    x = rng.standard_normal((6000, 1))
    grid = ((np.arange(20000) + 0.5) / 20000)[:, None]
    kl = {}
    for kind in ("probit", "logit"):
        cfg = FlowConfig.preset("tiny", max_epochs=30, patience=5, seed=0, box_transform=kind)
        flow = ConditionalFlow.fit(theta, x, 0.0, 1.0, config=cfg, progress=False)
        kl[kind] = float(np.mean([-flow.log_prob(grid, np.array([xv])).mean()
                                  for xv in (-1.0, 0.0, 1.0)]))
    assert 0 <= kl["probit"] < 0.005, kl
    assert kl["logit"] > 0.01, kl


@pytest.mark.parametrize("which", ["flow_2d", "flow_2d_probit", "flow_2d_plateau",
                                   "flow_2d_spline", "flow_2d_coupling",
                                   "flow_2d_coupling_spline"])
def test_sample_and_log_prob_matches_log_prob_inside_the_box(which, request):
    """Away from the faces the density at the drawn point equals log_prob of the returned
    theta (float32 round trip: 2e-3)."""
    flow = request.getfixturevalue(which)
    theta, log_q = flow.sample_and_log_prob(np.array([[0.3, 0.7], [0.9, 0.1]]), 3000, seed=4)
    assert theta.shape == (2, 3000, 2) and log_q.shape == (2, 3000)
    s = flow.sample(np.array([[0.3, 0.7], [0.9, 0.1]]), 3000, seed=4)
    np.testing.assert_allclose(theta, s, rtol=0, atol=1e-6)     # same draws as sample()
    for k, xv in enumerate(([0.3, 0.7], [0.9, 0.1])):
        u = (theta[k] - LOW_2D) / (HIGH_2D - LOW_2D)
        inner = np.all((u > 1e-3) & (u < 1 - 1e-3), axis=1)
        assert inner.sum() > 2500
        np.testing.assert_allclose(log_q[k][inner], flow.log_prob(theta[k][inner], np.array(xv)),
                                   rtol=0, atol=2e-3)


def test_spline_blocks_fit_a_bimodal_density_that_affine_blocks_cannot():
    """theta = +-0.5 + N(0, 0.08^2) with equal weights, whatever x. One dimension of affine
    blocks is a monotone affine image of a Gaussian, hence unimodal; spline blocks can
    split the mass. Held-out mean log q against the exact mean log density (0.418): the
    spline flow within 0.1 of it, the affine flow more than 0.5 below."""
    from scipy.stats import norm

    def draw(n, seed):
        rng = np.random.default_rng(seed)
        theta = np.where(rng.random(n) < 0.5, -0.5, 0.5) + 0.08 * rng.standard_normal(n)
        return theta[:, None], rng.standard_normal((n, 1))

    theta, x = draw(5000, 0)
    t_test, x_test = draw(4000, 1)
    exact = np.log(0.5 * norm.pdf(t_test[:, 0], -0.5, 0.08)
                   + 0.5 * norm.pdf(t_test[:, 0], 0.5, 0.08)).mean()
    score = {}
    for kind in ("affine", "spline"):
        cfg = FlowConfig.preset("tiny", max_epochs=40, patience=10, seed=0, transform=kind)
        flow = ConditionalFlow.fit(theta, x, -1.0, 1.0, config=cfg, progress=False)
        score[kind] = float(flow.log_prob(t_test, x_test).mean())
    assert abs(score["spline"] - exact) < 0.1, (score, exact)
    assert score["affine"] < exact - 0.5, (score, exact)


def test_log_prob_matches_independent_computations(flow_2d):
    """Compare with (a) TFP's TransformedDistribution over the same bijectors and
    (b) base density + log|det| of the autodiff Jacobian of the whole map theta -> noise."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfb, tfd = tfp.bijectors, tfp.distributions
    rng = np.random.default_rng(5)
    theta = rng.uniform(LOW_2D + 0.05, HIGH_2D - 0.05, size=(64, 2))
    x = rng.uniform(0.0, 1.0, size=(64, 2))
    ours = flow_2d.log_prob(theta, x)

    f = flow_2d
    low, width = f.low.astype(np.float32), (f.high - f.low).astype(np.float32)
    y_mean, y_std = f._y_mean.astype(np.float32), f._y_std.astype(np.float32)
    c = tf.constant(((x - f._x_mean) / f._x_std).astype(np.float32))

    def to_z(th):
        u = (th - low) / width
        return (tf.math.log(u) - tf.math.log1p(-u) - y_mean) / y_std

    # (a) TFP's own TransformedDistribution with conditional kwargs by bijector name.
    chain = tfb.Chain(list(reversed(f._bijectors)))
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(loc=tf.zeros(2)), chain)
    kwargs = {b.name: {"conditional_input": c} for b in f._bijectors if b.name.startswith("maf")}
    th = tf.constant(theta.astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(th)
        z = to_z(th)
        eps = chain.inverse(z, **kwargs)
    lp_flow = dist.log_prob(z, bijector_kwargs=kwargs).numpy()
    u = (theta - f.low) / (f.high - f.low)
    box_logdet = -np.sum(np.log(u * (1 - u)) + np.log(f.high - f.low) + np.log(f._y_std), axis=1)
    np.testing.assert_allclose(ours, lp_flow + box_logdet, rtol=0, atol=2e-4)

    # (b) autodiff Jacobian d noise / d theta of the full map, no log-det formulas used.
    jac = tape.batch_jacobian(eps, th).numpy().astype(np.float64)
    _, logabsdet = np.linalg.slogdet(jac)
    e = eps.numpy().astype(np.float64)
    lp_jac = -0.5 * np.sum(e ** 2, axis=1) - math.log(2 * math.pi) + logabsdet
    np.testing.assert_allclose(ours, lp_jac, rtol=0, atol=2e-3)


def test_learns_conditional_gaussian(flow_1d):
    """theta | x ~ N(0.5 x, 0.1): sample means within 0.03 and stds within 0.02."""
    xs = np.array([[-0.8], [-0.3], [0.0], [0.4], [0.8]])
    s = flow_1d.sample(xs, 5000, seed=3)[..., 0]
    np.testing.assert_allclose(s.mean(axis=1), 0.5 * xs[:, 0], atol=0.03)
    np.testing.assert_allclose(s.std(axis=1), 0.1, atol=0.02)
    h = flow_1d.history
    assert len(h) >= 5 and h[-1]["epoch"] == len(h)
    assert flow_1d.best_val_loss == min(e["val_loss"] for e in h)
    # Training reduced the loss; the optimum (entropy of N(0, 0.1^2)) is -0.884 nats.
    assert h[0]["val_loss"] > flow_1d.best_val_loss > -0.95


# --------------------------------------------------------- coupling flows
def _untrained(config, d_theta=11, d_x=11):
    return ConditionalFlow(config, low=np.zeros(d_theta), high=np.ones(d_theta),
                           y_mean=np.zeros(d_theta), y_std=np.ones(d_theta),
                           x_mean=np.zeros(d_x), x_std=np.ones(d_x))


@pytest.mark.parametrize("transform,hidden,activation", [
    ("affine", (32, 32), "relu"), ("spline", (24,), "tanh"), ("affine", (16, 16, 16), "gelu")])
def test_sequential_sampler_is_tfps_maf_forward(transform, hidden, activation):
    """MAF.forward (each hidden unit once) equals TFP's d-pass forward map to float32
    rounding, for random weights of realistic size (d = 11), one to three hidden layers."""
    import tensorflow as tf

    cfg = FlowConfig(n_transforms=3, hidden_units=hidden, activation=activation,
                     transform=transform)
    flow = _untrained(cfg)
    rng = np.random.default_rng(11)
    # weights large enough that every dimension depends on the earlier ones
    flow.set_weights([(0.3 * rng.standard_normal(w.shape)).astype(np.float32)
                      for w in flow.get_weights()])
    eps = tf.constant(rng.standard_normal((500, 11)).astype(np.float32))
    c = tf.constant(rng.standard_normal((500, 11)).astype(np.float32))
    fast = flow._net.forward(eps, c).numpy()
    ref = flow._net.forward_reference(eps, c).numpy()
    assert np.all(np.isfinite(ref)) and np.std(ref - eps.numpy()) > 0.1
    # float32 sums in another order: equal to ~1e-5, a few ill-conditioned rows to ~1e-3
    diff = np.abs(fast - ref)
    assert np.quantile(diff, 0.99) < 1e-4 and diff.max() < 5e-3


def test_ready_steps_refuse_masks_that_are_not_autoregressive():
    from provabgs_sbi.inference.flows.sequential import ready_steps

    d = 3
    first = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])     # unit j needs inputs up to j
    out = np.ones((3, d))
    out_ok = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])    # dim k uses units ready by k
    assert [s.tolist() for s in ready_steps([first, out_ok], d, 1)] == [[1, 2, 0]]
    with pytest.raises(ValueError, match="not autoregressive"):
        ready_steps([first, out], d, 1)


def test_coupling_blocks_alternate_halves_and_are_seeded():
    """d = 11: passive heads of 5, 6, 5, 6, ...; within each pair of blocks the passive sets
    are complementary (every coordinate mapped once per pair), and successive pairs split
    differently. Same seed, same weights and permutations; another seed, other ones."""
    cfg = FlowConfig.preset("default", family="coupling", n_transforms=6, seed=2)
    flow = _untrained(cfg)
    net = flow._net
    assert net.passive == [5, 6, 5, 6, 5, 6]
    order = np.arange(11)                       # original coordinate at each position
    passive_sets = []
    for k, m in enumerate(net.passive):
        passive_sets.append(frozenset(order[:m].tolist()))
        if k < len(flow._permutations):
            order = order[flow._permutations[k]]
    for j in range(3):
        assert passive_sets[2 * j] | passive_sets[2 * j + 1] == frozenset(range(11))
        assert not passive_sets[2 * j] & passive_sets[2 * j + 1]
    assert len({passive_sets[0], passive_sets[2], passive_sets[4]}) == 3
    # First layer: passive head + x; last: (d - m) x 2 shift/scale outputs.
    assert [tuple(net.layers[k][0][0].shape) for k in (0, 1)] == [(16, 128), (17, 128)]
    assert tuple(net.layers[0][-1][0].shape) == (128, 12)
    assert all(m is None for m in flow._masks)

    again = _untrained(cfg)
    assert all(np.array_equal(a, b) for a, b in zip(flow.get_weights(), again.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(flow._permutations, again._permutations))
    other = _untrained(dataclasses.replace(cfg, seed=3))
    assert not np.array_equal(flow.get_weights()[0], other.get_weights()[0])
    # The seeded start is close to the identity map (output layers 100x smaller).
    eps = np.random.default_rng(0).standard_normal((200, 11))
    theta, _ = flow.push_forward(eps, np.zeros(11))
    z = np.log(theta) - np.log1p(-theta)        # logit box map, y_mean 0, y_std 1
    order = np.arange(11)
    for p in flow._permutations:
        order = order[p]
    np.testing.assert_allclose(z, eps[:, order], atol=0.2)


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_coupling_inverse_and_log_det_under_xla(transform):
    """An 11-d coupling flow with perturbed (non-identity) weights, its forward and inverse
    XLA-compiled as in production: inverse(forward(eps)) = eps (1e-5 affine, 5e-5 spline,
    float32), and the one-pass forward log-det equals minus the inverse's (1e-4 nats)."""
    import tensorflow as tf

    cfg = FlowConfig.preset("default", family="coupling", transform=transform,
                            hidden_units=(32, 32), n_transforms=2, seed=5)
    flow = _untrained(cfg)
    rng = np.random.default_rng(0)
    flow.set_weights([w + 0.05 * rng.standard_normal(w.shape) for w in flow.get_weights()])
    eps = rng.standard_normal((300, 11)).astype(np.float32)
    c = rng.standard_normal((300, 11)).astype(np.float32)
    out = flow._run_compiled("forward_log_det", eps, c, 16384)
    back, ildj = tf.function(flow._net.inverse, jit_compile=True)(tf.constant(out[:, :-1]),
                                                                   tf.constant(c))
    assert np.abs(out[:, :-1] - eps).max() > 0.05             # not the identity
    tol = 1e-5 if transform == "affine" else 5e-5
    np.testing.assert_allclose(back.numpy(), eps, rtol=0, atol=tol)
    np.testing.assert_allclose(out[:, -1], -ildj.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("which", ["flow_2d_coupling", "flow_2d_coupling_spline"])
def test_coupling_round_trip_and_save_load(which, request, tmp_path):
    """Trained 2-d coupling flows: inverse of forward is the identity (1e-5), log_prob of
    their own samples is finite, and a saved and loaded flow gives the same samples and
    densities bit for bit (its flow.json records the family)."""
    import tensorflow as tf

    flow = request.getfixturevalue(which)
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((500, 2)).astype(np.float32)
    c = rng.standard_normal((500, 2)).astype(np.float32)
    z = flow._net.forward(tf.constant(eps), tf.constant(c))
    back, _ = flow._net.inverse(z, tf.constant(c))
    np.testing.assert_allclose(back.numpy(), eps, rtol=0, atol=1e-5)

    x_obs = np.array([[0.2, 0.4], [0.8, 0.5]])
    s = flow.sample(x_obs, 500, seed=11)
    lp = flow.log_prob(s.reshape(-1, 2), np.repeat(x_obs, 500, axis=0))
    assert np.all(np.isfinite(lp))

    path = flow.save(tmp_path / "flow")
    assert json.loads((path / "flow.json").read_text())["config"]["family"] == "coupling"
    loaded = ConditionalFlow.load(path)
    assert loaded.config == flow.config and "family='coupling'" in repr(loaded)
    np.testing.assert_array_equal(loaded.sample(x_obs, 500, seed=11), s)
    theta = rng.uniform(LOW_2D, HIGH_2D, size=(300, 2))
    x = rng.uniform(0, 1, size=(300, 2))
    np.testing.assert_array_equal(loaded.log_prob(theta, x), flow.log_prob(theta, x))


def _correlated_gaussian_2d(n: int, seed: int):
    """theta | x ~ N(mu(x), Sigma), mu = (0.5 x, -0.4 x), unit-free Sigma with
    standard deviations 0.1 and 0.08 and correlation 0.8, on the box [-1.5, 1.5]^2
    (clipping: < 1e-30 of the mass); x ~ U(-1, 1). Returns theta, x and log p(theta | x)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 1))
    sd, rho = np.array([0.1, 0.08]), 0.8
    cov = np.outer(sd, sd) * np.array([[1.0, rho], [rho, 1.0]])
    mu = x * np.array([0.5, -0.4])
    theta = mu + rng.multivariate_normal(np.zeros(2), cov, size=n)
    return theta, x, multivariate_normal(np.zeros(2), cov).logpdf(theta - mu)


@pytest.mark.parametrize("transform", ["affine", "spline"])
def test_coupling_flow_learns_a_correlated_conditional_gaussian(transform):
    """A 'tiny' coupling flow (2 blocks of 2 x 16) on 4000 draws of a correlated 2-d
    Gaussian whose mean moves with x: held-out mean log q within 0.1 nats of the mean
    exact log density (2.51 nats; seen: 0.03 affine, 0.03 spline), sample means within
    0.04 and correlations within 0.12 (sampling noise of 4000 draws: 0.002 and 0.01)."""
    theta, x, _ = _correlated_gaussian_2d(4000, seed=0)
    t_test, x_test, lp_true = _correlated_gaussian_2d(2000, seed=1)
    cfg = FlowConfig.preset("tiny", family="coupling", transform=transform, batch_size=128,
                            max_epochs=40, patience=8, seed=0)
    flow = ConditionalFlow.fit(theta, x, -1.5, 1.5, config=cfg, progress=False)
    gap = float(lp_true.mean() - flow.log_prob(t_test, x_test).mean())
    assert -0.05 < gap < 0.1, (gap, lp_true.mean())
    s = flow.sample(np.array([[-0.6], [0.5]]), 4000, seed=2)
    np.testing.assert_allclose(s.mean(axis=1), [[-0.3, 0.24], [0.25, -0.2]], atol=0.04)
    for k in range(2):
        assert abs(np.corrcoef(s[k].T)[0, 1] - 0.8) < 0.12


def test_warm_start_keeps_the_family(flow_2d):
    """A MAF cannot warm-start a coupling flow (the weights mean other things), and the
    family is part of the resume key."""
    theta, x = _box_2d(300, seed=2)
    cfg = dataclasses.replace(flow_2d.config, family="coupling", max_epochs=1)
    with pytest.raises(ValueError, match="differs in family"):
        ConditionalFlow.fit(theta, x, LOW_2D, HIGH_2D, config=cfg, init=flow_2d, progress=False)
    coupling = ConditionalFlow(cfg, LOW_2D, HIGH_2D, flow_2d._y_mean, flow_2d._y_std,
                               flow_2d._x_mean, flow_2d._x_std)
    coupling.data_hash = flow_2d.data_hash
    maf = ConditionalFlow(dataclasses.replace(cfg, family="maf"), LOW_2D, HIGH_2D,
                          flow_2d._y_mean, flow_2d._y_std, flow_2d._x_mean, flow_2d._x_std)
    assert resume_key(coupling) != resume_key(maf)


# ------------------------------------------------------------ persistence
def test_save_load_round_trip(flow_2d, tmp_path):
    path = flow_2d.save(tmp_path / "flow")
    loaded = ConditionalFlow.load(path)
    rng = np.random.default_rng(7)
    theta = rng.uniform(LOW_2D, HIGH_2D, size=(300, 2))
    x = rng.uniform(0, 1, size=(300, 2))
    np.testing.assert_array_equal(loaded.log_prob(theta, x), flow_2d.log_prob(theta, x))
    x_obs = np.array([[0.2, 0.4], [0.8, 0.5]])
    np.testing.assert_array_equal(loaded.sample(x_obs, 500, seed=11),
                                  flow_2d.sample(x_obs, 500, seed=11))
    assert loaded.config == flow_2d.config
    assert loaded.history == flow_2d.history
    assert not np.array_equal(loaded.sample(x_obs, 500, seed=12),
                              flow_2d.sample(x_obs, 500, seed=11))


def test_load_refuses_changed_files(flow_2d, tmp_path):
    path = flow_2d.save(tmp_path / "flow")
    meta = json.loads((path / "flow.json").read_text())
    meta["x_mean"][0] += 0.1
    (path / "flow.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match="flow.json"):
        ConditionalFlow.load(path)

    path = flow_2d.save(tmp_path / "flow2")
    raw = bytearray((path / "weights.npz").read_bytes())
    raw[-200] ^= 0xFF
    (path / "weights.npz").write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="weights.npz"):
        ConditionalFlow.load(path)
    with pytest.raises(FileNotFoundError):
        ConditionalFlow.load(tmp_path / "nothing_here")


# ---------------------------------------------------------- checkpointing
@pytest.mark.slow
def test_interrupted_training_resumes_to_same_result(tmp_path):
    theta, x = _gaussian_1d(1500, seed=3)
    # XLA on, as in production training (the "tiny" preset turns it off).
    cfg = FlowConfig.preset("tiny", max_epochs=12, patience=50, checkpoint_every=2, seed=3,
                            jit_compile=True)
    straight = ConditionalFlow.fit(theta, x, -1, 1, config=cfg, progress=False)

    def crash_at_5(epoch, entry):
        if epoch == 5:
            raise TrainingInterrupted("simulated crash")

    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingInterrupted):
        ConditionalFlow.fit(theta, x, -1, 1, config=cfg, checkpoint_dir=ckpt,
                            progress=False, callback=crash_at_5)
    assert (ckpt / "checkpoint.npz").exists()
    assert not list(ckpt.glob("*.part"))

    seen = []
    resumed = ConditionalFlow.fit(theta, x, -1, 1, config=cfg, checkpoint_dir=ckpt,
                                  progress=False, callback=lambda e, _: seen.append(e))
    assert seen[0] == 5, "should resume after the last checkpoint (epoch 4)"
    assert [h["epoch"] for h in resumed.history] == list(range(1, 13))
    # Same computation on the same CPU: equal to float32 round-off.
    assert resumed.best_val_loss == pytest.approx(straight.best_val_loss, abs=1e-5)
    np.testing.assert_allclose([h["val_loss"] for h in resumed.history],
                               [h["val_loss"] for h in straight.history], atol=1e-5)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)

    # A finished checkpoint returns at once; more epochs continue from it.
    again = ConditionalFlow.fit(theta, x, -1, 1, config=cfg, checkpoint_dir=ckpt, progress=False,
                                callback=lambda e, _: pytest.fail("should not train"))
    assert again.best_val_loss == resumed.best_val_loss

    # Other data or another config: refused.
    with pytest.raises(ValueError, match="other training data"):
        ConditionalFlow.fit(theta[:-1], x[:-1], -1, 1, config=cfg, checkpoint_dir=ckpt,
                            progress=False)
    with pytest.raises(ValueError, match="another FlowConfig"):
        ConditionalFlow.fit(theta, x, -1, 1, config=dataclasses.replace(cfg, learning_rate=5e-3),
                            checkpoint_dir=ckpt, progress=False)


def test_warm_start_begins_at_the_given_flow_and_resumes_only_with_it(flow_1d, tmp_path):
    """init=flow: with a vanishing step the result is that flow (log q to 1e-5), whatever
    the new seed; its hash is kept through save/load and in the resume key; a checkpoint
    started from one flow is not resumed from another; another box or width is refused."""
    theta, x = _gaussian_1d(1500, seed=4)
    still = dataclasses.replace(flow_1d.config, max_epochs=1, learning_rate=1e-10,
                                min_learning_rate=1e-10, seed=9)
    same = ConditionalFlow.fit(theta, x, -1.0, 1.0, config=still, init=flow_1d, progress=False)
    probe = theta[:200], x[:200]
    np.testing.assert_allclose(same.log_prob(*probe), flow_1d.log_prob(*probe), atol=1e-5)
    assert same.init_weights_sha256 is not None
    assert ConditionalFlow.load(same.save(tmp_path / "same")).init_weights_sha256 == \
        same.init_weights_sha256

    tune = dataclasses.replace(flow_1d.config, max_epochs=2, checkpoint_every=1)
    ckpt = tmp_path / "ckpt"
    ConditionalFlow.fit(theta, x, -1.0, 1.0, config=tune, init=flow_1d, checkpoint_dir=ckpt,
                        progress=False)
    with pytest.raises(ValueError, match="another FlowConfig"):
        ConditionalFlow.fit(theta, x, -1.0, 1.0, config=tune, init=same, checkpoint_dir=ckpt,
                            progress=False)
    with pytest.raises(ValueError, match="box"):
        ConditionalFlow.fit(theta, x, -1.0, 1.5, config=tune, init=flow_1d, progress=False)
    wider = dataclasses.replace(tune, hidden_units=(32,))
    with pytest.raises(ValueError, match="differs in hidden_units"):
        ConditionalFlow.fit(theta, x, -1.0, 1.0, config=wider, init=flow_1d, progress=False)


def test_warm_start_widened_inputs_starts_as_the_given_flow(flow_2d):
    """init_inputs: a flow on (x, new columns) starts as init on x, whatever the new columns
    hold and however the data shift the standardisation; a bad map is refused."""
    theta, x = _box_2d(1500, seed=5)
    rng = np.random.default_rng(5)
    # the old columns swapped, shifted in mean and spread, and two new columns
    x_wide = np.column_stack([x[:, 1], x[:, 0] * 3.0 + 2.0,
                              rng.integers(0, 2, len(x)), rng.normal(4.0, 2.0, len(x))])
    x_old_units = np.column_stack([x_wide[:, 1], x_wide[:, 0]])
    still = dataclasses.replace(flow_2d.config, max_epochs=1, learning_rate=1e-10,
                                min_learning_rate=1e-10)
    wide = ConditionalFlow.fit(theta, x_wide, LOW_2D, HIGH_2D, config=still, init=flow_2d,
                               init_inputs=[1, 0, -1, -1], progress=False)
    assert wide.d_x == 4 and wide.init_weights_sha256 is not None
    probe = slice(0, 300)
    np.testing.assert_allclose(wide.log_prob(theta[probe], x_wide[probe]),
                               flow_2d.log_prob(theta[probe], x_old_units[probe]),
                               atol=2e-4)
    for bad in ([0, 0, -1, -1], [1, 0, -1], [1, 2, -1, -1]):
        with pytest.raises(ValueError, match="init_inputs"):
            ConditionalFlow.fit(theta, x_wide, LOW_2D, HIGH_2D, config=still, init=flow_2d,
                                init_inputs=bad, progress=False)


def test_weight_decay_shrinks_kernels_and_keeps_masks():
    theta, x = _gaussian_1d(400, seed=6)
    cfg = FlowConfig.preset("tiny", max_epochs=15, patience=15, seed=6)
    plain = ConditionalFlow.fit(theta, x, -1, 1, config=cfg, progress=False)
    decayed = ConditionalFlow.fit(theta, x, -1, 1, progress=False,
                                  config=dataclasses.replace(cfg, weight_decay=3.0))
    w0, w1 = plain.get_weights(), decayed.get_weights()
    kernel_norm = [np.linalg.norm(np.concatenate([w.ravel() for w in ws if w.ndim == 2]))
                   for ws in (w0, w1)]
    # 15 epochs x 6 steps at lr 1e-2 and decay 3: a shrink factor of up to
    # (1 - 0.03)^90 ~ 0.06 per kernel, which the gradients only partly undo.
    assert kernel_norm[1] < 0.7 * kernel_norm[0]
    # The MADE masks still hold: masked entries stay exactly zero.
    for w, m in zip(w1, decayed._masks):
        if m is not None:
            assert np.all(w[m == 0] == 0)
    # A decay of 0 is plain Adam, bit for bit; a checkpoint of one cannot resume the other.
    zero = ConditionalFlow.fit(theta, x, -1, 1, progress=False,
                               config=dataclasses.replace(cfg, weight_decay=0.0))
    assert all(np.array_equal(a, b) for a, b in zip(w0, zero.get_weights()))
    assert resume_key(decayed) != resume_key(plain)


def test_step_size_schedule_follows_the_validation_loss():
    # Few simulations and a high step: the validation loss stalls within a few epochs.
    theta, x = _gaussian_1d(400, seed=5)
    cfg = FlowConfig.preset("tiny", max_epochs=40, patience=40, lr_patience=2, lr_factor=0.5,
                            min_learning_rate=2e-3, seed=5)
    flow = ConditionalFlow.fit(theta, x, -1, 1, config=cfg, progress=False)
    lrs = [h["learning_rate"] for h in flow.history]
    assert lrs[0] == cfg.learning_rate
    assert min(lrs) == pytest.approx(cfg.min_learning_rate)
    best = math.inf
    since = 0
    for prev, h in zip(flow.history, flow.history[1:]):
        # The step halves exactly after lr_patience epochs without a better val loss.
        if prev["val_loss"] < best:
            best, since = prev["val_loss"], 0
        else:
            since += 1
        if h["learning_rate"] != prev["learning_rate"]:
            assert since == cfg.lr_patience
            assert h["learning_rate"] == pytest.approx(
                max(prev["learning_rate"] * 0.5, cfg.min_learning_rate))
            since = 0
    with pytest.raises(ValueError, match="lr_factor"):
        FlowConfig.preset("tiny", lr_factor=1.0)
    with pytest.raises(ValueError, match="min_learning_rate"):
        FlowConfig.preset("tiny", min_learning_rate=1.0)


# -------------------------------------------------------------- bad input
def test_bad_inputs_raise(flow_2d):
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, size=(50, 2))
    x = rng.normal(size=(50, 3))
    cfg = FlowConfig.preset("tiny", max_epochs=1)
    fit = ConditionalFlow.fit
    bad_theta = theta.copy()
    bad_theta[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit(bad_theta, x, -1, 1, config=cfg, progress=False)
    bad_x = x.copy()
    bad_x[7, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        fit(theta, bad_x, -1, 1, config=cfg, progress=False)
    with pytest.raises(ValueError, match="rows"):
        fit(theta, x[:-1], -1, 1, config=cfg, progress=False)
    with pytest.raises(ValueError, match="low < high"):
        fit(theta, x, [-1, 1], [1, 1], config=cfg, progress=False)
    with pytest.raises(ValueError, match="outside the box"):
        fit(theta, x, -0.5, 1, config=cfg, progress=False)
    with pytest.raises(ValueError):
        fit(theta, x, [-1, -1, -1], 1, config=cfg, progress=False)
    with pytest.raises(ValueError, match="more simulations"):
        fit(theta[:3], x[:3], -1, 1, config=cfg, progress=False)
    with pytest.raises(ValueError, match="columns"):
        flow_2d.sample(np.zeros((2, 3)), 10)
    with pytest.raises(ValueError, match="non-finite"):
        flow_2d.sample(np.array([[np.nan, 0.0]]), 10)
    with pytest.raises(ValueError):
        flow_2d.sample(np.zeros((1, 2)), -5)
    with pytest.raises(ValueError, match="non-finite"):
        flow_2d.log_prob(np.array([[np.nan, 1.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="rows"):
        flow_2d.log_prob(np.ones((4, 2)), np.zeros((3, 2)))


def test_plateau_box_map_is_linear_in_the_centre_and_smooth_at_the_joints():
    """The plateau map: inverse to 1e-15, strictly increasing, y linear in u on the centre
    (76% of the box for PLATEAU_HALF_WIDTH = 4), continuous with a continuous derivative at
    the joints, and its log|dy/du| equal to a central finite difference (1e-6)."""
    from provabgs_sbi.inference.flows.box_maps import PLATEAU_HALF_WIDTH, box_map

    plateau = box_map("plateau")
    assert plateau.half_width == PLATEAU_HALF_WIDTH
    c = PLATEAU_HALF_WIDTH
    u = np.concatenate([np.linspace(1e-9, 1 - 1e-9, 200001), [1e-15, 0.5]])
    y = plateau.forward(u)
    np.testing.assert_allclose(plateau.inverse(y), u, rtol=0, atol=1e-15)
    order = np.argsort(u)
    assert np.all(np.diff(y[order]) > 0)
    centre = np.abs(y) < c
    shoulder = 1.0 / (1.0 + 2 * c / math.sqrt(2 * math.pi))     # both shoulders together
    assert abs(np.mean(centre[:-2]) - (1 - shoulder)) < 1e-4
    slope = np.polyfit(u[centre], y[centre], 1)
    np.testing.assert_allclose(np.polyval(slope, u[centre]), y[centre], rtol=0, atol=1e-9)
    joints = plateau.inverse(np.array([-c, c]))
    for j in joints:
        left, right = plateau.forward(np.array([j - 1e-9, j + 1e-9]))
        assert right - left < 1e-7                                   # continuous
    h = 1e-7
    uu = np.concatenate([np.linspace(1e-3, 1 - 1e-3, 2001), joints])
    numeric = np.log((plateau.forward(uu + h) - plateau.forward(uu - h)) / (2 * h))
    np.testing.assert_allclose(plateau.log_det(plateau.forward(uu)), numeric,
                               rtol=0, atol=1e-6)


def test_plateau_image_of_a_uniform_is_0081_nats_from_its_best_gaussian():
    """The number quoted in the box_maps module docstring: a uniform on the box becomes, under
    the plateau map, the density exp(-log|dy/du|) of y; its KL from the Gaussian of the
    same variance is 0.081 nats (trapezoid rule on a fine grid)."""
    from provabgs_sbi.inference.flows.box_maps import box_map

    y = np.linspace(-20.0, 20.0, 400001)
    log_p = -box_map("plateau").log_det(y)
    p = np.exp(log_p)
    assert abs(np.trapezoid(p, y) - 1.0) < 1e-9
    entropy = -np.trapezoid(p * log_p, y)
    var = np.trapezoid(p * y**2, y)
    kl = 0.5 * math.log(2 * math.pi * math.e * var) - entropy
    assert abs(kl - 0.081) < 0.0005, kl

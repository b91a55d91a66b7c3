"""Tests of the flows' input whitening (``FlowConfig.whiten_columns``): the ZCA matrix,
flows trained, saved and warm-started with it, and why it is there: inputs that vary
together by far more than the differences that carry the information."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
from provabgs_sbi.inference.flows.checkpoints import resume_key
from provabgs_sbi.inference.flows.training import zca_matrix


def _colour_problem(n: int, seed: int, spread: float = 3.0, colour: float = 0.6):
    """theta | x ~ N(c 0.6 / colour, 0.05^2) on [-1, 1], where x = (b + c / 2, b - c / 2,
    and a third copy of b), each measured with noise 0.01, with the brightness
    b ~ N(0, spread^2) and the colour c ~ U(-colour, colour): like magnitudes, the three
    columns vary together by far more than the difference that carries the information."""
    rng = np.random.default_rng(seed)
    bright = rng.normal(0.0, spread, n)
    c = rng.uniform(-colour, colour, n)
    noise = 0.01 * rng.standard_normal((n, 3))
    x = np.column_stack([bright + c / 2, bright - c / 2, bright]) + noise
    theta = np.clip(c * 0.6 / colour + 0.05 * rng.standard_normal(n), -1.0, 1.0)[:, None]
    return theta, x


def test_whiten_columns_are_validated_and_serialised_only_when_set():
    assert FlowConfig(whiten_columns=[3, 0, 1]).whiten_columns == (0, 1, 3)
    for bad in ([0, 0], [-1, 2], [2], [0.5, 1], [True, 2], "01"):
        with pytest.raises(ValueError, match="whiten_columns"):
            FlowConfig(whiten_columns=bad)
    plain = FlowConfig()
    assert "whiten_columns" not in plain.to_dict()        # flows saved before: unchanged
    cfg = FlowConfig(whiten_columns=(0, 1))
    assert cfg.to_dict()["whiten_columns"] == [0, 1]
    assert FlowConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    flow = ConditionalFlow(plain, [0.0], [1.0], [0.0], [1.0], [0.0, 0.0], [1.0, 1.0])
    whitened = ConditionalFlow(dataclasses.replace(plain, whiten_columns=(0, 1)), [0.0], [1.0],
                               [0.0], [1.0], [0.0, 0.0], [1.0, 1.0])
    whitened.data_hash = flow.data_hash
    assert resume_key(whitened) != resume_key(flow)
    with pytest.raises(ValueError, match="beyond x"):
        ConditionalFlow(FlowConfig(whiten_columns=(0, 2)), [0.0], [1.0], [0.0], [1.0],
                        [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="x_whiten"):
        ConditionalFlow(cfg, [0.0], [1.0], [0.0], [1.0], [0.0, 0.0], [1.0, 1.0],
                        x_whiten=np.eye(3))


def test_zca_matrix_is_the_inverse_square_root_of_the_covariance():
    """Against scipy's matrix square root: W = C^(-1/2), symmetric, and s W has unit
    covariance; a column that repeats another is not blown up."""
    from scipy.linalg import sqrtm

    _, x = _colour_problem(5000, seed=0)
    s = (x - x.mean(0)) / x.std(0)
    w = zca_matrix(s)
    c = np.cov(s, rowvar=False)
    np.testing.assert_allclose(w, np.real(sqrtm(np.linalg.inv(c))), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    np.testing.assert_allclose(np.cov(s @ w, rowvar=False), np.eye(3), atol=1e-9)
    # ZCA keeps each column closest to itself among the whitenings
    assert np.all(np.diag(np.corrcoef((s @ w).T, s.T)[:3, 3:]) > 0.05)
    repeated = zca_matrix(np.column_stack([s[:, 0], s[:, 0]]))
    assert np.all(np.isfinite(repeated)) and np.abs(repeated).max() < 1e4
    with pytest.raises(ValueError, match="more rows than columns"):
        zca_matrix(s[:2])


def test_whitening_learns_a_colour_that_standardised_inputs_learn_slowly():
    """The reason for the option: with the colour 1% of the brightness spread, the same
    tiny flow trained for the same 8 epochs has not begun to read the colour from
    standardised inputs (held-out log q at the truth near the prior's) but has from
    whitened ones (seen: -0.32 vs 1.44 nats; the exact posterior's is 1.58)."""
    theta, x = _colour_problem(6000, seed=1, spread=30.0, colour=0.3)
    t_test, x_test = _colour_problem(2000, seed=2, spread=30.0, colour=0.3)
    cfg = FlowConfig.preset("tiny", max_epochs=8, patience=15, seed=0)
    plain = ConditionalFlow.fit(theta, x, -1.0, 1.0, config=cfg, progress=False)
    white = ConditionalFlow.fit(theta, x, -1.0, 1.0, progress=False,
                                config=dataclasses.replace(cfg, whiten_columns=(0, 1, 2)))
    lq_plain = plain.log_prob(t_test, x_test).mean()
    lq_white = white.log_prob(t_test, x_test).mean()
    assert lq_white > 1.2 and lq_white > lq_plain + 1.0, (lq_white, lq_plain)


@pytest.fixture(scope="module")
def plain_flow():
    theta, x = _colour_problem(3000, seed=3)
    cfg = FlowConfig.preset("tiny", max_epochs=6, seed=3)
    return ConditionalFlow.fit(theta, x, -1.0, 1.0, config=cfg, progress=False)


def test_save_load_keeps_the_whitening(plain_flow, tmp_path):
    theta, x = _colour_problem(1000, seed=4)
    cfg = dataclasses.replace(plain_flow.config, whiten_columns=(0, 1), max_epochs=2)
    flow = ConditionalFlow.fit(theta, x, -1.0, 1.0, config=cfg, progress=False)
    loaded = ConditionalFlow.load(flow.save(tmp_path / "f"))
    meta = json.loads((tmp_path / "f" / "flow.json").read_text())
    assert np.array(meta["x_whiten"]).shape == (2, 2)
    np.testing.assert_array_equal(loaded._x_whiten, flow._x_whiten)
    np.testing.assert_array_equal(loaded.log_prob(theta[:200], x[:200]),
                                  flow.log_prob(theta[:200], x[:200]))
    assert "x_whiten" not in json.loads(
        (plain_flow.save(tmp_path / "p") / "flow.json").read_text())


def test_warm_start_with_other_whitening_starts_as_the_given_flow(plain_flow):
    """A warm start that turns whitening on (or changes or drops it) maps every MADE layer's
    conditional kernel so that the new flow computes what the old one did; the log
    densities agree to float32 rounding. A coupling flow cannot be mapped."""
    theta, x = _colour_problem(1500, seed=5)
    still = dataclasses.replace(plain_flow.config, max_epochs=1, learning_rate=1e-10,
                                min_learning_rate=1e-10)
    ref = plain_flow.log_prob(theta[:300], x[:300])
    on = ConditionalFlow.fit(theta, x, -1.0, 1.0, init=plain_flow, progress=False,
                             config=dataclasses.replace(still, whiten_columns=(0, 1, 2)))
    assert on.config.whiten_columns == (0, 1, 2) and on._x_whiten is not None
    assert not np.allclose(on.get_weights()[2], plain_flow.get_weights()[2])
    np.testing.assert_allclose(on.log_prob(theta[:300], x[:300]), ref, atol=2e-4)
    part = ConditionalFlow.fit(theta, x, -1.0, 1.0, init=on, progress=False,
                               config=dataclasses.replace(still, whiten_columns=(0, 1)))
    np.testing.assert_allclose(part.log_prob(theta[:300], x[:300]), ref, atol=4e-4)
    off = ConditionalFlow.fit(theta, x, -1.0, 1.0, init=part, config=still, progress=False)
    assert off._x_whiten is None
    np.testing.assert_allclose(off.log_prob(theta[:300], x[:300]), ref, atol=6e-4)
    coupling = dataclasses.replace(still, family="coupling", n_transforms=2)
    c_flow = ConditionalFlow.fit(theta, x, -1.0, 1.0, config=coupling, progress=False)
    with pytest.raises(ValueError, match="needs MAF"):
        ConditionalFlow.fit(theta, x, -1.0, 1.0, init=c_flow, progress=False,
                            config=dataclasses.replace(coupling, whiten_columns=(0, 1)))

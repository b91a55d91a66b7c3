"""The default flow settings chosen from the data (provabgs_sbi.inference.flows.auto)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from provabgs_sbi.inference.flows import AUTO_RULE, ConditionalFlow, FlowConfig
from provabgs_sbi.inference.flows.auto import (AFFINE_WEIGHT_DECAY, AUTO_CANDIDATES,
                                               SPLINE_WEIGHT_DECAY, auto_candidates,
                                               selection_record)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, d, width, batch, lr, patience, lr_patience", [
    (1_000, 2, 50, 50, 5e-4, 167, 27),        # 900 training rows: 18 steps per epoch
    (10_000, 10, 50, 50, 5e-4, 20, 3),        # 180 steps per epoch: 20 epochs
    (100_000, 10, 89, 250, 1e-3, 20, 3),     # 5e-4 sqrt(5) = 1.1e-3, capped
    (1_000_000, 11, 158, 1024, 1e-3, 20, 3),
])
def test_candidates_resolve_as_documented(n, d, width, batch, lr, patience, lr_patience):
    cands = auto_candidates(n, d, d)
    assert [c.transform for c in cands] == list(AUTO_CANDIDATES) == ["affine", "spline"]
    for c in cands:
        assert c.hidden_units == (width, width) and c.n_transforms == 5
        assert c.batch_size == batch
        assert c.learning_rate == pytest.approx(lr)
        assert (c.patience, c.lr_patience) == (patience, lr_patience)
        assert c.box_transform == "plateau" and c.family == "maf"
        assert c.auto_rule == AUTO_RULE
    affine, spline = cands
    assert (affine.activation, affine.weight_decay) == ("tanh", AFFINE_WEIGHT_DECAY)
    assert (spline.activation, spline.weight_decay) == ("relu", SPLINE_WEIGHT_DECAY)
    assert (spline.spline_bins, spline.spline_bound) == (10, 3.0)


def test_overrides_and_errors():
    cands = auto_candidates(5_000, 3, 4, seed=7, max_epochs=9)
    assert all(c.seed == 7 and c.max_epochs == 9 for c in cands)
    with pytest.raises(ValueError, match="unknown FlowConfig fields"):
        auto_candidates(5_000, 3, 4, n_blocks=3)
    with pytest.raises(ValueError, match="n_simulations"):
        auto_candidates(0, 3, 4)
    with pytest.raises(ValueError, match="d_x"):
        auto_candidates(100, 3, 2.5)
    with pytest.raises(ValueError, match="auto_rule"):
        FlowConfig(auto_rule=3)
    assert selection_record({"affine": -0.81234, "spline": 1.5}) == \
        "auto-1 (affine -0.8123, spline 1.5000)"


def test_hand_settings_serialise_as_before():
    """A config without a rule writes no auto_rule key (saved flows' JSON is unchanged);
    the committed flows' configs, which have none, load as hand settings."""
    assert "auto_rule" not in FlowConfig.preset("default").to_dict()
    stored = json.loads((ROOT / "flows/bc03/flow/member_0/flow.json").read_text())["config"]
    cfg = FlowConfig.from_dict(stored)
    assert cfg.auto_rule == "" and "auto_rule" not in cfg.to_dict()
    assert {k: cfg.to_dict()[k] for k in stored} == stored
    auto = auto_candidates(1000, 2, 2)[0]
    assert FlowConfig.from_dict(auto.to_dict()) == auto


def test_default_fit_trains_both_and_records_the_choice(tmp_path, monkeypatch):
    """fit() without a config trains the two candidates on the same split, keeps the lower
    validation loss and records both in the saved config. (Epochs capped for speed.)"""
    import provabgs_sbi.inference.flows.training as training

    def capped(n, d_theta, d_x):       # the rule, shrunk to seconds
        return auto_candidates(n, d_theta, d_x, max_epochs=3, jit_compile=False,
                               n_transforms=2, hidden_units=(8, 8))

    monkeypatch.setattr(training, "auto_candidates", capped)
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, (200, 2))
    x = theta + 0.1 * rng.standard_normal((200, 2))
    flow = ConditionalFlow.fit(theta, x, -1.0, 1.0, progress=False)
    rule = flow.config.auto_rule
    assert rule.startswith("auto-1 (affine ") and ", spline " in rule
    losses = dict(part.rsplit(" ", 1) for part in rule[len("auto-1 ("):-1].split(", "))
    assert float(losses[flow.config.transform]) == pytest.approx(flow.best_val_loss, abs=1e-4)
    assert float(losses[flow.config.transform]) == min(float(v) for v in losses.values())
    assert len(flow.history) == 3 and flow.config.max_epochs == 3
    loaded = ConditionalFlow.load(flow.save(tmp_path / "f"))
    assert loaded.config == flow.config
    np.testing.assert_allclose(loaded.log_prob(theta[:5], x[:5]), flow.log_prob(theta[:5], x[:5]),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="warm start"):
        ConditionalFlow.fit(theta, x, -1.0, 1.0, config="auto", init=flow, progress=False)

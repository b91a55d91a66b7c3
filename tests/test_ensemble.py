"""Tests of provabgs_sbi.inference.ensemble: equal-weight mixtures of conditional flows.

Two tiny flows (logit and probit box maps, different seeds) on a fixed-seed 2-d toy whose
posterior touches the faces of the box; tolerances are stated at each check.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from provabgs_sbi.inference.ensemble import FlowEnsemble, load_flow
from provabgs_sbi.inference.flows import ChecksumError, ConditionalFlow, FlowConfig

LOW = np.array([0.0, -3.0])
HIGH = np.array([2.0, 5.0])


def _box_2d(n: int, seed: int):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(LOW, HIGH, size=(n, 2))
    x = (theta - LOW) / (HIGH - LOW) + 0.15 * rng.standard_normal((n, 2))
    return theta, x


@pytest.fixture(scope="module")
def members():
    theta, x = _box_2d(3000, seed=1)
    out = []
    for seed, kind in ((1, "logit"), (2, "probit")):
        cfg = FlowConfig.preset("tiny", max_epochs=20, seed=seed, box_transform=kind)
        out.append(ConditionalFlow.fit(theta, x, LOW, HIGH, config=cfg, progress=False))
    return out


@pytest.fixture(scope="module")
def ensemble(members):
    return FlowEnsemble(members)


def _grid(n=300):
    e0, e1 = np.linspace(LOW[0], HIGH[0], n + 1), np.linspace(LOW[1], HIGH[1], n + 1)
    g0, g1 = np.meshgrid(0.5 * (e0[1:] + e0[:-1]), 0.5 * (e1[1:] + e1[:-1]), indexing="ij")
    return np.stack([g0.ravel(), g1.ravel()], axis=1), (e0[1] - e0[0]) * (e1[1] - e1[0])


def test_log_prob_is_the_mean_of_the_members_densities(ensemble, members):
    """log q = log((q_1 + q_2) / 2), computed here directly (1e-10); -inf outside the box."""
    rng = np.random.default_rng(3)
    theta = rng.uniform(LOW, HIGH, size=(200, 2))
    x = rng.uniform(0, 1, size=(200, 2))
    direct = np.log(0.5 * (np.exp(members[0].log_prob(theta, x))
                           + np.exp(members[1].log_prob(theta, x))))
    np.testing.assert_allclose(ensemble.log_prob(theta, x), direct, rtol=0, atol=1e-10)
    assert ensemble.log_prob(np.array([[2.5, 0.0]]), np.array([0.5, 0.5]))[0] == -np.inf


def test_mixture_integrates_to_one_and_samples_follow_it(ensemble):
    """Mass 1 on a 300 x 300 midpoint grid (1e-2); the mean and standard deviation of 40,000
    draws match those of the gridded mixture density to 5 standard errors."""
    grid, cell = _grid()
    xv = np.array([0.2, 0.9])
    p = np.exp(ensemble.log_prob(grid, xv)) * cell
    assert abs(p.sum() - 1.0) < 1e-2, p.sum()
    p /= p.sum()
    mean = p @ grid
    sd = np.sqrt(p @ (grid - mean) ** 2)
    s = ensemble.sample(xv, 40_000, seed=5)[0]
    assert np.all((s >= LOW) & (s <= HIGH))
    se = sd / np.sqrt(len(s))
    assert np.all(np.abs(s.mean(axis=0) - mean) < 5 * se + 0.01 * sd), (s.mean(axis=0), mean)
    assert np.all(np.abs(s.std(axis=0) - sd) < 0.03 * sd), (s.std(axis=0), sd)


def test_sampling_is_seeded_and_mixes_members(ensemble, members):
    xs = np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    a = ensemble.sample(xs, 500, seed=7)
    assert a.shape == (3, 500, 2)
    np.testing.assert_array_equal(a, ensemble.sample(xs, 500, seed=7))
    assert not np.array_equal(a, ensemble.sample(xs, 500, seed=8))
    assert ensemble.sample(xs, 0, seed=1).shape == (3, 0, 2)
    # Each observation's draws are exactly its multinomial share of each member's draws
    # (seeded as FlowEnsemble does it), shuffled: none lost, none repeated.
    rng = np.random.default_rng(7)
    counts = rng.multinomial(500, [0.5, 0.5], size=3)
    seeds = rng.spawn(2)
    own = [m.sample(xs, int(counts[:, k].max()), seed=seeds[k]) for k, m in enumerate(members)]
    for i in range(3):
        expected = np.concatenate([own[0][i, :counts[i, 0]], own[1][i, :counts[i, 1]]])
        order = np.lexsort(expected.T)
        got = a[i][np.lexsort(a[i].T)]
        np.testing.assert_array_equal(got, expected[order])
        assert 0 < counts[i, 0] < 500


def test_sample_and_log_prob_matches_log_prob_away_from_the_faces(ensemble):
    """Same draws as sample() with the same seed; away from the faces log_q equals
    log_prob of the returned theta (float32 round trip: 2e-3)."""
    xs = np.array([[0.3, 0.7], [0.9, 0.1]])
    theta, log_q = ensemble.sample_and_log_prob(xs, 2000, seed=4)
    np.testing.assert_allclose(theta, ensemble.sample(xs, 2000, seed=4), rtol=0, atol=1e-6)
    for k in range(2):
        u = (theta[k] - LOW) / (HIGH - LOW)
        inner = np.all((u > 1e-3) & (u < 1 - 1e-3), axis=1)
        assert inner.sum() > 1500
        np.testing.assert_allclose(log_q[k][inner], ensemble.log_prob(theta[k][inner], xs[k]),
                                   rtol=0, atol=2e-3)


def test_save_load_roundtrip_and_tampering(ensemble, tmp_path):
    path = ensemble.save(tmp_path / "ens")
    back = load_flow(path)
    assert isinstance(back, FlowEnsemble) and back.n_members == 2
    xs = np.array([[0.3, 0.7]])
    np.testing.assert_array_equal(back.sample(xs, 100, seed=1), ensemble.sample(xs, 100, seed=1))
    assert isinstance(load_flow(path / "member_0"), ConditionalFlow)
    # A changed member weight file: the member's own manifest refuses it.
    w = path / "member_1" / "weights.npz"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        FlowEnsemble.load(path)
    # A replaced member manifest: the ensemble index refuses it.
    ensemble.save(tmp_path / "ens2")
    m = tmp_path / "ens2" / "member_0" / "manifest.json"
    meta = json.loads(m.read_text())
    meta["note"] = "edited"
    m.write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match="ensemble.json"):
        FlowEnsemble.load(tmp_path / "ens2")


def test_invalid_ensembles(members):
    with pytest.raises(ValueError, match="at least 2"):
        FlowEnsemble(members[:1])
    theta, x = _box_2d(500, seed=3)
    other = ConditionalFlow.fit(theta, x, LOW, HIGH + 1.0,
                                config=FlowConfig.preset("tiny", max_epochs=2), progress=False)
    with pytest.raises(ValueError, match="another box"):
        FlowEnsemble([members[0], other])
    with pytest.raises(ValueError, match="integer"):
        FlowEnsemble(members).sample(np.array([0.5, 0.5]), -1)

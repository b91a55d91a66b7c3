"""ANPE training sets: cuts, determinism and resumption after an interruption."""
import h5py
import numpy as np
import pytest

from provabgs_sbi.inference import training_set as ts
from provabgs_sbi.inference.noise import default_noise_model
from provabgs_sbi.model.priors import Prior


def test_cuts_and_layout(tmp_path, shifted_emulator):
    cfg = ts.TrainingSetConfig(n=3000, seed=1, chunk=2000)
    path = ts.make_training_set(tmp_path / "t.h5", cfg, shifted_emulator, progress=False)
    theta, warped, x, settings = ts.load_training_set(path)
    assert theta.shape == (3000, 12) and warped.shape == (3000, 11) and x.shape == (3000, 11)
    assert np.all(x[:, 5:10] > 0)                          # sigma > 0
    noise = default_noise_model()
    with h5py.File(path) as fh:
        assert np.all(noise.in_range(fh["mag_true"][:]))    # noiseless mags inside the real range
    assert np.all((x[:, 10] > 0) & (x[:, 10] <= 0.2))
    assert np.all(Prior().in_support(theta))
    assert settings["config"]["n"] == 3000


def test_resume_after_interruption_gives_identical_rows(tmp_path, shifted_emulator, monkeypatch):
    cfg = ts.TrainingSetConfig(n=4000, seed=2, chunk=1500)
    ref = ts.make_training_set(tmp_path / "ref.h5", cfg, shifted_emulator, progress=False)
    # Interrupt the second chunk half-way through writing its rows.
    calls = {"n": 0}
    real = ts.simulate_chunk

    def flaky(*args, **kw):
        calls["n"] += 1
        rows = real(*args, **kw)
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return rows

    monkeypatch.setattr(ts, "simulate_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        ts.make_training_set(tmp_path / "cut.h5", cfg, shifted_emulator, progress=False)
    monkeypatch.setattr(ts, "simulate_chunk", real)
    # Simulate rows written but not committed: append junk beyond the committed count.
    with h5py.File(tmp_path / "cut.h5", "r+") as fh:
        n = fh["x"].shape[0]
        fh["x"].resize(n + 7, axis=0)
    ts.make_training_set(tmp_path / "cut.h5", cfg, shifted_emulator, progress=False)
    a = ts.load_training_set(ref)
    b = ts.load_training_set(tmp_path / "cut.h5")
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)


def test_other_settings_refused(tmp_path, shifted_emulator):
    ts.make_training_set(tmp_path / "t.h5", ts.TrainingSetConfig(n=500, chunk=1000), shifted_emulator,
                         progress=False)
    with pytest.raises(ValueError, match="other settings"):
        ts.make_training_set(tmp_path / "t.h5", ts.TrainingSetConfig(n=500, seed=9, chunk=1000),
                             shifted_emulator, progress=False)


def test_joined_files_must_be_complete_alike_and_of_distinct_seeds(tmp_path, shifted_emulator):
    a = ts.make_training_set(tmp_path / "a.h5", ts.TrainingSetConfig(n=600, seed=1, chunk=1000),
                             shifted_emulator, progress=False)
    b = ts.make_training_set(tmp_path / "b.h5", ts.TrainingSetConfig(n=400, seed=2, chunk=1000),
                             shifted_emulator, progress=False)
    theta, warped, x, settings = ts.load_training_sets([a, b])
    assert theta.shape == (1000, 12) and warped.shape == (1000, 11) and x.shape == (1000, 11)
    np.testing.assert_array_equal(x[600:], ts.load_training_set(b)[2])
    assert [s["config"]["seed"] for s in settings] == [1, 2]
    with pytest.raises(ValueError, match="share a seed"):
        ts.load_training_sets([a, a])
    other = ts.make_training_set(tmp_path / "c.h5",
                                 ts.TrainingSetConfig(n=400, seed=3, chunk=1000,
                                                      z_range=(0.0, 0.1)),
                                 shifted_emulator, progress=False)
    with pytest.raises(ValueError, match="made differently"):
        ts.load_training_sets([a, other])
    with h5py.File(b, "r+") as fh:                    # an interrupted file: rows missing
        fh["x"].resize(300, axis=0)
    with pytest.raises(ValueError, match="finish it first"):
        ts.load_training_sets([a, b])

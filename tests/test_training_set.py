"""ANPE training sets: cuts, determinism and resumption after an interruption."""
import h5py
import numpy as np
import pytest

from provabgs_sbi import training_set as ts
from provabgs_sbi.noise import default_noise_model
from provabgs_sbi.priors import Prior


@pytest.fixture(scope="module")
def emu(tmp_path_factory, fake_table):
    """The tiny fake-table emulator of test_emulator (trained again here, ~20 s)."""
    from provabgs_sbi.emulator.training import EmulatorConfig, train_emulator
    from provabgs_sbi.sps import write_ssp_table

    tmp = tmp_path_factory.mktemp("emu_ts")
    path = write_ssp_table(fake_table, tmp / "fake.h5")
    cfg = EmulatorConfig(name="fake", sps=str(path), n_train=2000, n_val=200, n_pca=8,
                         hidden=(16,), phases=((3e-3, 128),), patience=2, max_epochs_per_phase=5,
                         max_minutes=0.5, n_validate=50, seed=3)
    emu, _ = train_emulator(cfg, tmp / "out", work_dir=tmp / "work", progress=False,
                            log=lambda *a: None)
    return emu


class _Shifted:
    """Wraps an emulator: the fake table is ~10 mag too faint for the SDSS noise model, so
    shift its fluxes (a constant factor) into the real sample's range for these tests."""

    def __init__(self, emu, factor):
        self.emu, self.factor = emu, factor

    def photometry(self, theta, z, backend="numpy"):
        return self.emu.photometry(theta, z, backend=backend) * self.factor


@pytest.fixture(scope="module")
def shifted(emu):
    noise = default_noise_model()
    theta = Prior().sample(2000, seed=0)
    z = np.random.default_rng(0).uniform(0.01, 0.2, 2000)
    from provabgs_sbi.photometry import nanomaggies_to_mag

    med = np.nanmedian(nanomaggies_to_mag(emu.photometry(theta, z)), axis=0)
    target = noise.mag_range.mean(axis=1)
    return _Shifted(emu, 10 ** (-0.4 * np.mean(target - med)))


def test_cuts_and_layout(tmp_path, shifted):
    cfg = ts.TrainingSetConfig(n=3000, seed=1, chunk=2000)
    path = ts.make_training_set(tmp_path / "t.h5", cfg, shifted, progress=False)
    theta, warped, x, settings = ts.load_training_set(path)
    assert theta.shape == (3000, 12) and warped.shape == (3000, 11) and x.shape == (3000, 11)
    assert np.all(x[:, 5:10] > 0)                          # sigma > 0
    noise = default_noise_model()
    with h5py.File(path) as fh:
        assert np.all(noise.in_range(fh["mag_true"][:]))    # noiseless mags inside the real range
    assert np.all((x[:, 10] > 0) & (x[:, 10] <= 0.2))
    assert np.all(Prior().in_support(theta))
    assert settings["config"]["n"] == 3000


def test_resume_after_interruption_gives_identical_rows(tmp_path, shifted, monkeypatch):
    cfg = ts.TrainingSetConfig(n=4000, seed=2, chunk=1500)
    ref = ts.make_training_set(tmp_path / "ref.h5", cfg, shifted, progress=False)
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
        ts.make_training_set(tmp_path / "cut.h5", cfg, shifted, progress=False)
    monkeypatch.setattr(ts, "simulate_chunk", real)
    # Simulate rows written but not committed: append junk beyond the committed count.
    with h5py.File(tmp_path / "cut.h5", "r+") as fh:
        n = fh["x"].shape[0]
        fh["x"].resize(n + 7, axis=0)
    ts.make_training_set(tmp_path / "cut.h5", cfg, shifted, progress=False)
    a = ts.load_training_set(ref)
    b = ts.load_training_set(tmp_path / "cut.h5")
    for u, v in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(u, v)


def test_other_settings_refused(tmp_path, shifted):
    ts.make_training_set(tmp_path / "t.h5", ts.TrainingSetConfig(n=500, chunk=1000), shifted,
                         progress=False)
    with pytest.raises(ValueError, match="other settings"):
        ts.make_training_set(tmp_path / "t.h5", ts.TrainingSetConfig(n=500, seed=9, chunk=1000),
                             shifted, progress=False)

"""Shared fixtures: seeded RNGs, the bc03 SED model (built once per session), a small
fake SSP table so unit tests need no large data, and the optional PROVABGS pretrained
emulator (tests that need it skip with the reason when it is absent)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# The sbibm task definitions live with the benchmarks, outside the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


#: The PROVABGS pretrained FSPS emulator's files, in ``provabgs_sbi.io.paths.data_dir()``.
PROVABGS_NPZ = "nmf.v0.1.seed0_99.w*.npz"


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(1234)


@pytest.fixture(scope="session")
def provabgs_npz_files() -> list[str]:
    """Paths of the PROVABGS pretrained emulator's ``.npz`` files (sorted).

    They are optional (CI has them): a test that takes this fixture skips when they are
    not in ``$PROVABGS_SBI_DATA`` (default ``<repo>/../shared/data/provabgs``).
    """
    from provabgs_sbi.io.paths import DATA_ENV, data_dir

    try:
        files = sorted(str(f) for f in data_dir().glob(PROVABGS_NPZ))
    except FileNotFoundError:
        files = []
    if not files:
        pytest.skip(f"PROVABGS pretrained emulator not found in ${DATA_ENV} "
                    "(default ../shared/data/provabgs)")
    return files


@pytest.fixture(scope="session")
def bc03_model():
    from provabgs_sbi import SEDModel

    return SEDModel("bc03")


def make_fake_ssp_table(n_wave: int = 400, seed: int = 0):
    """A smooth synthetic SSP table: blackbody-like spectra whose temperature falls with
    age and whose amplitude falls with metallicity; surviving fraction falls with age."""
    from provabgs_sbi.model.sps import SSPTable

    rng = np.random.default_rng(seed)
    log_age = np.linspace(5.0, 10.2, 40)
    metallicity = np.array([1e-4, 1e-3, 4e-3, 0.01, 0.02, 0.05])
    wave = np.geomspace(900.0, 25000.0, n_wave)
    temp = 3500.0 + 30000.0 * np.exp(-(log_age - 5.0))                 # K
    x = 1.4388e8 / (wave[None, None, :] * temp[:, None, None])           # hc / (lambda k T)
    lum = (wave[None, None, :] / 5500.0) ** -5 / np.expm1(np.clip(x, 1e-6, 700))
    lum = lum * (1.0 - 0.2 * np.log10(metallicity / 0.02))[None, :, None]
    lum = lum / lum[:, :, np.searchsorted(wave, 5500.0)][..., None] * 10 ** (-(log_age - 5))[:, None, None]
    lum *= 1.0 + 0.01 * rng.standard_normal(n_wave)                     # "lines"
    msurv = np.clip(1.0 - 0.05 * (log_age - 5.0), 0.5, 1.0)[:, None] * np.ones((1, len(metallicity)))
    return SSPTable(log_age, metallicity, wave, np.clip(lum, 0, None), msurv,
                    attrs={"backend": "fake", "source": "tests/conftest.py"})


@pytest.fixture(scope="session")
def fake_table():
    return make_fake_ssp_table()


@pytest.fixture(scope="session")
def fake_model(fake_table):
    from provabgs_sbi import SEDConfig, SEDModel

    return SEDModel(fake_table, config=SEDConfig(resolution=None))


@pytest.fixture(scope="session")
def fake_emulator(tmp_path_factory, fake_table):
    """The tiny fake-table emulator of test_emulator (trained again here, ~20 s)."""
    from provabgs_sbi.emulator.training import EmulatorConfig, train_emulator
    from provabgs_sbi.model.sps import write_ssp_table

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

    @property
    def z_range(self):
        return self.emu.z_range

    @property
    def filters(self):
        return self.emu.filters

    def with_filters(self, filters):
        """The same shift on the wrapped emulator's photometry in other filters."""
        return _Shifted(self.emu.with_filters(filters), self.factor)

    @property
    def burst_model(self):
        """The SED model behind the emulator (derived properties do not see the shift)."""
        return self.emu.burst_model


@pytest.fixture(scope="session")
def shifted_emulator(fake_emulator):
    from provabgs_sbi.inference.noise import default_noise_model
    from provabgs_sbi.model.priors import Prior

    noise = default_noise_model()
    theta = Prior().sample(2000, seed=0)
    z = np.random.default_rng(0).uniform(0.01, 0.2, 2000)
    from provabgs_sbi.model.photometry import nanomaggies_to_mag

    med = np.nanmedian(nanomaggies_to_mag(fake_emulator.photometry(theta, z)), axis=0)
    target = noise.mag_range.mean(axis=1)
    return _Shifted(fake_emulator, 10 ** (-0.4 * np.mean(target - med)))



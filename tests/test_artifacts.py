"""The committed artifacts: emulator/bc03 and flows/bc03, checked by recomputation."""
import numpy as np
import pytest

from provabgs_sbi import Emulator, Posterior, Prior
from provabgs_sbi.paths import REPO_ROOT
from provabgs_sbi.photometry import nanomaggies_to_mag

EMU = REPO_ROOT / "emulator" / "bc03"
FLOW = REPO_ROOT / "flows" / "bc03"


@pytest.fixture(scope="module")
def emu():
    return Emulator.load(EMU)


@pytest.mark.slow
def test_committed_emulator_accuracy_on_fresh_draws(emu):
    """1,000 prior draws (a seed never used in training): |dL/L| over 2500-11000 A and
    ugriz errors for 0 < z <= 0.2 against the direct model."""
    rng = np.random.default_rng(2024)
    theta = Prior().sample(1000, seed=rng)
    z = rng.uniform(0.005, 0.2, 1000)
    model = emu.burst_model
    keep = (emu.wave >= 2500) & (emu.wave <= 11000)
    err = np.abs(emu.spectrum(theta, z)[1][:, keep] / model.spectrum(theta, z)[1][:, keep] - 1)
    assert np.median(err) < 0.003
    assert np.percentile(err, 99) < 0.01
    dm = np.abs(nanomaggies_to_mag(emu.photometry(theta, z)) - nanomaggies_to_mag(model.photometry(theta, z)))
    assert np.percentile(dm, 99) < 0.01
    assert dm.max() < 0.05


def test_committed_posterior_loads_and_stays_in_support(emu):
    post = Posterior.load(FLOW)
    rng = np.random.default_rng(7)
    theta = Prior(post.prior.kind).sample(20, seed=rng)
    z = rng.uniform(0.02, 0.2, 20)
    mags = nanomaggies_to_mag(emu.photometry(theta, z))
    x = np.column_stack([mags, np.full((20, 5), 0.02), z])
    s = post.sample(x, 200, seed=0)
    assert s.shape == (20, 200, 12)
    assert np.all(post.prior.in_support(s.reshape(-1, 12)))

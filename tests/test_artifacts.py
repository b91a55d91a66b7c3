"""The committed artifacts (emulators under emulator/, posteriors under flows/), checked by
recomputation, and how a posterior finds the emulator its training set was made with."""
import json
from pathlib import Path

import numpy as np
import pytest

from provabgs_sbi import Emulator, Posterior, Prior
from provabgs_sbi.io.artifacts import find_emulator
from provabgs_sbi.io import paths
from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.io.paths import DEFAULT_FLOW, EMULATOR_ROOT, FLOW_ROOT
from provabgs_sbi.model.photometry import nanomaggies_to_mag
from provabgs_sbi.inference.posterior import emulator_of

EMULATORS = sorted(p.parent.name for p in EMULATOR_ROOT.glob("*/manifest.json"))
FLOWS = sorted(p.parent.name for p in FLOW_ROOT.glob("*/posterior.json"))


def test_the_default_posterior_is_committed():
    assert DEFAULT_FLOW.parent == FLOW_ROOT and DEFAULT_FLOW.name in FLOWS
    assert {"bc03", "bc03_logbeta1"} <= set(EMULATORS)


@pytest.mark.parametrize("name", FLOWS)
def test_every_committed_posterior_pairs_with_a_committed_emulator(name):
    folder = emulator_of(FLOW_ROOT / name)
    assert folder.parent == EMULATOR_ROOT
    meta = json.loads((FLOW_ROOT / name / "posterior.json").read_text())
    recorded = json.dumps(meta)
    assert sha256_file(folder / "manifest.json") in recorded


def test_find_emulator_by_manifest_hash(tmp_path):
    for name, text in (("a", '{"kind": "emulator", "n": 1}'), ("b", '{"kind": "emulator", "n": 2}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(text)
    assert find_emulator(sha256_file(tmp_path / "b" / "manifest.json"), tmp_path) == tmp_path / "b"
    with pytest.raises(FileNotFoundError, match="there are: a, b"):
        find_emulator("0" * 64, tmp_path)


@pytest.fixture(scope="module", params=EMULATORS)
def emu(request):
    return Emulator.load(EMULATOR_ROOT / request.param)


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


@pytest.mark.parametrize("name", FLOWS)
def test_committed_posterior_loads_and_stays_in_support(name):
    post = Posterior.load(FLOW_ROOT / name)
    emu = Emulator.load(post.emulator_folder())
    rng = np.random.default_rng(7)
    theta = Prior(post.prior.kind).sample(20, seed=rng)
    z = rng.uniform(0.02, 0.2, 20)
    mags = nanomaggies_to_mag(emu.with_filters(post.survey).photometry(theta, z))
    lay = post.layout                        # ugriz, or the posterior's survey's bands
    if post.conditioning is not None and post.conditioning.optional:
        mags = np.where(post.conditioning.undetected(mags, post.noise), np.nan, mags)
    x = lay.assemble(mags, np.full((20, lay.n_bands), 0.02), z)
    s = post.sample(x, 200, seed=0)
    assert s.shape == (20, 200, 12)
    assert np.all(post.prior.in_support(s.reshape(-1, 12)))


def test_artifact_root_is_the_checkout_here():
    assert paths.checkout_root() == Path(__file__).resolve().parents[1]
    assert paths.artifact_root() == paths.checkout_root()
    assert paths.default_noise_file() == paths.checkout_root() / "data" / "noise_model_sdss.ecsv"
    assert paths.default_noise_file().is_file()
    assert EMULATOR_ROOT == paths.artifact_root() / "emulator"


def test_artifact_root_order(monkeypatch, tmp_path):
    """$PROVABGS_SBI_ARTIFACTS, then the checkout, then a wheel's package data."""
    monkeypatch.setenv(paths.ARTIFACTS_ENV, str(tmp_path))
    assert paths.artifact_root() == tmp_path
    assert paths.default_noise_file() == tmp_path / "data" / "noise_model_sdss.ecsv"
    monkeypatch.delenv(paths.ARTIFACTS_ENV)
    monkeypatch.setattr(paths, "CHECKOUT_DIR", tmp_path)       # as in site-packages
    assert paths.checkout_root() is None
    assert paths.artifact_root() == paths.PACKAGE_DIR / "_artifacts"
    (tmp_path / "setup.cfg").write_text("")
    (tmp_path / "flows").mkdir()
    assert paths.artifact_root() == tmp_path


def test_data_dir_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=paths.DATA_ENV):
        paths.data_dir()

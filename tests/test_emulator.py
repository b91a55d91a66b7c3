"""The emulator: PROVABGS import against an independent forward pass, save/load, hashes,
a tiny emulator trained on a fake SSP table, numpy vs TensorFlow paths."""
from types import SimpleNamespace

import numpy as np
import pytest

from provabgs_sbi import Prior
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.model.sps import write_ssp_table


def independent_forward(path, x):
    """model-spec 3, written out from the formula: standardise, 8 gated layers, linear
    output, PCA reconstruction; float64 with a stable sigmoid."""
    a = np.load(path)
    h = (x - a["param_shift"]) / a["param_scale"]
    for i in range(8):
        z = h @ a[f"W{i}"] + a[f"b{i}"]
        sig = np.where(z * a[f"alpha{i}"] >= 0, 1 / (1 + np.exp(-np.abs(a[f"alpha{i}"] * z))),
                       np.exp(-np.abs(a[f"alpha{i}"] * z)) / (1 + np.exp(-np.abs(a[f"alpha{i}"] * z))))
        h = (a[f"beta{i}"] + (1 - a[f"beta{i}"]) * sig) * z
    c = h @ a["W8"] + a["b8"]
    return ((c * a["pca_scale"] + a["pca_shift"]) @ a["pca_basis"]) * a["spectrum_scale"] + a["spectrum_shift"]


REF_THETA = np.array([10, 0.1, 0.2, 0.3, 0.4, 0, 1, 3e-3, 3e-3, 0.5, 0.3, -0.5])


def test_provabgs_import_matches_independent_forward_pass(provabgs_npz_files):
    emu = Emulator.from_speculator_npz(provabgs_npz_files)
    assert len(emu.wave) == 4899 and emu.wave[0] == 2005.0 and emu.wave[-1] == 59900.0
    rng = np.random.default_rng(0)
    n = 20
    beta = rng.dirichlet(np.ones(4), n)
    from provabgs_sbi.model.parameters import betas_to_u
    u = betas_to_u(beta)
    x = np.column_stack([u, rng.uniform(1e-4, 1e-2, (n, 2)), rng.uniform(0, 3, (n, 2)),
                         rng.uniform(-2, 1, n), rng.uniform(10, 13.7, n)])
    ref = np.concatenate([independent_forward(p, x) for p in provabgs_npz_files], axis=1)
    np.testing.assert_allclose(emu.ln_spectrum_nmf(x), ref, atol=1e-5, rtol=0)


def test_provabgs_reference_galaxy(provabgs_npz_files):
    """model-spec 3's reference evaluation: ugriz nanomaggies and L at 5500 A."""
    emu = Emulator.from_speculator_npz(provabgs_npz_files)
    wave, lum = emu.spectrum(REF_THETA, 0.05)
    assert lum[0, np.argmin(np.abs(wave - 5500))] == pytest.approx(3.89e5, rel=0.01)
    np.testing.assert_allclose(emu.photometry(REF_THETA, 0.05)[0],
                               [10.93, 40.51, 76.50, 104.39, 139.26], rtol=2e-3)
    burst = REF_THETA.copy()
    burst[5] = 0.2
    with pytest.raises(ValueError, match="no burst model"):
        emu.spectrum(burst, 0.05)


# ----------------------------------------------------------------- tiny trained emulator
@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fake_table):
    from provabgs_sbi.emulator.training import EmulatorConfig, train_emulator

    tmp = tmp_path_factory.mktemp("emu")
    table_path = write_ssp_table(fake_table, tmp / "fake.h5")
    cfg = EmulatorConfig(name="fake", sps=str(table_path), n_train=4000, n_val=400, n_pca=12,
                         hidden=(32, 32), phases=((3e-3, 128), (1e-3, 256)), patience=4,
                         max_epochs_per_phase=25, max_minutes=1.5, n_validate=300, seed=1)
    emu, metrics = train_emulator(cfg, tmp / "out", work_dir=tmp / "work", progress=False,
                                  log=lambda *a: None)
    return emu, metrics, cfg, tmp


def test_tiny_emulator_beats_mean_spectrum_baseline(tiny):
    emu, metrics, cfg, _ = tiny
    model = emu.burst_model
    theta = Prior().sample(300, seed=11)
    theta[:, 5] = 0.0        # NMF part: what the network learns
    z = np.random.default_rng(3).uniform(0.0, 0.3, 300)
    true = np.log(model.spectrum(theta, z)[1])
    pred = np.log(emu.spectrum(theta, z)[1])
    baseline = true.mean(axis=0)          # the mean (log-)spectrum, scaled by mass
    err_emu = np.sqrt(np.mean((pred - true) ** 2))
    err_base = np.sqrt(np.mean((baseline - true) ** 2))
    assert err_emu < 0.2 * err_base


def test_burst_comes_from_the_table(tiny):
    emu, *_ = tiny
    th = Prior().sample(5, seed=2)
    th[:, 5] = 1.0
    th[:, 6] = np.linspace(0.05, 9.0, 5)
    np.testing.assert_allclose(emu.spectrum(th, 0.1)[1], emu.burst_model.spectrum(th, 0.1)[1],
                               rtol=1e-10)


def test_save_load_roundtrip_identical(tiny):
    emu, _, cfg, tmp = tiny
    back = Emulator.load(tmp / "out")
    theta = Prior().sample(50, seed=5)
    z = np.random.default_rng(5).uniform(0.01, 0.3, 50)
    np.testing.assert_array_equal(back.spectrum(theta, z)[1], emu.spectrum(theta, z)[1])
    np.testing.assert_array_equal(back.photometry(theta, z), emu.photometry(theta, z))


def test_hash_mismatch_refused(tiny, tmp_path):
    import shutil

    _, _, _, tmp = tiny
    bad = tmp_path / "bad"
    shutil.copytree(tmp / "out", bad)
    w = dict(np.load(bad / "weights.npz"))
    w["bin0_b0"] = w["bin0_b0"] + 1e-3
    np.savez(bad / "weights.npz", **w)
    with pytest.raises(ValueError, match="SHA-256"):
        Emulator.load(bad)


def test_ssp_table_mismatch_refused(tiny, tmp_path):
    from .conftest import make_fake_ssp_table

    _, _, _, tmp = tiny
    other = write_ssp_table(make_fake_ssp_table(seed=7), tmp_path / "other.h5")
    with pytest.raises(ValueError, match="SSP table mismatch"):
        Emulator.load(tmp / "out", sps=str(other))


def test_numpy_and_tf_paths_agree(tiny):
    emu, *_ = tiny
    theta = Prior().sample(200, seed=9)
    z = np.random.default_rng(9).uniform(0.01, 0.3, 200)
    _, a = emu.spectrum(theta, z)
    _, b = emu.spectrum(theta, z, backend="tf")
    np.testing.assert_allclose(b, a, rtol=2e-5)
    # Both paths interpolate the filter weights between the same redshift nodes; the
    # numpy path integrates the full grid, the TF path only each filter's pixel window.
    np.testing.assert_allclose(emu.photometry(theta, z, backend="tf"), emu.photometry(theta, z),
                               rtol=2e-5)
    # ... and the nodes are within 1e-4 of integrating each galaxy at its own z.
    exact = emu._photometer.nanomaggies(a, z, exact=True)
    np.testing.assert_allclose(emu.photometry(theta, z), exact, rtol=1e-4)


def test_tf_photometry_pads_to_few_shapes_and_keeps_every_row(tiny):
    """The TF path pads a call's last chunk (copies of its last row, dropped): every row is
    the same in any call (XLA computes rows independently), and the shapes XLA meets are
    only the full chunk and the lone-chunk buckets (a catalog's chunks would compile anew)."""
    from provabgs_sbi.xla_shapes import pieces

    emu, *_ = tiny
    theta = Prior().sample(700, seed=5)
    z = np.random.default_rng(5).uniform(0.01, 0.3, 700)
    path = emu._tf_path()
    whole = path.photometry(theta, z, chunk=256)
    for n in (1, 37, 300, 555):
        np.testing.assert_allclose(path.photometry(theta[:n], z[:n], chunk=256), whole[:n],
                                   rtol=1e-6)
    sizes = {size for n in range(257, 2000) for *_, size in pieces(n, 256, pad=True)}
    assert sizes == {256}


@pytest.mark.parametrize("z", [0.004, 0.1, 0.3])
def test_fixed_redshift_evaluator_matches_photometry(tiny, z):
    emu, *_ = tiny
    theta = Prior().sample(300, seed=4)
    want = emu.photometry(theta, np.full(300, z), backend="numpy")   # float64
    np.testing.assert_allclose(emu.at_redshift(z, dtype=np.float64).photometry(theta), want,
                               rtol=1e-12)
    fast = emu.at_redshift(z)
    np.testing.assert_allclose(fast.photometry(theta, z), want, rtol=2e-5)
    with pytest.raises(ValueError, match="fixed at z"):
        fast.photometry(theta, z + 0.01)
    with pytest.raises(ValueError, match="trained range"):
        emu.at_redshift(0.5)


def test_mcmc_evaluator_gives_a_point_the_same_flux_in_any_batch(tiny):
    """The slice sampler's density must depend on the point alone: the MCMC's evaluator
    returns the same fluxes (to 1e-13 relative) for each point called alone, in batches of
    7 and in one batch of 60, where float32 moves them by ~1e-6."""
    from provabgs_sbi.baselines.mcmc import sampling_model

    emu, *_ = tiny
    theta = Prior().sample(60, seed=8)
    model = sampling_model(emu, 0.1)
    whole = model.photometry(theta, 0.1)
    alone = np.concatenate([model.photometry(theta[i:i + 1], 0.1) for i in range(60)])
    sevens = np.concatenate([model.photometry(theta[i:i + 7], 0.1) for i in range(0, 60, 7)])
    np.testing.assert_allclose(alone, whole, rtol=1e-13, atol=0)
    np.testing.assert_allclose(sevens, whole, rtol=1e-13, atol=0)
    other = SimpleNamespace(photometry=lambda theta, z: None)       # no at_redshift: as is
    assert sampling_model(other, 0.1) is other


def test_emulator_input_checks(tiny):
    emu, *_ = tiny
    with pytest.raises(ValueError, match="outside the emulator's trained range"):
        emu.photometry(REF_THETA, 0.5)
    with pytest.raises(ValueError, match="betas sum"):
        bad = REF_THETA.copy()
        bad[1] = 0.9
        emu.spectrum(bad, 0.1)


def test_metrics_recorded(tiny):
    emu, metrics, _, tmp = tiny
    from provabgs_sbi.io.artifacts import read_manifest

    man = read_manifest(tmp / "out")
    assert man["inputs"]["ssp_table_hash"] == emu.burst_model.ssp_hash
    assert man["metrics"]["frac_err_p99_max"] == pytest.approx(metrics["frac_err_p99_max"])
    assert set(man["files"]) >= {"weights.npz", "emulator.json", "RECIPE.md"}
    assert "tensorflow" in man["versions"]


# ------------------------------------------------- log10(beta1) input, small-beta1 draws
def test_small_beta1_draws():
    from provabgs_sbi.emulator.trainset import draw_nmf_parameters

    z_range = (0.0, 0.3)
    a, za = draw_nmf_parameters(2000, np.random.default_rng(4), z_range)
    b, zb = draw_nmf_parameters(2000, np.random.default_rng(4), z_range, 0.0)
    np.testing.assert_array_equal(a, b)          # fraction 0: the old stream, unchanged
    c, zc = draw_nmf_parameters(20000, np.random.default_rng(4), z_range, 0.5)
    np.testing.assert_allclose(c[:, 1:5].sum(axis=1), 1.0, atol=1e-12)
    assert c[:, 1].min() >= 1e-5 * (1 - 1e-9)
    # Half the rows have log10 beta1 ~ U(-5, 0): P(beta1 < 1e-3) = 0.5 * 0.4 + 0.5 * 1e-3.
    assert np.mean(c[:, 1] < 1e-3) == pytest.approx(0.2005, abs=0.012)
    assert np.mean(a[:, 1] < 1e-3) < 0.005
    with pytest.raises(ValueError, match="small_beta1_fraction"):
        draw_nmf_parameters(10, np.random.default_rng(0), z_range, 1.5)


def test_logbeta1_input():
    from provabgs_sbi.emulator import nmf_inputs
    from provabgs_sbi.emulator.inputs import extend_warped_inputs
    from provabgs_sbi.emulator.training import EmulatorConfig

    theta = Prior().sample(40, seed=6)
    theta[0, 1:5] = [0.0, 0.5, 0.25, 0.25]            # beta1 = 0 exactly: finite input
    t_age = np.full(40, 12.0)
    warped = nmf_inputs(theta, t_age, "warped")
    extra = nmf_inputs(theta, t_age, "warped_logbeta1")
    assert extra.shape == (40, 8)
    np.testing.assert_array_equal(extra[:, :7], warped)
    np.testing.assert_allclose(extra[:, 7], np.log10(theta[:, 1] + 1e-5), rtol=1e-12)
    assert extra[0, 7] == pytest.approx(-5.0)
    with pytest.raises(ValueError, match="input mode"):
        extend_warped_inputs(warped, "provabgs")
    with pytest.raises(ValueError, match="input mode"):
        nmf_inputs(theta, t_age, "log")
    with pytest.raises(ValueError, match="input_mode"):
        EmulatorConfig(input_mode="provabgs")
    with pytest.raises(ValueError, match="small_beta1_fraction"):
        EmulatorConfig(small_beta1_fraction=-0.1)


@pytest.fixture(scope="module")
def tiny_logbeta1(tmp_path_factory, fake_table):
    from provabgs_sbi.emulator.training import EmulatorConfig, train_emulator

    tmp = tmp_path_factory.mktemp("emu_lb")
    table_path = write_ssp_table(fake_table, tmp / "fake.h5")
    cfg = EmulatorConfig(name="fake_lb", sps=str(table_path), n_train=3000, n_val=300, n_pca=12,
                         hidden=(32, 32), phases=((3e-3, 128),), patience=4,
                         max_epochs_per_phase=20, max_minutes=1.0, n_validate=200, seed=2,
                         input_mode="warped_logbeta1", small_beta1_fraction=0.5)
    emu, metrics = train_emulator(cfg, tmp / "out", work_dir=tmp / "work", progress=False,
                                  log=lambda *a: None)
    return emu, cfg, tmp


def test_logbeta1_emulator_trains_saves_and_evaluates(tiny_logbeta1):
    emu, cfg, tmp = tiny_logbeta1
    assert emu.input_mode == "warped_logbeta1" and emu.networks[0].n_param == 8
    assert (tmp / "work" / "train_3000_s2_lb0.5.h5").exists()
    recipe = (tmp / "out" / "RECIPE.md").read_text()
    assert "--input-mode warped_logbeta1 --small-beta1-fraction 0.5" in recipe
    assert "--phases 0.003:128 --name fake_lb" in recipe      # phases other than the default
    back = Emulator.load(tmp / "out")
    assert back.input_mode == "warped_logbeta1"
    theta = Prior().sample(100, seed=12)
    theta[:, 5] = 0.0
    z = np.random.default_rng(12).uniform(0.01, 0.3, 100)
    np.testing.assert_array_equal(back.spectrum(theta, z)[1], emu.spectrum(theta, z)[1])
    # Diffuse dust is analytic in this mode too, and all evaluation paths agree.
    true = np.log(emu.burst_model.spectrum(theta, z)[1])
    pred = np.log(emu.spectrum(theta, z)[1])
    assert np.sqrt(np.mean((pred - true) ** 2)) < 0.3 * np.sqrt(np.mean((true - true.mean(0)) ** 2))
    np.testing.assert_allclose(emu.photometry(theta, z, backend="tf"), emu.photometry(theta, z),
                               rtol=2e-5)
    np.testing.assert_allclose(emu.at_redshift(0.1).photometry(theta),
                               emu.photometry(theta, np.full(100, 0.1)), rtol=2e-5)

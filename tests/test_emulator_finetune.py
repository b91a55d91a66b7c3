"""Continuing a trained emulator with a pixel-weighted loss (provabgs_sbi.emulator.finetune)."""
import json

import numpy as np
import pytest

from provabgs_sbi.emulator import Emulator
from provabgs_sbi.emulator.finetune import pixel_error_weights, pixel_errors
from provabgs_sbi.emulator.training import EmulatorConfig, PCAStats, train_emulator, train_mlp
from provabgs_sbi.model.sps import write_ssp_table


def test_pixel_error_weights():
    e = np.array([1.0, 1.0, 1.0, 2.0, 10.0])
    w = pixel_error_weights(e, power=2.0, w_max=30.0)
    assert w.mean() == pytest.approx(1.0)
    # (e / median)^2 = 1, 1, 1, 4, 100 -> clipped at 30, then normalised
    np.testing.assert_allclose(w / w[0], [1, 1, 1, 4, 30])
    np.testing.assert_allclose(pixel_error_weights(e, 0.0, 30.0), 1.0)
    # pixels better than the median are not weighted below 1
    np.testing.assert_allclose(pixel_error_weights([0.5, 1.0, 1.0], 2.0, 30.0), 1.0)
    # only where asked (the median is still the whole spectrum's)
    w = pixel_error_weights(e, 2.0, 30.0, where=[True, True, True, True, False])
    np.testing.assert_allclose(w / w[0], [1, 1, 1, 4, 1])
    for bad in ([np.nan, 1.0], [-1.0, 1.0], [0.0, 0.0, 1.0]):
        with pytest.raises(ValueError):
            pixel_error_weights(bad, 2.0, 30.0)
    with pytest.raises(ValueError):
        pixel_error_weights(e, 2.0, 0.5)


def test_config_needs_a_network_to_weigh_pixels():
    with pytest.raises(ValueError, match="init_from"):
        EmulatorConfig(pixel_weight_power=2.0)
    with pytest.raises(ValueError):
        EmulatorConfig(init_from="emulator/x", pixel_weight_max=0.5)
    # defaults stay out of the dict (older checkpoint keys unchanged)
    d = EmulatorConfig().to_dict()
    assert not {"init_from", "pixel_weight_power", "pixel_weight_max"} & set(d)


def _problem(seed=0, n=1500, n_val=300, n_in=6, n_wave=12):
    """Six independent outputs, one per pixel, through a 2-unit bottleneck: the network
    can fit two of them well, so the loss decides which."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n + n_val, n_in))
    basis = np.eye(n_wave)[:n_in]
    return PCAStats(spectrum_shift=np.zeros(n_wave), spectrum_scale=np.full(n_wave, 0.5),
                    basis=basis, train_coef=x[:n], val_coef=x[n:], train_x=x[:n],
                    val_x=x[n:], residual_rms=0.0)


def test_weighted_loss_lowers_the_weighted_pixels_errors():
    """Same start, same data: weighting pixels 3 and 4 30x makes the network fit them
    several times better than the unweighted continuation, at a price elsewhere."""
    pca = _problem()
    kw = dict(n_pca=6, hidden=(2,), phases=((3e-3, 64),), max_minutes=5.0, seed=1)
    start, _ = train_mlp(EmulatorConfig(patience=3, max_epochs_per_phase=3, **kw), pca,
                         progress=False)
    more = EmulatorConfig(patience=10, max_epochs_per_phase=15, **kw)
    w = np.ones(12)
    w[3:5] = 30.0
    w /= w.mean()
    plain, _ = train_mlp(more, pca, progress=False, start=start)
    weighted, hist = train_mlp(more, pca, progress=False, start=start, pixel_weights=w)
    true = pca.val_coef @ pca.basis * 0.5

    def rms(net):
        return np.sqrt(np.mean((net.ln_spectrum(pca.val_x) - true) ** 2, axis=0))

    assert rms(weighted)[3:5].max() < 0.5 * rms(plain)[3:5].min()
    assert rms(weighted)[[0, 1, 2, 5]].mean() > rms(plain)[[0, 1, 2, 5]].mean()
    assert hist["best_val_rms_lnl_unweighted"] == pytest.approx(np.sqrt(np.mean(rms(weighted)**2)),
                                                                rel=1e-3)
    # the continuation kept the start network's standardisations
    np.testing.assert_array_equal(weighted.param_scale, start.param_scale)
    with pytest.raises(ValueError, match="mean 1"):
        train_mlp(more, pca, progress=False, start=start, pixel_weights=np.ones(12) * 2)


@pytest.fixture(scope="module")
def base(tmp_path_factory, fake_table):
    tmp = tmp_path_factory.mktemp("emu_ft")
    path = write_ssp_table(fake_table, tmp / "fake.h5")
    kw = dict(sps=str(path), n_train=2000, n_val=200, n_pca=8, hidden=(16,), patience=2,
              n_validate=50, seed=3, max_minutes=0.5)
    cfg = EmulatorConfig(name="fake", phases=((3e-3, 128),), max_epochs_per_phase=5, **kw)
    train_emulator(cfg, tmp / "base", work_dir=tmp / "work", progress=False,
                   log=lambda *a: None)
    return tmp, kw


def test_continue_an_emulator_with_pixel_weights(base):
    tmp, kw = base
    cfg = EmulatorConfig(name="fake_pw", phases=((1e-3, 256),), max_epochs_per_phase=4,
                         init_from=str(tmp / "base"), pixel_weight_power=2.0,
                         pixel_weight_max=10.0, pixel_weight_wave=(2000.0, 9000.0), **kw)
    logs = []
    train_emulator(cfg, tmp / "pw", work_dir=tmp / "work", progress=False, log=logs.append)
    a, b = Emulator.load(tmp / "base"), Emulator.load(tmp / "pw")
    # no new PCA: the basis and standardisations are the start's
    np.testing.assert_array_equal(a.networks[0].pca_basis, b.networks[0].pca_basis)
    np.testing.assert_array_equal(a.networks[0].spectrum_shift, b.networks[0].spectrum_shift)
    assert any("pixel weights from the starting network" in m for m in logs)
    manifest = json.loads((tmp / "pw" / "manifest.json").read_text())
    assert manifest["inputs"]["init_from_manifest_sha256"] == a.manifest_sha256
    recipe = (tmp / "pw" / "RECIPE.md").read_text()
    assert f"--init-from {tmp / 'base'}" in recipe and "--pixel-weight-power 2" in recipe
    assert "--phases 0.001:256" in recipe and "--pixel-weight-wave 2000,9000" in recipe
    assert manifest["config"]["config"]["pixel_weight_wave"] == [2000.0, 9000.0]
    val = next((tmp / "work").glob("val_*.h5"))
    assert pixel_errors(b.networks[0], val, "warped").shape == (len(a.wave),)


def test_continue_refuses_another_architecture(base):
    tmp, kw = base
    cfg = EmulatorConfig(name="fake_bad", **{**kw, "n_pca": 6}, init_from=str(tmp / "base"))
    with pytest.raises(ValueError, match="n_pca"):
        train_emulator(cfg, tmp / "bad", work_dir=tmp / "work", progress=False,
                       log=lambda *a: None)


def test_cli_parses_the_continuation_options():
    from provabgs_sbi.cli.main import build_parser

    args = build_parser().parse_args(
        ["emulator", "train", "--init-from", "emulator/x", "--phases", "2e-4:2048,1e-4:4096",
         "--pixel-weight-power", "3", "--pixel-weight-wave", "2500,11000"])
    assert args.phases == ((2e-4, 2048), (1e-4, 4096))
    assert args.pixel_weight_wave == (2500.0, 11000.0) and args.init_from == "emulator/x"
    for bad in (["--phases", "2e-4"], ["--phases", "0:10"], ["--pixel-weight-wave", "3,2"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["emulator", "train", *bad])

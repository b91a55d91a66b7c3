"""The SED posterior on top of the flow: support, flags, save/load, catalog fits."""
import json
import warnings

import h5py
import numpy as np
import pytest

from provabgs_sbi.inference import training_set as ts
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.model.photometry import mag_to_nanomaggies
from provabgs_sbi.flags import FLAG_INVALID_X, FLAG_MISSING_BAND, FLAG_TOO_FEW_BANDS, FLAG_Z_RANGE
from provabgs_sbi.inference.posterior import Posterior


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shifted_emulator):
    from provabgs_sbi.workflows.train import train_posterior
    from provabgs_sbi.inference.flows import FlowConfig

    tmp = tmp_path_factory.mktemp("post")
    train = ts.make_training_set(tmp / "train.h5", ts.TrainingSetConfig(n=4000, seed=1, chunk=4000),
                                 shifted_emulator, progress=False)
    test = ts.make_training_set(tmp / "test.h5", ts.TrainingSetConfig(n=300, seed=2, chunk=2000),
                                shifted_emulator, progress=False)
    post, metrics = train_posterior(train, tmp / "flow", FlowConfig.preset("tiny", max_epochs=15),
                                    test_path=test, n_test_samples=200, progress=False,
                                    log=lambda *a: None)
    return post, metrics, tmp


def test_samples_inside_prior_support(trained):
    post, _, tmp = trained
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    s = post.sample(x[:20], 300, seed=0)
    assert s.shape == (20, 300, 12)
    assert np.all(post.prior.in_support(s.reshape(-1, 12)))
    # Far outside the training data: still inside the support.
    far = x[:2].copy()
    far[:, :5] += 3.0
    assert np.all(post.prior.in_support(post.sample(far, 100, seed=1).reshape(-1, 12)))


def test_flags_and_strict(trained):
    post, _, tmp = trained
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    bad = x[:6].copy()
    bad[0, 2] = np.nan
    bad[1, 6] = -0.1
    bad[2, 10] = 0.5
    bad[4, 10] = np.nan
    bad[5, 10] = 0.0
    f = post.flags(bad)
    few = FLAG_MISSING_BAND | FLAG_TOO_FEW_BANDS     # this flow needs all five bands
    assert f.tolist() == [few, few, FLAG_Z_RANGE, 0, FLAG_INVALID_X, FLAG_Z_RANGE]
    problems = post.band_problems(bad)
    assert np.flatnonzero(problems["missing"][0]).tolist() == [2]
    assert np.flatnonzero(problems["missing"][1]).tolist() == [1]
    with pytest.raises(ValueError, match="cannot be fitted"):
        post.sample(bad, 10)
    s = post.sample(bad, 10, strict=False)
    assert np.all(np.isnan(s[[0, 1, 2, 4, 5]])) and np.all(np.isfinite(s[3]))


def test_save_load_roundtrip(trained):
    post, _, tmp = trained
    back = Posterior.load(tmp / "flow")
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    np.testing.assert_array_equal(back.sample(x[:3], 50, seed=4), post.sample(x[:3], 50, seed=4))
    assert back.z_range == post.z_range


def test_log_prob_matches_flow_density(trained):
    post, _, tmp = trained
    theta, warped, x, _ = ts.load_training_set(tmp / "test.h5")
    lp = post.log_prob(theta[:10], x[:10])
    lw = post.flow.log_prob(warped[:10], x[:10])
    jac = -(2 * np.log(warped[:10, 1]) + np.log(warped[:10, 2])) - np.log(theta[:10, 7] * np.log(10)) \
        - np.log(theta[:10, 8] * np.log(10))
    np.testing.assert_allclose(lp, lw + jac, rtol=1e-10)


def test_coverage_metrics_recorded(trained):
    _, metrics, _ = trained
    cov = metrics["test"]["coverage"]
    assert set(cov) == {"0.68", "0.95"} and len(cov["0.68"]) == 12


def test_combine_posteriors_into_an_ensemble(trained, tmp_path):
    """`flow combine`: a second tiny posterior (probit map, other seed) on the same training
    set and the first one saved as one ensemble; it loads with every file hashed, samples
    inside the support, and its density is the mean of the members' (1e-10). Posteriors
    from another training set, and a non-empty output folder, are refused."""
    from provabgs_sbi.workflows.train import train_posterior
    from provabgs_sbi.cli.main import main
    from provabgs_sbi.inference.ensemble import FlowEnsemble
    from provabgs_sbi.inference.flows import FlowConfig

    post, _, tmp = trained
    second, _ = train_posterior(tmp / "train.h5", tmp_path / "second",
                                FlowConfig.preset("tiny", max_epochs=10, seed=2,
                                                  box_transform="probit"),
                                checkpoint_dir=tmp_path / "ckpt", progress=False,
                                log=lambda *a: None)
    out = tmp_path / "ens"
    assert main(["flow", "combine", str(tmp / "flow"), str(tmp_path / "second"),
                 "--out", str(out), "--test", str(tmp / "test.h5")]) == 0
    ens = Posterior.load(out)
    assert isinstance(ens.flow, FlowEnsemble) and ens.flow.n_members == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"flow/ensemble.json", "flow/member_0/weights.npz",
            "flow/member_1/weights.npz"} <= set(manifest["flow_files"])
    assert len(manifest["metrics"]["test_log_prob"]["members"]) == 2
    theta, _, x, _ = ts.load_training_set(tmp / "test.h5")
    s = ens.sample(x[:5], 200, seed=0)
    assert s.shape == (5, 200, 12) and np.all(ens.prior.in_support(s.reshape(-1, 12)))
    lp = ens.log_prob(theta[:10], x[:10])
    direct = np.log(0.5 * (np.exp(post.log_prob(theta[:10], x[:10]))
                           + np.exp(second.log_prob(theta[:10], x[:10]))))
    np.testing.assert_allclose(lp, direct, rtol=0, atol=1e-10)
    with pytest.raises(FileExistsError):
        main(["flow", "combine", str(tmp / "flow"), str(tmp_path / "second"), "--out", str(out)])
    moved = Posterior.load(tmp_path / "second")
    moved.info["training_set"] = {**moved.info["training_set"], "config": {"seed": 99}}
    moved.save(tmp_path / "other_set")
    from provabgs_sbi.workflows.train import combine_posteriors
    with pytest.raises(ValueError, match="not trained on galaxies drawn like"):
        combine_posteriors([tmp / "flow", tmp_path / "other_set"], tmp_path / "ens3")


def test_fit_catalog_writes_and_resumes(trained, tmp_path):
    from provabgs_sbi.workflows.fit import fit_catalog

    post, _, tmp = trained
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    x = x[:7].copy()
    flux = mag_to_nanomaggies(x[:, :5])
    sig = flux * np.log(10) / 2.5 * x[:, 5:10]
    z = x[:, 10].copy()
    z[3] = 0.9                      # outside the trained range: kept and flagged
    cat = PhotometryCatalog.from_arrays(flux, 1 / sig**2, z)
    out = fit_catalog(post, cat, tmp_path / "fit.h5", n_samples=40, chunk=3,
                      derived_model=post_model(tmp), progress=False)
    with h5py.File(out) as fh:
        assert fh["samples"].shape == (7, 40, 12)
        summ = fh["summary"][:]
        assert np.isnan(fh["samples"][3]).all() and summ["flags"][3] & FLAG_Z_RANGE
        assert np.all(np.isfinite(summ["log_mstar_p50"][[0, 1, 2, 4, 5, 6]]))
        assert np.all(summ["log_mstar_p16"] <= summ["log_mstar_p84"] + 1e-12) or np.isnan(summ["log_mstar_p16"]).any()
        assert "derived/sfr_1gyr" in fh


def test_fit_catalog_posterior_predictive_check(trained, tmp_path, shifted_emulator):
    from provabgs_sbi.workflows.fit import fit_catalog
    from provabgs_sbi.flags import FLAG_POOR_FIT
    from provabgs_sbi.inference.ppc import CHI2_POOR_FIT, best_draw_chi2, median_model_chi2

    post, _, tmp = trained
    theta, _, x, _ = ts.load_training_set(tmp / "test.h5")
    # The truth as a "posterior" of noiseless photometry: chi^2 = 0 (to the float32 of the
    # TF path that made the training set's true magnitudes).
    with h5py.File(tmp / "test.h5") as fh:
        mag_true = fh["mag_true"][:5]
    xt = np.column_stack([mag_true, x[:5, 5:10], x[:5, 10]])
    chi2, mflux = median_model_chi2(np.repeat(theta[:5, None], 3, axis=1), xt, shifted_emulator)
    np.testing.assert_allclose(chi2, 0.0, atol=1e-6)
    np.testing.assert_allclose(mflux, mag_to_nanomaggies(mag_true), rtol=2e-5)
    # The best of several draws, one of them the truth: chi^2 ~ 0 and that draw's flux.
    draws = np.repeat(theta[:5, None], 4, axis=1).copy()
    draws[:, :3, 0] += 0.3                                    # three draws 0.75 mag too bright
    chi2, best = best_draw_chi2(draws, xt, shifted_emulator, sigma_sys=0.0)
    np.testing.assert_allclose(chi2, 0.0, atol=1e-6)
    np.testing.assert_allclose(best, mag_to_nanomaggies(mag_true), rtol=2e-5)

    x = x[:6].copy()
    flux = mag_to_nanomaggies(x[:, :5])
    sig = flux * np.log(10) / 2.5 * x[:, 5:10]
    flux[2, 0] *= 30.0                   # a u band no model of this galaxy can fit
    z = x[:, 10].copy()
    z[4] = 0.9                           # not sampled: no check
    cat = PhotometryCatalog.from_arrays(flux, 1 / sig**2, z)
    out = fit_catalog(post, cat, tmp_path / "fit.h5", n_samples=40, chunk=4,
                      derived_model=post_model(tmp), progress=False, model=shifted_emulator)
    with h5py.File(out) as fh:
        summ = fh["summary"][:]
        assert fh["model_flux_best"].shape == (6, 5)
    chi2 = summ["chi2_best"]
    assert np.isnan(chi2[4]) and np.all(np.isfinite(chi2[[0, 1, 2, 3, 5]]))
    assert chi2[2] > CHI2_POOR_FIT and summ["flags"][2] & FLAG_POOR_FIT
    for i in (0, 1, 3, 5):
        assert bool(summ["flags"][i] & FLAG_POOR_FIT) == (chi2[i] > CHI2_POOR_FIT)


def test_flow_overflow_gives_nan_and_flag(trained, tmp_path, monkeypatch):
    """A galaxy whose flow pass overflows gets no samples (not a biased subset): strict
    sampling raises, strict=False gives NaN, and catalog fits flag it."""
    from provabgs_sbi.workflows.fit import fit_catalog
    from provabgs_sbi.flags import FLAG_FLOW_FAILED

    post, _, tmp = trained
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    x = x[:4].copy()
    real_sample = post.flow.sample

    def overflow_row_1(x_obs, n, seed=None, chunk_size=16384, nan_policy="raise"):
        out = real_sample(x_obs, n, seed=seed, chunk_size=chunk_size, nan_policy=nan_policy)
        hit = np.all(np.isclose(x_obs, x[1]), axis=1)
        out[hit, : n // 2] = np.nan          # part of the draws overflowed
        return out

    monkeypatch.setattr(post.flow, "sample", overflow_row_1)
    with pytest.raises(ValueError, match="overflowed"):
        post.sample(x, 10, seed=0)
    got = post.sample(x, 10, seed=0, strict=False)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2, 3]]).all()
    flux = mag_to_nanomaggies(x[:, :5])
    sig = flux * np.log(10) / 2.5 * x[:, 5:10]
    cat = PhotometryCatalog.from_arrays(flux, 1 / sig**2, x[:, 10])
    out = fit_catalog(post, cat, tmp_path / "fit.h5", n_samples=10, derived_model=post_model(tmp),
                      progress=False)
    with h5py.File(out) as fh:
        flags = fh["summary"]["flags"][:]
    assert flags[1] & FLAG_FLOW_FAILED and not np.any(flags[[0, 2, 3]] & FLAG_FLOW_FAILED)


def post_model(tmp):
    from provabgs_sbi import SEDConfig, SEDModel

    from .conftest import make_fake_ssp_table
    return SEDModel(make_fake_ssp_table(), config=SEDConfig(resolution=None))


@pytest.mark.slow
def test_validate_with_mcmc_and_importance_sampling_end_to_end(trained, shifted_emulator, tmp_path):
    """The validation command's whole path on the tiny flow: calibration figures and JSON,
    MCMC of two test galaxies (a few iterations) and their importance-sampled posteriors,
    ANPE against both and MCMC against importance sampling."""
    import json

    from provabgs_sbi.workflows.validate import validate_posterior

    post, _, _ = trained
    res = validate_posterior(post, shifted_emulator, tmp_path / "out", n_test=60, n_samples=50,
                             seed=0, work_dir=tmp_path / "work", progress=False, n_mcmc_test=2,
                             mcmc_kwargs=dict(n_walkers=22, n_steps=40, burn_in=10,
                                              precondition="flow"),
                             importance_kwargs=dict(target_ess=100, batch=2000,
                                                    max_proposals=4000, n_resample=300))
    for name in ("fig3_pp.png", "fig4_sbc.png", "tarp.png", "mcmc_pp.png", "anpe_vs_mcmc.png",
                 "validation.json"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    js = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert js["n_test"] == 60 and len(js["parameters"]) == 16
    mc = js["mcmc"]
    assert mc["test"]["kind"] == "mcmc" and mc["test"]["n_galaxies"] == 2
    # The MCMC sampled the flow's base noise (NeuTra), recorded as such.
    assert mc["settings"]["precondition"] == "flow"
    assert mc["files"]["test"].endswith("mcmc_test_flow.h5")
    with h5py.File(mc["files"]["test"], "r") as fh:
        assert json.loads(fh.attrs["settings"])["config"]["precondition"] == "flow"
    assert mc["importance"]["test"]["kind"] == "importance"
    assert mc["importance"]["test"]["n_galaxies"] == 2
    reliable = [g["row"] for g in mc["importance"]["test"]["per_galaxy"] if g["reliable"]]
    assert mc["mcmc_vs_importance"]["test"]["rows"] == reliable   # only reliable references
    assert res["mcmc"]["importance"]["test"]["per_galaxy"][0]["ess"] > 0


def test_validate_on_a_given_held_out_file(trained, shifted_emulator, tmp_path):
    """`validate --test-set FILE`: the first n galaxies of that file are the test set (their
    coverage matches one computed here from the same draws); the training file itself, or
    more galaxies than the file holds, are refused."""
    from provabgs_sbi.workflows.validate import validate_posterior

    post, _, tmp = trained
    res = validate_posterior(post, shifted_emulator, tmp_path / "out", n_test=200,
                             n_samples=50, progress=False, test_path=tmp / "test.h5")
    assert res["n_test"] == 200 and res["test_set"]["file"] == str(tmp / "test.h5")
    assert res["test_set"]["config"]["seed"] == 2
    theta, _, x, _ = ts.load_training_set(tmp / "test.h5")
    s = post.sample(x[:200], 50, seed=0)
    lo, hi = np.percentile(s, [16, 84], axis=1)
    inside = ((theta[:200] >= lo) & (theta[:200] <= hi)).mean(axis=0)
    got = [res["parameters"][n]["coverage"]["0.68"] for n in list(res["parameters"])[:12]]
    np.testing.assert_allclose(got, inside, atol=1e-12)
    with pytest.raises(ValueError, match="not held out"):
        validate_posterior(post, shifted_emulator, tmp_path / "bad", n_test=100, n_samples=20,
                           progress=False, test_path=tmp / "train.h5")
    with pytest.raises(ValueError, match="fewer than n_test"):
        validate_posterior(post, shifted_emulator, tmp_path / "bad", n_test=301, n_samples=20,
                           progress=False, test_path=tmp / "test.h5")


def test_validate_refuses_another_emulator_unless_allowed(trained, shifted_emulator, tmp_path):
    """Test galaxies must come from the emulator the training set was made with (when both
    record it): another one is refused, for drawn and for given test sets, unless allowed."""
    import copy

    from provabgs_sbi.inference.training_set import check_emulator
    from provabgs_sbi.workflows.validate import validate_posterior

    post, _, tmp = trained
    ours, other = "a" * 64, "b" * 64
    post = copy.copy(post)
    post.info = {**post.info, "training_set": {**post.training_set_settings()[0],
                                               "emulator": ours}}
    emu = copy.copy(shifted_emulator)
    emu.manifest_sha256 = other
    with pytest.raises(ValueError, match="not the emulator the posterior's training set"):
        validate_posterior(post, emu, tmp_path / "a", n_test=50, n_samples=20, progress=False)
    emu.manifest_sha256 = ours
    # test.h5 records no emulator id: not checked; one that records another is refused.
    res = validate_posterior(post, emu, tmp_path / "b", n_test=50, n_samples=20,
                             progress=False, test_path=tmp / "test.h5")
    assert res["emulator"] == {"manifest_sha256": ours, "training_set_emulators": [ours]}
    other_file = {"config": {"seed": 5}, "emulator": other}
    with pytest.raises(ValueError, match="emulator of x.h5"):
        check_emulator(other_file["emulator"], post.training_set_settings(), "the emulator of x.h5")
    emu.manifest_sha256 = other
    res = validate_posterior(post, emu, tmp_path / "c", n_test=50, n_samples=20,
                             progress=False, test_path=tmp / "test.h5", allow_other_emulator=True)
    assert res["emulator"]["manifest_sha256"] == other
    # Drawn test sets are cached per emulator.
    validate_posterior(post, emu, tmp_path / "d", n_test=40, n_samples=20, progress=False,
                       work_dir=tmp_path / "work", allow_other_emulator=True)
    assert (tmp_path / "work" / f"test_default_40_s0_e{other[:12]}.h5").exists()
    check_emulator("", post.training_set_settings(), "unrecorded")        # not checked
    check_emulator(other, [{"emulator": ""}], "unrecorded")


def test_flow_train_cli_takes_any_config_field(trained, tmp_path, capsys):
    from provabgs_sbi.cli.main import main

    _, _, tmp = trained
    out = tmp_path / "cli_flow"
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(out), "--preset", "tiny",
                 "--max-epochs", "2", "--checkpoint-dir", str(tmp_path / "ck"),
                 "--set", "weight_decay=0.1", "lr_patience=2", "hidden_units=[8, 8]"]) == 0
    cfg = Posterior.load(out).flow.config
    assert (cfg.weight_decay, cfg.lr_patience, cfg.hidden_units, cfg.max_epochs) == \
        (0.1, 2, (8, 8), 2)
    capsys.readouterr()
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(tmp_path / "bad"),
                 "--preset", "tiny", "--set", "weight_dekay=0.1"]) != 0
    assert "unknown FlowConfig field 'weight_dekay'" in capsys.readouterr().err
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(tmp_path / "bad"),
                 "--preset", "tiny", "--set", "weight_decay=-1"]) != 0
    assert "weight_decay must be >= 0" in capsys.readouterr().err


def test_flow_train_whiten_mags(trained, tmp_path):
    """--whiten-mags whitens the five magnitude columns of x; with --init the flow starts as
    exactly the given one (its first epoch at a negligible step size scores as it did)."""
    from provabgs_sbi.cli.main import main

    post, _, tmp = trained
    out = tmp_path / "white"
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(out), "--preset", "tiny",
                 "--max-epochs", "1", "--whiten-mags", "--init", str(tmp / "flow"),
                 "--checkpoint-dir", str(tmp_path / "ck"),
                 "--set", "learning_rate=1e-10", "min_learning_rate=1e-10"]) == 0
    white = Posterior.load(out)
    assert white.flow.config.whiten_columns == (0, 1, 2, 3, 4)
    assert white.flow._x_whiten.shape == (5, 5)
    assert "--whiten-mags" in (out / "RECIPE.md").read_text()
    assert abs(white.flow.history[0]["val_loss"] - post.flow.best_val_loss) < 0.01


def test_flow_train_defaults_to_the_auto_procedure(trained, tmp_path):
    """Without --preset, flow train runs ConditionalFlow.fit's default procedure (both
    candidates, the better kept, recorded in the saved config); --set reaches both."""
    from provabgs_sbi.cli.main import main
    from provabgs_sbi.inference.flows import AUTO_RULE

    _, _, tmp = trained
    out = tmp_path / "auto_flow"
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(out), "--max-epochs", "1",
                 "--checkpoint-dir", str(tmp_path / "ck"),
                 "--set", "jit_compile=false", "hidden_units=[8, 8]", "n_transforms=2"]) == 0
    cfg = Posterior.load(out).flow.config
    assert cfg.auto_rule.startswith(AUTO_RULE + " (affine ") and ", spline " in cfg.auto_rule
    assert (cfg.max_epochs, cfg.hidden_units, cfg.box_transform) == (1, (8, 8), "plateau")
    assert {p.name for p in (tmp_path / "ck").iterdir()} == {"affine", "spline"}


def test_flow_train_fine_tunes_a_flow_on_joined_training_sets(trained, shifted_emulator,
                                                              tmp_path, capsys):
    """`flow train A.h5 B.h5 --init FOLDER`: the two files are joined (6,000 galaxies), training
    starts from the given flow (its first epoch is far better than a random start's, and the
    manifest names the starting weights), and a mixture, a changed architecture or two files
    of one seed are refused with a clear error."""
    from provabgs_sbi.cli.main import main
    from provabgs_sbi.io.hashing import hash_arrays as _hash_arrays

    post, _, tmp = trained
    extra = ts.make_training_set(tmp_path / "extra.h5", ts.TrainingSetConfig(n=2000, seed=3,
                                                                             chunk=2000),
                                 shifted_emulator, progress=False)
    out = tmp_path / "tuned"
    assert main(["flow", "train", str(tmp / "train.h5"), str(extra), "--out", str(out),
                 "--preset", "tiny", "--max-epochs", "2", "--init", str(tmp / "flow"),
                 "--checkpoint-dir", str(tmp_path / "ck"),
                 "--set", "learning_rate=1e-4", "min_learning_rate=1e-5"]) == 0
    tuned = Posterior.load(out)
    assert tuned.info["n_train"] == 6000
    assert [s["config"]["seed"] for s in tuned.info["training_sets"]] == [1, 3]
    manifest = json.loads((out / "manifest.json").read_text())
    start = _hash_arrays(*post.flow.get_weights())
    assert manifest["inputs"]["init_weights_sha256"] == start
    assert tuned.flow.init_weights_sha256 == start
    fresh_first = post.flow.history[0]["val_loss"]
    assert tuned.flow.history[0]["val_loss"] < post.flow.best_val_loss + 0.5 < fresh_first
    # The fine-tuned flow mixes with a flow of the first file alone (galaxies drawn alike),
    # but a "held-out" file of a training seed is refused.
    assert main(["flow", "combine", str(tmp / "flow"), str(out), "--out",
                 str(tmp_path / "mixed")]) == 0
    mixed = Posterior.load(tmp_path / "mixed")
    assert mixed.info["member_n_train"] == [4000, 6000]
    assert [[s["config"]["seed"] for s in m] for m in mixed.info["member_training_sets"]] == \
        [[1], [1, 3]]
    capsys.readouterr()
    assert main(["flow", "combine", str(tmp / "flow"), str(out), "--out",
                 str(tmp_path / "mixed2"), "--test", str(extra)]) == 2
    assert "not held out" in capsys.readouterr().err

    capsys.readouterr()
    ens = tmp_path / "ens"
    second = tmp_path / "second"
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(second), "--preset",
                 "tiny", "--max-epochs", "1", "--seed", "4",
                 "--checkpoint-dir", str(tmp_path / "ck2")]) == 0
    assert main(["flow", "combine", str(tmp / "flow"), str(second), "--out", str(ens)]) == 0
    capsys.readouterr()
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(tmp_path / "bad"),
                 "--preset", "tiny", "--init", str(ens)]) == 2
    assert "pass one member to --init" in capsys.readouterr().err
    assert main(["flow", "train", str(tmp / "train.h5"), "--out", str(tmp_path / "bad"),
                 "--preset", "tiny", "--init", str(ens / "flow" / "member_0"),
                 "--set", "hidden_units=[8, 8]"]) == 2
    assert "it differs in hidden_units" in capsys.readouterr().err
    assert main(["flow", "train", str(tmp / "train.h5"), str(tmp / "train.h5"), "--out",
                 str(tmp_path / "bad"), "--preset", "tiny"]) == 2
    assert "share a seed" in capsys.readouterr().err

    # Fine-tuned on the other file alone, the flow has still seen the first file's galaxies
    # (through its starting weights): they are not held out from it, nor from a mixture with
    # it, and fine-tuning a mixture's member carries its member's training sets along.
    only = tmp_path / "only"
    assert main(["flow", "train", str(extra), "--out", str(tmp_path / "bad"), "--preset", "tiny",
                 "--max-epochs", "1", "--init", str(tmp / "flow"), "--test", str(tmp / "train.h5"),
                 "--checkpoint-dir", str(tmp_path / "ck3")]) == 2
    assert "not held out" in capsys.readouterr().err
    assert main(["flow", "train", str(extra), "--out", str(only), "--preset", "tiny",
                 "--max-epochs", "1", "--init", str(tmp / "flow"),
                 "--checkpoint-dir", str(tmp_path / "ck3")]) == 0
    only_post = Posterior.load(only)
    assert [s["config"]["seed"] for s in only_post.training_set_settings()] == [3]
    assert [s["config"]["seed"] for s in only_post.seen_training_set_settings()] == [3, 1]
    assert main(["flow", "combine", str(second), str(only), "--out", str(tmp_path / "m3")]) == 0
    m3 = Posterior.load(tmp_path / "m3")
    assert sorted(s["config"]["seed"] for s in m3.seen_training_set_settings()) == [1, 1, 3]
    from provabgs_sbi.cli.flow_commands import _load_init_flow
    assert [s["config"]["seed"] for s in _load_init_flow(tmp_path / "m3" / "flow" / "member_1")[1]] \
        == [3, 1]


@pytest.mark.slow
def test_mcmc_cli_preconditioned_by_a_posterior_folder(trained, fake_emulator, tmp_path, capsys):
    """`provabgs-sbi mcmc --precondition FOLDER` takes a posterior folder (its flow is used)
    and records the flow in the results file; a few iterations only."""
    from astropy.table import Table

    from provabgs_sbi.cli.main import main

    _, _, tmp = trained
    _, _, x, _ = ts.load_training_set(tmp / "test.h5")
    bands = "ugriz"
    cols = {f"mag_{b}": x[:2, k] for k, b in enumerate(bands)}
    cols.update({f"err_{b}": x[:2, 5 + k] for k, b in enumerate(bands)})
    cols["z"] = x[:2, 10]
    Table(cols).write(tmp_path / "cat.fits")
    fake_emulator.save(tmp_path / "emu")
    out = tmp_path / "mcmc.h5"
    args = ["mcmc", str(tmp_path / "cat.fits"), "--mag-cols", ",".join(f"mag_{b}" for b in bands),
            "--err-cols", ",".join(f"err_{b}" for b in bands), "--z-col", "z", "--rows", "0",
            "--out", str(out), "--emulator", str(tmp_path / "emu"), "--walkers", "22",
            "--steps", "20", "--burn-in", "5", "--precondition", str(tmp / "flow")]
    assert main(args) == 0
    assert "1 fitted now" in capsys.readouterr().out
    with h5py.File(out, "r") as fh:
        settings = json.loads(fh.attrs["settings"])
        assert settings["config"]["precondition"] == "flow"
        assert len(settings["precondition"]["weights_sha256"]) == 64
        assert fh["row_0"].attrs["status"] == "ok"


def test_summary_percentiles_keep_infinite_draws():
    """log sSFR is -inf in draws with no star formation in the last Gyr: a percentile that
    falls among those draws is -inf, not NaN; other columns and NaN-only rows as numpy's."""
    from provabgs_sbi.workflows.fit import summary_percentiles

    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 100, 2))
    v[0, :30, 1] = -np.inf          # 30% of galaxy 0's draws: p16 is -inf, p50 finite
    v[1, :, 1] = -np.inf            # all of galaxy 1's draws
    v[2, :10, 0] = np.nan           # missing draws are ignored
    with np.errstate(all="raise"):
        q = summary_percentiles(v)
    assert q.shape == (3, 3, 2)
    assert q[0, 0, 1] == -np.inf and np.isfinite(q[1, 0, 1]) and np.isfinite(q[2, 0, 1])
    assert np.all(q[:, 1, 1] == -np.inf)
    np.testing.assert_allclose(q[:, 2, 0], np.percentile(v[2, 10:, 0], [16, 50, 84]))
    np.testing.assert_allclose(q[:, 0, 0], np.percentile(v[0, :, 0], [16, 50, 84]))


def test_summary_percentiles_equal_numpy_nanpercentile():
    """The sort-based percentiles are numpy's, number for number, with NaN draws, +-inf
    draws and all-NaN columns (the inverted-CDF rank where two infinities meet)."""
    from provabgs_sbi.workflows.fit import summary_percentiles

    rng = np.random.default_rng(5)
    for n in (1000, 37):
        v = rng.normal(size=(40, n, 6))
        frac = rng.random((40, 1))
        v[:, :, 1] = np.where(rng.random((40, n)) < frac, -np.inf, v[:, :, 1])
        v[:, :, 2] = np.where(rng.random((40, n)) < frac, np.inf, v[:, :, 2])
        v[rng.random(v.shape) < 0.02] = np.nan
        v[3, :, 4] = np.nan
        v[4, 1:, 5] = np.nan
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanpercentile(v, [16, 50, 84], axis=1)
            undefined = np.isnan(ref) & np.any(np.isinf(v), axis=1)[None]
            ref[undefined] = np.nanpercentile(v, [16, 50, 84], axis=1,
                                              method="inverted_cdf")[undefined]
        assert np.any(undefined)
        np.testing.assert_array_equal(summary_percentiles(v), ref)

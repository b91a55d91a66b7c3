"""The mask-aware conditioning of issue 19: encoding catalog x with a floor, and the
training draws that cover inflated errors, floors and missing bands."""
import numpy as np
import pytest

from provabgs_sbi.inference.conditioning import Conditioning, Regime, floor_array
from provabgs_sbi.inference.noise import default_noise_model
from provabgs_sbi.model.observation import SDSS

MAGS = np.array([[19.0, 17.5, 16.8, 16.4, 16.1]])


@pytest.fixture(scope="module")
def noise():
    return default_noise_model()


def filled(**kw):
    return Conditioning(**kw).with_fill(np.tile(MAGS, (3, 1)), np.full((3, 5), 0.02))


def test_encode_adds_floor_in_quadrature_and_masks_missing_bands():
    cond = filled()
    x = SDSS.assemble(MAGS, [[0.03, 0.004, 0.004, 0.005, 0.01]], [0.1])
    enc = cond.encode(x, floor=[0.04, 0.003, 0.0, 0.0, 0.0])
    assert enc.shape == (1, 16) and cond.size == 16 and len(cond.names) == 16
    np.testing.assert_allclose(enc[0, 5:10], [0.05, 0.005, 0.004, 0.005, 0.01])
    x[0, 1] = np.nan                               # g missing
    enc = cond.encode(x)
    assert enc[0, 1] == cond.mag_fill[1] and enc[0, 6] == cond.sigma_fill[1]
    assert enc[0, 11:].tolist() == [1, 0, 1, 1, 1] and enc[0, 10] == 0.1


@pytest.mark.parametrize("floor, match", [(0.2, "above the largest"), (-0.01, ">= 0"),
                                          ([0.1, 0.1], "one per band"), (np.nan, "finite")])
def test_bad_floors_are_refused(floor, match):
    with pytest.raises(ValueError, match=match):
        filled().encode(SDSS.assemble(MAGS, np.full((1, 5), 0.01), [0.1]), floor=floor)


def test_floor_array_broadcasts_one_value():
    assert floor_array(0.05, 5).tolist() == [0.05] * 5


@pytest.mark.parametrize("kw, match", [(dict(min_bands=0), "min_bands"), (dict(p_mask=1.0), "p_mask"),
                                       (dict(inflate_max=0.5), "inflate_max"),
                                       (dict(floor_max=-1), "floor_max")])
def test_config_is_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        Conditioning(**kw)


def test_round_trip_through_dict():
    cond = filled(min_bands=2)
    assert Conditioning.from_dict(cond.to_dict()) == cond


def test_training_draws_cover_the_mixture(noise):
    cond = filled()
    n = 40_000
    mags = np.tile(MAGS, (n, 1))
    x, floor, ok = cond.draw(mags, np.full(n, 0.1), noise, rng=1)
    missing = SDSS.missing(x)
    n_present = (~missing).sum(axis=1)
    assert n_present.min() == cond.min_bands                 # never fewer bands than allowed
    assert abs(np.mean(n_present < 5) - cond.p_mask) < 0.01
    assert abs(np.mean(floor.any(axis=1)) - cond.p_floor) < 0.01
    assert floor.max() <= cond.floor_max
    # each band is dropped equally often
    frac = missing.mean(axis=0)
    assert np.ptp(frac) < 0.01
    # inflated errors reach several times the noise model's mu + 3 s, never above the limit
    plain = noise.median_sigma(mags) + 3 * noise.scatter_sigma(mags)
    ratio = SDSS.errors(x)[ok] / plain[ok]
    assert np.nanmax(ratio) > 3 and np.nanmax(ratio) <= cond.sigma_limit(noise, MAGS)[0].max() / plain[0].min()
    # the noisy magnitudes scatter by sigma_eff
    pull = (SDSS.mags(x) - mags) / np.sqrt(SDSS.errors(x) ** 2 + floor**2)
    good = ok[:, None] & ~missing
    assert abs(np.std(pull[good]) - 1) < 0.02 and abs(np.mean(pull[good])) < 0.02


def test_regime_draws_are_fixed(noise):
    cond = filled()
    reg = Regime("no u, 3x, floor", missing=("u",), inflate=3.0, floor=0.05)
    x, floor, ok = cond.draw(np.tile(MAGS, (500, 1)), np.full(500, 0.1), noise, rng=2, regime=reg)
    assert SDSS.missing(x)[:, 0].all() and not SDSS.missing(x)[ok, 1:].any()
    assert (floor == 0.05).all()
    with pytest.raises(ValueError, match="unknown bands"):
        cond.draw(MAGS, [0.1], noise, 0, regime=Regime("bad", missing=("y",)))


def test_optional_bands_follow_coverage_and_detection_and_old_draws_are_unchanged(noise):
    """An optional band (GALEX in galex_sdss_2mass) is missing where the galaxy is not
    covered (all optional bands together, p_optional of the draws) or is fainter than the
    noise model's range; never below min_bands; a conditioning without optional bands
    draws exactly what it drew before the option existed."""
    n = 40_000
    mags = np.tile(MAGS, (n, 1))
    faint = np.arange(n) % 4 == 0
    mags[faint, 0] = noise.mag_range[0, 1] + 1.0        # u too faint for a quarter
    mags[1::8, 0] = np.inf                              # and a flux of zero
    plain = filled()
    opt = filled(optional=("u", "z"), p_optional=0.6)
    x0, f0, ok0 = plain.draw(mags, np.full(n, 0.1), noise, rng=1)
    x1, f1, ok1 = opt.draw(mags, np.full(n, 0.1), noise, rng=1)
    m0, m1 = SDSS.missing(x0), SDSS.missing(x1)
    np.testing.assert_array_equal(f0, f1)                 # same floors, inflation, noise
    assert m1[faint | (np.arange(n) % 8 == 1), 0].all()   # undetected u: always missing
    assert (~m1).sum(axis=1).min() == opt.min_bands
    # coverage: among galaxies with no random subset and u detected, both u and z are
    # missing in p_optional of them, together
    clean = ~m0.any(axis=1) & ~faint & (np.arange(n) % 8 != 1)
    assert abs(m1[clean, 0].mean() - 0.6) < 0.015
    np.testing.assert_array_equal(m1[clean, 0], m1[clean, 4])
    assert not m1[clean, 1:4].any()
    # the same regime rule: an undetected optional band is missing in "all bands" too
    xr, _, _ = opt.draw(mags[:100], np.full(100, 0.1), noise, rng=2, regime=Regime("all"))
    np.testing.assert_array_equal(SDSS.missing(xr)[:, 0], ~(mags[:100, 0] <= noise.mag_range[0, 1]))
    # a conditioning without optional bands records what it recorded before
    assert "optional" not in plain.to_dict() and Conditioning.from_dict(opt.to_dict()) == opt
    with pytest.raises(ValueError, match="optional bands"):
        Conditioning(optional=("y",))
    with pytest.raises(ValueError, match="not optional"):
        Conditioning(optional=("u", "g", "r"))


def test_optional_band_missing_on_its_own(noise):
    """p_optional_each drops each optional band of a covered, detected galaxy on its own, so
    training sees one optional band without the other (FUV without NUV); at 0 the draws are
    exactly those of a conditioning recorded before the option, and it is recorded only when
    set."""
    n = 40_000
    mags = np.tile(MAGS, (n, 1))
    base = filled(optional=("u", "z"), p_optional=0.5, p_mask=0.0)
    each = filled(optional=("u", "z"), p_optional=0.5, p_mask=0.0, p_optional_each=0.2)
    x0, _, ok = base.draw(mags, np.full(n, 0.1), noise, rng=4)
    x1, _, ok1 = each.draw(mags, np.full(n, 0.1), noise, rng=4)
    np.testing.assert_array_equal(ok, ok1)           # rows with an error <= 0 drawn: dropped
    m0, m1 = SDSS.missing(x0)[ok], SDSS.missing(x1)[ok]
    covered = ~m0[:, 0]                              # the same coverage draw in both
    assert m1[~covered][:, [0, 4]].all()
    for col in (0, 4):
        assert abs(m1[covered, col].mean() - 0.2) < 0.015
    alone = m1[covered, 0] & ~m1[covered, 4]         # u without z: 0.2 x 0.8 of covered
    assert abs(alone.mean() - 0.16) < 0.015
    assert not m1[:, 1:4].any()
    assert "p_optional_each" not in base.to_dict()
    assert Conditioning.from_dict(each.to_dict()) == each
    with pytest.raises(ValueError, match="p_optional_each"):
        filled(optional=("u",), p_optional_each=1.0)


def test_catalog_pattern_regime_draws_the_catalog_proportions(noise):
    cond = filled()
    cat = SDSS.assemble(np.tile(MAGS, (10, 1)), np.full((10, 5), 0.02), np.full(10, 0.1))
    cat[:7, 0] = np.nan            # 70% no u, 10% no u and no z, 20% all bands
    cat[7, [0, 4]] = np.nan
    reg = Regime.from_catalog("catalog patterns", cat, SDSS)
    assert dict(reg.patterns) == {(): 2.0, ("u",): 7.0, ("u", "z"): 1.0}
    n = 20_000
    x, _, ok = cond.draw(np.tile(MAGS, (n, 1)), np.full(n, 0.1), noise, rng=3, regime=reg)
    miss = SDSS.missing(x)[ok]
    assert abs(miss[:, 0].mean() - 0.8) < 0.01 and abs(miss[:, 4].mean() - 0.1) < 0.01
    assert not miss[:, 1:4].any() and not (miss[:, 4] & ~miss[:, 0]).any()
    with pytest.raises(ValueError, match="fewer than 3 bands"):
        cond.draw(MAGS, [0.1], noise, 0, regime=Regime("bad", missing=("u", "g", "r")))
    with pytest.raises(ValueError, match="positive weights"):
        Regime("bad", patterns=((("u",), 0.0),))


# ------------------------------------------------------------------ a trained mask-aware posterior
@pytest.fixture(scope="module")
def masked(tmp_path_factory, shifted_emulator):
    """A tiny mask-aware posterior trained on 4,000 galaxies (plumbing, not accuracy)."""
    from provabgs_sbi.inference import training_set as ts
    from provabgs_sbi.inference.flows import FlowConfig
    from provabgs_sbi.workflows.train import train_posterior

    tmp = tmp_path_factory.mktemp("masked")
    train = ts.make_training_set(tmp / "train.h5", ts.TrainingSetConfig(n=4000, seed=1, chunk=4000),
                                 shifted_emulator, progress=False)
    test = ts.make_training_set(tmp / "test.h5", ts.TrainingSetConfig(n=300, seed=2, chunk=2000),
                                shifted_emulator, progress=False)
    post, metrics = train_posterior(train, tmp / "flow", FlowConfig.preset("tiny", max_epochs=5),
                                    test_path=test, n_test_samples=100, progress=False,
                                    log=lambda *a: None, conditioning=Conditioning(),
                                    default_floor=0.03)
    return post, metrics, tmp


def test_mask_aware_posterior_round_trip_and_metrics(masked):
    from provabgs_sbi.inference.posterior import Posterior

    post, metrics, tmp = masked
    assert post.flow.d_x == 16 and post.min_bands == 3 and post.default_floor == 0.03
    assert metrics["test"]["regime"] == "all bands, floor 0"
    assert np.isfinite(metrics["test"]["mean_log_q"])
    back = Posterior.load(tmp / "flow")
    assert back.conditioning == post.conditioning and back.default_floor == 0.03
    x = SDSS.assemble(np.tile(MAGS, (2, 1)), np.full((2, 5), 0.02), [0.1, 0.12])
    np.testing.assert_array_equal(back.sample(x, 20, seed=3), post.sample(x, 20, seed=3))


def test_missing_bands_are_fitted_in_the_same_batch(masked):
    from provabgs_sbi.flags import FLAG_MISSING_BAND, FLAG_TOO_FEW_BANDS, has_samples

    post, _, _ = masked
    x = SDSS.assemble(np.tile(MAGS, (4, 1)), np.full((4, 5), 0.02), np.full(4, 0.1))
    x[1, 0] = np.nan                         # no u
    x[2, [0, 4]] = np.nan                    # no u, no z
    x[3, [0, 1, 4]] = np.nan                 # g, r, i ... only two left: too few
    f = post.flags(x)
    assert f.tolist()[:3] == [0, FLAG_MISSING_BAND, FLAG_MISSING_BAND]
    loud = x[:1].copy()
    loud[0, 6] = 1.0                         # a g error far beyond even the inflated range
    assert post.band_problems(loud)["sigma_high"][0].tolist() == [False, True, False, False, False]
    assert f[3] == FLAG_MISSING_BAND | FLAG_TOO_FEW_BANDS
    s = post.sample(x, 50, seed=0, strict=False)
    assert has_samples(f).tolist() == [True, True, True, False]
    assert np.isfinite(s[:3]).all() and np.isnan(s[3]).all()
    assert np.all(post.prior.in_support(s[:3].reshape(-1, 12)))


def test_floor_changes_the_input_and_is_checked(masked):
    post, _, _ = masked
    x = SDSS.assemble(MAGS, np.full((1, 5), 0.01), [0.1])
    assert post.flow_input(x)[0, 5] == pytest.approx(np.hypot(0.01, 0.03))   # default floor
    assert post.flow_input(x, floor=0)[0, 5] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="above the largest"):
        post.sample(x, 5, floor=0.5)


def test_fit_records_the_floor_and_the_bands_used(masked, tmp_path):
    import json

    import h5py

    from provabgs_sbi.io.catalog import PhotometryCatalog
    from provabgs_sbi.model.photometry import mag_to_nanomaggies
    from provabgs_sbi.workflows.fit import fit_catalog

    post, _, _ = masked
    flux = mag_to_nanomaggies(np.tile(MAGS, (3, 1)))
    ivar = 1 / (0.01 * flux) ** 2
    flux[1, 0] = np.nan                      # u missing
    cat = PhotometryCatalog.from_arrays(flux, ivar, [0.1, 0.1, 0.1])
    out = fit_catalog(post, cat, tmp_path / "fit.h5", n_samples=8, chunk=2, progress=False,
                      floor=[0.05, 0.02, 0.02, 0.02, 0.05])
    with h5py.File(out, "r") as fh:
        s = fh["summary"][:]
        assert json.loads(fh.attrs["floor"]) == [0.05, 0.02, 0.02, 0.02, 0.05]
        assert json.loads(fh.attrs["settings"])["floor"] == [0.05, 0.02, 0.02, 0.02, 0.05]
        assert np.isfinite(fh["samples"][:]).all()
    assert s["bands_used"].tolist() == [31, 30, 31]


def test_regime_validation_reports_each_regime(masked, tmp_path):
    from provabgs_sbi.workflows.validate import standard_regimes, validate_regimes

    post, _, tmp = masked
    names = [r.name for r in standard_regimes(0.03)]
    assert names[1:4] == ["no u", "no z", "no u, no z (g, r, i only)"]
    regimes = [r for r in standard_regimes(0.03) if r.name in ("no u", "errors x3")]
    res = validate_regimes(post, tmp / "test.h5", n_test=60, n_samples=40, out_dir=tmp_path,
                           regimes=regimes)
    assert list(res) == ["no u", "errors x3"]
    for r in res.values():
        assert r["n_test"] == 60 and set(r["coverage"]) == {"0.68", "0.95"}
        assert 0 <= r["max_coverage_error"] <= 1 and np.isfinite(r["mean_log_q"])
    assert res["no u"]["regime"]["missing"] == ["u"] and res["errors x3"]["regime"]["inflate"] == 3
    assert (tmp_path / "regimes.png").stat().st_size > 10_000


def test_regime_validation_refuses_another_emulator_unless_allowed(masked, tmp_path):
    """A test file made with another emulator than the training set is refused per regime
    too, and accepted with allow_other_emulator (validate --other-emulator)."""
    import copy
    import json
    import shutil

    import h5py

    from provabgs_sbi.workflows.validate import standard_regimes, validate_regimes

    post, _, tmp = masked
    post = copy.copy(post)
    post.info = {**post.info, "training_set": {**post.training_set_settings()[0],
                                               "emulator": "a" * 64}}
    other = tmp_path / "other.h5"
    shutil.copy(tmp / "test.h5", other)
    with h5py.File(other, "r+") as fh:
        fh.attrs["settings"] = json.dumps({**json.loads(fh.attrs["settings"]),
                                           "emulator": "b" * 64})
    regimes = [r for r in standard_regimes(0.03) if r.name == "no u"]
    with pytest.raises(ValueError, match="not the emulator the posterior's training set"):
        validate_regimes(post, other, n_test=30, n_samples=20, regimes=regimes)
    res = validate_regimes(post, other, n_test=30, n_samples=20, regimes=regimes,
                           allow_other_emulator=True)
    assert res["no u"]["n_test"] == 30


def test_a_regime_of_fixed_bands_reads_on_until_it_has_n_galaxies(noise):
    """With an optional band, "all bands" keeps only the galaxies that detect it: a regime
    takes the first n of the file's galaxies it can observe, not the first n rows."""
    from types import SimpleNamespace

    from provabgs_sbi.workflows.validate import observe_first

    n = 400
    mags = np.tile(MAGS, (n, 1))
    mags[::2, 0] = noise.mag_range[0, 1] + 1.0        # u not detected in every other galaxy
    post = SimpleNamespace(conditioning=filled(optional=("u",)), layout=SDSS, noise=noise)
    theta = np.arange(n, dtype=float)[:, None] * np.ones((1, 12))
    x = SDSS.assemble(mags, np.full((n, 5), 0.02), np.full(n, 0.1))
    th, xr, floor = observe_first(post, theta, x, mags, Regime("all bands"), seed=0, n=150)
    assert len(th) == len(xr) == len(floor) == 150
    assert not SDSS.missing(xr).any() and np.all(th[:, 0] % 2 == 1)   # the detected ones
    assert th[-1, 0] > 290                               # read past row 150 to find them
    th, _, _ = observe_first(post, theta, x, mags, Regime("no u", ("u",)), seed=0, n=150)
    assert len(th) == 150                              # undetected and "not covered" alike
    th, _, _ = observe_first(post, theta, x, mags, Regime("all bands"), seed=0, n=1000)
    assert len(th) == 200                              # a short file gives what it has


def test_floor_rule_needs_the_bulk_and_the_tail_to_agree():
    """The ten-band posterior's flow floor statistics (kcorrect sample): the tail alone
    passes at floor 0, where the real median is above the expected one."""
    from provabgs_sbi.workflows.floor import pick_floor

    stats = {"floors": [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1],
             "frac_real_above_p99": [0.0068, 0.02483, 0.02634, 0.02753, 0.02882, 0.02288,
                                     0.01878, 0.01349, 0.00896],
             "real_median": [15.1245, 8.3136, 5.6626, 4.4491, 3.7392, 3.2317, 2.8369, 2.2937,
                             1.9211],
             "expected_median": [12.53, 6.4954, 5.238, 4.8032, 4.6184, 4.5515, 4.4594, 4.475,
                                 4.4077]}
    assert pick_floor(stats) == (0.06, True)
    assert pick_floor(stats, target=0.03) == (0.03, True)
    assert pick_floor(stats, target=0.005) == (0.1, False)


def test_floor_choice_runs_on_a_real_like_catalog(masked, tmp_path, shifted_emulator):
    from provabgs_sbi.io.catalog import PhotometryCatalog
    from provabgs_sbi.workflows.floor import choose_floor

    post, _, tmp = masked
    rng = np.random.default_rng(0)
    mags = MAGS + rng.normal(0, 0.3, (40, 5))
    flux = 10 ** (-0.4 * (mags - 22.5))
    cat = PhotometryCatalog.from_arrays(flux, 1 / (0.02 * flux) ** 2, rng.uniform(0.05, 0.15, 40))
    res = choose_floor(post, shifted_emulator, cat, tmp / "test.h5", out_dir=tmp_path,
                       floors=(0.0, 0.05, 0.1), n_test=50, n_draws=4)
    assert res["floors"] == [0.0, 0.05, 0.1] and res["chosen"] in res["floors"]
    assert all(0 <= v <= 1 for v in res["frac_real_above_p99"])
    # a larger floor can only lower each galaxy's chi^2 scale: the real median falls
    assert res["real_median"][-1] < res["real_median"][0]
    assert (tmp_path / "floor_choice.png").exists() and (tmp_path / "floor_choice.json").exists()


def test_band_floor_start_takes_each_bands_smallest_passing_grid_value():
    from provabgs_sbi.workflows.floor import band_passes, start_band_floors

    stats = {"floors": [0.0, 0.05, 0.1],
             # bands: passes at 0; at 0.05; never; absent from the catalog
             "real_band_median": [[0.5, 3.0, 9.0, None], [0.4, 0.9, 5.0, None], [0.3, 0.5, 2.0, None]],
             "expected_band_median": [[0.6, 1.0, 1.0, 1.0], [0.6, 1.0, 1.0, 1.0], [0.6, 1.0, 1.0, 1.0]]}
    assert start_band_floors(stats) == [0.0, 0.05, 0.1, 0.0]
    # a band with real galaxies but no simulated ones cannot pass
    assert band_passes([1.0, None, 1.0], [2.0, None, None]).tolist() == [True, True, False]


def test_per_band_floors_give_way_to_a_common_floor_that_does_better():
    """Per-band floors are the default when every band passes; where one band fails even
    at the largest floor, the common floor is chosen if fewer real galaxies then lie above
    the expected 99th percentile (the ten-band posterior: 1.6% against 4.4%)."""
    from provabgs_sbi.workflows.floor import pick_band_or_common

    res = {"floors": [0.0, 0.05, 0.1], "frac_real_above_p99": [0.05, 0.03, 0.016],
           "common_chosen": 0.1, "common_met": True, "band_floors": [0.1, 0.02, 0.03],
           "band_met": False, "band_frac_real_above_p99": 0.044}
    assert pick_band_or_common(res) == (0.1, True, "common")
    assert pick_band_or_common({**res, "band_frac_real_above_p99": 0.01}) == (
        [0.1, 0.02, 0.03], False, "per_band")
    assert pick_band_or_common({**res, "band_met": True}) == ([0.1, 0.02, 0.03], True, "per_band")


def test_per_band_floor_is_chosen_recorded_and_validated(masked, tmp_path, shifted_emulator):
    """flow floor --per-band: a floor vector from the refits, recorded as the posterior's
    default (a tuple), which fits use and validation names band by band."""
    import shutil

    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.catalog import PhotometryCatalog
    from provabgs_sbi.workflows.floor import choose_floor, set_default_floor
    from provabgs_sbi.workflows.validate import standard_regimes

    from provabgs_sbi.workflows.floor import start_band_floors

    post, _, tmp = masked
    folder = tmp / "flow"
    rng = np.random.default_rng(0)
    mags = MAGS + rng.normal(0, 0.3, (40, 5))
    mags[:, 0] += rng.normal(0, 0.08, 40)           # u off the model by more than its errors
    flux = 10 ** (-0.4 * (mags - 22.5))
    cat = PhotometryCatalog.from_arrays(flux, 1 / (0.02 * flux) ** 2, rng.uniform(0.05, 0.15, 40))
    res = choose_floor(post, shifted_emulator, cat, tmp / "test.h5", out_dir=tmp_path,
                       floors=(0.0, 0.05, 0.1), n_test=50, n_draws=4, per_band=True)
    assert all(f in (0.0, 0.05, 0.1) for f in res["band_floors"])
    assert len(res["band_floors"]) == 5 and res["common_chosen"] in (0.0, 0.05, 0.1)
    assert res["chosen"] == (res["band_floors"] if res["chosen_from"] == "per_band"
                             else res["common_chosen"])
    assert 1 <= len(res["band_rounds"]) <= 6
    assert res["band_rounds"][0]["floor"] == start_band_floors(res)
    assert all(len(r["real_band_median"]) == 5 for r in res["band_rounds"])
    assert (tmp_path / "floor_choice.png").exists()
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    set_default_floor(copy, [0.02, 0.0, 0.0, 0.05, 0.1], res)
    again = Posterior.load(copy)
    assert again.default_floor == (0.02, 0.0, 0.0, 0.05, 0.1)
    np.testing.assert_array_equal(again.check_floor(None), [0.02, 0.0, 0.0, 0.05, 0.1])
    assert again.info["default_floor_evidence"]["band_floors"] == res["band_floors"]
    last = standard_regimes(again.default_floor)[-1]
    assert last.floor == (0.02, 0.0, 0.0, 0.05, 0.1)
    assert last.name == "default floor u 0.02, g 0, r 0, i 0.05, z 0.1 mag"
    assert standard_regimes(0.06)[-1].name == "default floor 0.06 mag"


def test_catalog_checks_count_flags_poor_fits_and_one_band_removed(masked, shifted_emulator):
    from provabgs_sbi.flags import FLAG_SIGMA_HIGH, has_samples
    from provabgs_sbi.workflows.catalog_checks import catalog_checks

    post, _, _ = masked
    rng = np.random.default_rng(1)
    mags = MAGS + rng.normal(0, 0.3, (40, 5))
    sigma = np.full((40, 5), 0.02)
    sigma[:4, 2] = 5.0                       # far above any trained error: flagged
    x = SDSS.assemble(mags, sigma, rng.uniform(0.05, 0.15, 40))
    x[5, [0, 5]] = np.nan                    # a galaxy without u: another band is removed
    res = catalog_checks(post, shifted_emulator, x, n_draws=4)
    flags = post.flags(x)
    assert res["n_catalog"] == 40 and res["n_fitted"] == int(has_samples(flags).sum())
    assert res["frac_sigma_flagged"] == np.mean((flags & FLAG_SIGMA_HIGH) != 0) >= 0.1
    assert 0 <= res["frac_poor_fit"] <= 1 and res["floor"] == [0.03] * 5
    one = res["one_band_removed"]
    # min_bands 3: removing one of five bands leaves every fitted galaxy fittable
    assert one["n"] == res["n_fitted"] and one["frac_fitted"] == 1.0 and one["frac_finite"] == 1.0
    blue = res["bluest_5pct_u_r"]
    ur = mags[:, 0] - mags[:, 2]
    assert blue["n"] == 2 and blue["u_r_max"] == pytest.approx(np.sort(np.delete(ur, 5))[1], abs=1e-4)
    assert 0 <= blue["frac_poor_fit"] <= 1 and 0 <= blue["frac_poor_fit_rest"] <= 1


def test_mask_aware_members_combine_and_others_are_refused(masked, shifted_emulator, tmp_path):
    import dataclasses

    from provabgs_sbi.inference.flows import FlowConfig
    from provabgs_sbi.workflows.train import combine_posteriors, train_posterior

    post, _, tmp = masked
    cfg = dataclasses.replace(post.flow.config, box_transform="probit")
    quiet = dict(progress=False, log=lambda *a: None)
    train_posterior(tmp / "train.h5", tmp_path / "probit", cfg, conditioning=Conditioning(),
                    default_floor=0.03, checkpoint_dir=tmp_path / "ck1", **quiet)
    ens, metrics = combine_posteriors([tmp / "flow", tmp_path / "probit"], tmp_path / "ens",
                                      test_path=tmp / "test.h5", n_test_samples=50, log=quiet["log"])
    assert ens.conditioning == post.conditioning and ens.default_floor == 0.03
    lp = metrics["test_log_prob"]
    assert np.isfinite(lp["ensemble"]) and len(lp["members"]) == 2
    # a mixture is at least as good as its worse member in mean log q
    assert lp["ensemble"] > min(lp["members"])
    train_posterior(tmp / "train.h5", tmp_path / "plain", FlowConfig.preset("tiny", max_epochs=2),
                    checkpoint_dir=tmp_path / "ck2", **quiet)
    with pytest.raises(ValueError, match="conditioned differently"):
        combine_posteriors([tmp / "flow", tmp_path / "plain"], tmp_path / "mixed")


def test_lowest_trusted_redshift_takes_the_run_of_failures_at_the_bottom():
    from provabgs_sbi.workflows.zrange import lowest_trusted_redshift

    edges = [0.0, 0.001, 0.003, 0.005, 0.01, 0.2]
    assert lowest_trusted_redshift({"edges": edges, "passes": [False, False, False, True, True]}) == 0.005
    assert lowest_trusted_redshift({"edges": edges, "passes": [True, False, True, True, True]}) == 0.0
    assert lowest_trusted_redshift({"edges": edges, "passes": [False, True, False, True, True]}) == 0.001


def test_a_redshift_bin_fails_on_significantly_many_outliers():
    """One outlier in 60 galaxies (1.7%) does not fail a 1% bar; nine in 300 (3%) do, eight
    (2.7%) not at the 1% level."""
    from provabgs_sbi.workflows.zrange import outlier_p_value

    assert outlier_p_value(1, 60, 0.01) > 0.4
    assert 0.01 < outlier_p_value(8, 300, 0.01) < 0.02
    assert 0.003 < outlier_p_value(9, 300, 0.01) < 0.004
    assert outlier_p_value(0, 300, 0.01) == 1.0


def test_redshift_restriction_is_measured_recorded_flagged_and_validated(masked, tmp_path):
    """flow zrange: per-bin z-scores of held-out galaxies; a recorded lowest redshift makes
    fits flag galaxies below it and validation use test galaxies above it only."""
    import shutil

    from provabgs_sbi.flags import FLAG_Z_RANGE
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.workflows.validate import _held_out_set
    from provabgs_sbi.workflows.zrange import redshift_calibration, restrict_redshift

    post, _, tmp = masked
    res = redshift_calibration(post, tmp / "test.h5", edges=(0.0, 0.05, 0.1, 0.2), n_per_bin=20,
                               n_samples=30)
    assert res["edges"] == [0.0, 0.05, 0.1, 0.2] and len(res["passes"]) == 3
    assert all(0 < n <= 20 for n in res["n"])
    assert all(0 <= f <= 1 for f in res["outlier_fraction"]) and len(res["zscore_sd"][0]) == 12
    # a bin fails on a binomial test of its outliers against a 1% rate, not on the raw fraction
    assert res["passes"] == [p >= res["alpha"] for p in res["p_value"]]
    assert res["z_min"] in res["edges"]
    with pytest.raises(ValueError, match="not held out"):
        redshift_calibration(post, tmp / "train.h5", n_per_bin=5, n_samples=10)
    copy = tmp_path / "copy"
    shutil.copytree(tmp / "flow", copy)
    with pytest.raises(ValueError, match="trained range"):
        restrict_redshift(copy, 0.5)
    restrict_redshift(copy, 0.05, res, command="provabgs-sbi flow zrange copy --test test.h5")
    back = Posterior.load(copy)
    assert back.z_range == (0.05, post.z_range[1])
    assert back.info["trained_z_range"] == list(post.z_range)
    assert "flow zrange" in (copy / "RECIPE.md").read_text()
    x = SDSS.assemble(np.tile(MAGS, (2, 1)), np.full((2, 5), 0.02), [0.03, 0.1])
    flags = back.flags(x)
    assert flags[0] & FLAG_Z_RANGE and not flags[1] & FLAG_Z_RANGE
    # the held-out file (drawn over the trained range) is used inside the new range only
    theta, _, xs, _, mag = _held_out_set(back, tmp / "test.h5", None)
    z = back.layout.redshift(xs)
    assert z.min() >= 0.05 and len(mag) == len(xs) == len(theta)
    full = _held_out_set(post, tmp / "test.h5", None)
    assert len(full[2]) > len(xs)

"""A survey without a real catalog, end to end (issue 20, item 6): Rubin ugrizy from a noise
table (sigma versus magnitude per band) -> noise model -> training sets in the survey's
filters -> a mask-aware posterior -> samples for galaxies with missing bands.

Small scale (the fake-table emulator, a tiny flow): this checks the plumbing and the
bookkeeping of a survey other than SDSS ugriz, not accuracy.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table

BANDS = ("u", "g", "r", "i", "z", "y")
#: Rubin single-visit 5-sigma depths (AB), roughly; enough for a plausible table.
DEPTH5 = (23.9, 25.0, 24.7, 24.0, 23.3, 22.1)


def rubin_noise_table() -> Table:
    """sigma_m(m) = 1.0857 / SNR(m) with SNR = 5 at the depth, plus 0.005 mag in quadrature."""
    rows = {"band": [], "mag": [], "sigma": []}
    for band, m5 in zip(BANDS, DEPTH5):
        m = np.arange(12.0, 26.5, 0.5)
        snr = 5.0 * 10 ** (-0.4 * (m - m5))
        rows["band"] += [band] * len(m)
        rows["mag"] += m.tolist()
        rows["sigma"] += np.hypot(1.0857 / snr, 0.005).tolist()
    return Table(rows)


@pytest.fixture(scope="module")
def rubin(tmp_path_factory, shifted_emulator):
    from provabgs_sbi.cli.main import main
    from provabgs_sbi.inference import training_set as ts
    from provabgs_sbi.inference.conditioning import Conditioning
    from provabgs_sbi.inference.flows import FlowConfig
    from provabgs_sbi.model.survey import Survey, get_survey
    from provabgs_sbi.workflows.train import train_posterior

    tmp = tmp_path_factory.mktemp("rubin")
    rubin_noise_table().write(tmp / "rubin_noise.csv", format="ascii.csv")
    assert main(["noise", "table", str(tmp / "rubin_noise.csv"), "--out",
                 str(tmp / "noise_rubin.ecsv")]) == 0
    survey = Survey(name="rubin_ugrizy", bands=BANDS,
                    filters=tuple(f"lsst2023-{b}" for b in BANDS), z_range=(0.0, 0.2),
                    floor_max=0.1, min_bands=3, noise_model=str(tmp / "noise_rubin.ecsv"))
    (tmp / "rubin.json").write_text(json.dumps(survey.to_dict()))
    survey = get_survey(str(tmp / "rubin.json"))
    train = ts.make_training_set(tmp / "train.h5",
                                 ts.TrainingSetConfig(n=3000, seed=1, chunk=3000, survey=survey),
                                 shifted_emulator, progress=False)
    test = ts.make_training_set(tmp / "test.h5",
                                ts.TrainingSetConfig(n=300, seed=2, chunk=2000, survey=survey),
                                shifted_emulator, progress=False)
    post, metrics = train_posterior(train, tmp / "flow", FlowConfig.preset("tiny", max_epochs=4),
                                    test_path=test, n_test_samples=100, progress=False,
                                    log=lambda *a: None,
                                    conditioning=Conditioning.for_survey(survey),
                                    default_floor=0.02)
    return {"tmp": tmp, "survey": survey, "train": train, "test": test, "post": post,
            "metrics": metrics}


def test_noise_table_becomes_the_noise_model(rubin):
    from provabgs_sbi.inference.noise import NoiseModel, survey_noise_model

    model = survey_noise_model(rubin["survey"])
    assert model.bands == BANDS
    assert model.provenance["kind"] == "sigma table"
    # mu(m) interpolates the table; s = 10% of it; the range is the table's
    m = np.array([[18.25, 20.0, 22.0, 23.0, 24.0, 19.0]])
    table = rubin_noise_table()
    expect = [np.interp(m[0, b], table["mag"][table["band"] == band],
                        table["sigma"][table["band"] == band]) for b, band in enumerate(BANDS)]
    np.testing.assert_allclose(model.median_sigma(m)[0], expect, rtol=1e-12)
    np.testing.assert_allclose(model.scatter_sigma(m)[0], 0.1 * np.array(expect), rtol=1e-12)
    np.testing.assert_array_equal(model.mag_range, np.tile([12.0, 26.0], (6, 1)))
    with pytest.raises(ValueError, match="at least two rows"):
        NoiseModel.from_sigma_table(Table({"band": ["u"], "mag": [20.0], "sigma": [0.1]}))
    with pytest.raises(ValueError, match="columns band, mag, sigma"):
        NoiseModel.from_sigma_table(Table({"band": ["u", "u"], "mag": [20.0, 21.0]}))


def test_training_set_is_in_the_survey_bands(rubin, shifted_emulator):
    from provabgs_sbi.inference import training_set as ts
    from provabgs_sbi.model.photometry import nanomaggies_to_mag

    theta, _, x, settings = ts.load_training_set(rubin["train"])
    assert x.shape == (3000, 13)
    assert ts.training_set_survey(settings) == rubin["survey"]
    assert ts.read_settings(rubin["train"]) == settings
    # the noiseless magnitudes are the emulator's in the LSST filters, not SDSS's
    mag_true = ts.load_mag_true(rubin["train"])[:50]
    z = x[:50, 12]
    lsst = nanomaggies_to_mag(shifted_emulator.with_filters(rubin["survey"])
                              .photometry(theta[:50], z, backend="numpy"))
    np.testing.assert_allclose(mag_true, lsst, atol=2e-4)
    sdss = nanomaggies_to_mag(shifted_emulator.photometry(theta[:50], z, backend="numpy"))
    assert np.max(np.abs(mag_true[:, :5] - sdss)) > 0.02     # other filters, other numbers
    # SDSS files keep the settings they had before surveys existed
    assert "survey" not in ts.TrainingSetConfig(n=10).to_dict()


def test_training_set_refuses_a_noise_model_of_other_bands(rubin, shifted_emulator, tmp_path):
    from provabgs_sbi.inference import training_set as ts
    from provabgs_sbi.inference.noise import default_noise_model

    with pytest.raises(ValueError, match="not survey 'rubin_ugrizy'"):
        ts.make_training_set(tmp_path / "t.h5",
                             ts.TrainingSetConfig(n=10, survey=rubin["survey"]),
                             shifted_emulator, noise=default_noise_model(), progress=False)


def test_survey_posterior_round_trip_and_missing_bands(rubin):
    from provabgs_sbi.flags import FLAG_MISSING_BAND, FLAG_TOO_FEW_BANDS
    from provabgs_sbi.inference.posterior import NOISE_FILE, Posterior
    from provabgs_sbi.inference.training_set import load_training_set

    post, folder = rubin["post"], rubin["tmp"] / "flow"
    cov = rubin["metrics"]["test"]["coverage"]
    assert set(cov) == {"0.68", "0.95"} and len(cov["0.68"]) == 12
    assert np.isfinite(rubin["metrics"]["test"]["mean_log_q"])
    back = Posterior.load(folder)
    assert (folder / NOISE_FILE).is_file()
    assert back.survey == rubin["survey"] and back.layout.n_bands == 6
    assert back.noise.bands == BANDS and back.flow.d_x == 19
    assert back.default_floor == 0.02 and back.min_bands == 3

    _, _, x, _ = load_training_set(rubin["test"])
    x = x[:4].copy()
    x[1, 5] = np.nan                           # no y
    x[2, [0, 5]] = np.nan                      # no u, no y
    x[3, [0, 1, 2, 5]] = np.nan                # two bands left: too few
    flags = back.flags(x)
    assert flags[0] & FLAG_MISSING_BAND == 0
    assert flags[1] & FLAG_MISSING_BAND and flags[2] & FLAG_MISSING_BAND
    assert flags[3] & FLAG_TOO_FEW_BANDS
    s = back.sample(x, 30, seed=0, strict=False)
    assert np.all(np.isfinite(s[:3])) and np.all(np.isnan(s[3]))
    np.testing.assert_array_equal(s[:3], post.sample(x[:3], 30, seed=0))
    with pytest.raises(ValueError, match=r"shape \(N, 13\)"):
        back.sample(x[:, :11], 5)              # SDSS-shaped x for a 6-band posterior


def test_flow_train_cli_takes_the_bands_from_the_training_set(rubin):
    from provabgs_sbi.cli.flow_commands import _conditioning, _trainset_survey

    survey = _trainset_survey(rubin["train"])
    c = _conditioning(["p_mask=0.2"], survey)
    assert c.bands == BANDS and c.p_mask == 0.2 and c.floor_max == survey.floor_max


def test_emulator_validation_reports_the_survey_bands(rubin, fake_emulator):
    from provabgs_sbi.emulator.validate import validate_emulator

    m = validate_emulator(fake_emulator, fake_emulator.burst_model, n=60, seed=3,
                          survey=rubin["survey"])
    assert list(m["mag_err_p99"]) == list(BANDS) and m["survey"] == "rubin_ugrizy"
    assert all(np.isfinite(v) for v in m["mag_err_p99"].values())
    sdss = validate_emulator(fake_emulator, fake_emulator.burst_model, n=60, seed=3)
    assert list(sdss["mag_err_p99"]) == list("ugriz") and "survey" not in sdss
    # same draws, same spectra: the spectral metrics do not depend on the bands
    assert sdss["frac_err_p99_max"] == m["frac_err_p99_max"]


def test_ten_band_noise_model_matches_the_sdss_model_in_ugriz():
    """The committed galex_sdss_2mass model is fitted to the same rows as the SDSS model:
    its u-z rows are that model's, and every band has its own magnitude range."""
    from provabgs_sbi.inference.noise import default_noise_model, survey_noise_model

    ten, five = survey_noise_model("galex_sdss_2mass"), default_noise_model()
    assert ten.bands == ("FUV", "NUV", "u", "g", "r", "i", "z", "J", "H", "Ks")
    for b in range(5):
        for name in ("edges", "centres", "mu", "s", "counts"):
            np.testing.assert_array_equal(getattr(ten, name)[b + 2], getattr(five, name)[b])
    np.testing.assert_array_equal(ten.mag_range[2:7], five.mag_range)
    assert ten.provenance["n_rows_used_per_band"]["FUV"] == 530
    # the UV is noisier than the optical at the same magnitude, the NIR too (2MASS is shallow)
    assert ten.median_sigma(np.full((1, 10), 17.0))[0, [0, 1, 7]].min() > \
        ten.median_sigma(np.full((1, 10), 17.0))[0, 3:6].max()


def test_noise_fit_of_the_ten_band_survey_is_reproducible(tmp_path):
    from provabgs_sbi.inference.noise import NoiseModel, survey_noise_model
    from provabgs_sbi.workflows.noise_fit import fit_survey_noise_model

    model, path = fit_survey_noise_model("galex_sdss_2mass", out=tmp_path / "n.ecsv",
                                         figure=tmp_path / "n.png")
    committed = survey_noise_model("galex_sdss_2mass")
    back = NoiseModel.load(path)
    for name in ("edges", "centres", "mu", "s", "counts"):
        for a, b in zip(getattr(back, name), getattr(committed, name)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert (tmp_path / "n.png").stat().st_size > 10_000


def test_validate_a_survey_posterior(rubin, shifted_emulator, tmp_path):
    """validate draws its test galaxies in the survey's bands and regimes of its bands."""
    from provabgs_sbi.workflows.validate import standard_regimes, validate_posterior

    names = [r.name for r in standard_regimes(0.02, BANDS, 3)]
    assert names[:4] == ["all bands", "no u", "no y", "no u, no y (g, r, i, z only)"]
    assert [r.name for r in standard_regimes(0.0, ("g", "r", "z"), 2)][:3] == \
        ["all bands", "no g", "no z"]                      # "r only" would be too few
    res = validate_posterior(rubin["post"], shifted_emulator, tmp_path / "val", n_test=150,
                             n_samples=60, seed=1, work_dir=tmp_path / "work", progress=False)
    assert res["test_set"]["config"]["survey"]["name"] == "rubin_ugrizy"
    assert set(res["regimes"]) == set(names)
    assert all(r["n_test"] > 100 for r in res["regimes"].values())
    assert (tmp_path / "val" / "regimes.png").is_file()
    with pytest.raises(ValueError, match="MCMC comparison is built for SDSS"):
        validate_posterior(rubin["post"], shifted_emulator, tmp_path / "v2", n_test=10,
                           n_mcmc_test=1, work_dir=tmp_path / "work", progress=False)


def test_fit_a_survey_catalog_from_the_command_line(rubin, tmp_path):
    """`posterior` reads a catalog of the survey's bands (mag_<band>, magerr_<band>, z, a
    sentinel for a missing band), fits it with the survey posterior and records the bands."""
    import h5py

    from provabgs_sbi.cli.main import main
    from provabgs_sbi.flags import FLAG_MISSING_BAND
    from provabgs_sbi.inference.training_set import load_training_set
    from provabgs_sbi.io.catalog import read_catalog

    _, _, x, _ = load_training_set(rubin["test"])
    x = x[:12].copy()
    t = Table({"id": np.arange(100, 112)})
    for b, band in enumerate(BANDS):
        t[f"mag_{band}"] = x[:, b]
        t[f"magerr_{band}"] = x[:, 6 + b]
    t["z"] = x[:, 12]
    t["mag_y"][3] = 99.0                     # a catalog's "no measurement"
    t.write(tmp_path / "rubin_cat.csv", format="ascii.csv")
    cat = read_catalog(tmp_path / "rubin_cat.csv", survey=rubin["survey"])
    assert cat.bands == BANDS and cat.to_x().shape == (12, 13)
    np.testing.assert_allclose(cat.to_x()[[0, 5]], x[[0, 5]], rtol=1e-9)
    assert np.isnan(cat.to_x()[3, 5])
    out = tmp_path / "fit.h5"
    assert main(["posterior", str(tmp_path / "rubin_cat.csv"), "--flow", str(rubin["tmp"] / "flow"),
                 "--out", str(out), "--n-samples", "40", "--no-ppc", "--chunk", "5"]) == 0
    with h5py.File(out, "r") as fh:
        assert json.loads(fh.attrs["bands"]) == list(BANDS)
        assert json.loads(fh.attrs["survey"])["name"] == "rubin_ugrizy"
        summary = fh["summary"][:]
        assert fh["x"].shape == (12, 13) and fh["samples"].shape == (12, 40, 12)
    assert summary["id"].tolist() == list(range(100, 112))
    assert summary["flags"][3] & FLAG_MISSING_BAND
    assert np.all(np.isfinite(summary["log_mstar_p50"]))
    assert summary["bands_used"][3] == 0b011111 and summary["bands_used"][0] == 0b111111


def test_survey_catalog_reader_applies_ab_offsets_after_sentinels():
    """Catalog magnitudes of a survey with AB offsets (e.g. Vega) are brought to AB; a
    sentinel is recognised before any offset is added; fluxes get the same factor."""
    from provabgs_sbi.io.catalog import read_catalog
    from provabgs_sbi.model.photometry import mag_to_nanomaggies
    from provabgs_sbi.model.survey import Survey

    vega = Survey(name="vega3", bands=("J", "H", "Ks"),
                  filters=("twomass-J", "twomass-H", "twomass-Ks"),
                  ab_offsets=(0.91, 1.39, 1.85), min_bands=2)
    t = Table({"mag_J": [14.0, 15.0], "magerr_J": [0.05, 0.05],
               "mag_H": [13.5, 99.0], "magerr_H": [0.06, 0.06],
               "mag_Ks": [13.0, 14.2], "magerr_Ks": [0.07, 0.07], "z": [0.05, 0.1]})
    cat = read_catalog(t, survey=vega)
    x = cat.to_x()
    np.testing.assert_allclose(x[0, :3], [14.91, 14.89, 14.85], atol=1e-9)
    assert np.isnan(x[1, 1]) and np.isfinite(x[1, 2])          # 99 is "no measurement"
    np.testing.assert_allclose(x[:, 3::2][:, :1], [[0.05], [0.05]], rtol=1e-9)
    f = Table({"flux_J": mag_to_nanomaggies([14.0, 15.0]), "flux_ivar_J": [1.0, 1.0],
               "flux_H": mag_to_nanomaggies([13.5, 14.0]), "flux_ivar_H": [1.0, 1.0],
               "flux_Ks": mag_to_nanomaggies([13.0, 14.2]), "flux_ivar_Ks": [1.0, 1.0],
               "z": [0.05, 0.1]})
    np.testing.assert_allclose(read_catalog(f, survey=vega).to_x()[0, :3],
                               [14.91, 14.89, 14.85], atol=1e-9)
    with pytest.raises(ValueError, match="presets read SDSS ugriz"):
        read_catalog(t, survey=vega, preset="sdss")


def test_optional_bands_are_kept_at_any_magnitude_and_missing_when_undetected(shifted_emulator,
                                                                             tmp_path):
    """A survey's optional band does not cut the training set (the range cut would keep only
    galaxies bright in it), is missing in mask-aware draws where fainter than the noise
    model's range, and a posterior on such a survey must be mask-aware."""
    from provabgs_sbi.inference import training_set as ts
    from provabgs_sbi.inference.conditioning import Conditioning
    from provabgs_sbi.inference.noise import NoiseModel
    from provabgs_sbi.model.photometry import BANDS, FILTER_NAMES, SDSS_TO_AB_MAG
    from provabgs_sbi.model.survey import Survey
    from provabgs_sbi.workflows.train import train_posterior

    rows = {"band": [], "mag": [], "sigma": []}
    for band in BANDS:                       # u "detected" only to 21 mag: a shallow band
        m = np.arange(12.0, 21.5 if band == "u" else 24.5, 0.5)
        rows["band"] += [band] * len(m)
        rows["mag"] += m.tolist()
        rows["sigma"] += (0.01 * 10 ** (0.2 * (m - 16))).tolist()
    NoiseModel.from_sigma_table(Table(rows)).save(tmp_path / "noise.ecsv")
    kw = dict(bands=BANDS, filters=FILTER_NAMES, ab_offsets=tuple(SDSS_TO_AB_MAG),
              noise_model=str(tmp_path / "noise.ecsv"))
    shallow = Survey(name="shallow_u", **kw)
    optional = Survey(name="optional_u", optional_bands=("u",), **kw)
    cut = ts.make_training_set(tmp_path / "cut.h5", ts.TrainingSetConfig(
        n=1500, seed=3, chunk=3000, survey=shallow), shifted_emulator, progress=False)
    kept = ts.make_training_set(tmp_path / "kept.h5", ts.TrainingSetConfig(
        n=1500, seed=3, chunk=3000, survey=optional), shifted_emulator, progress=False)
    u_cut, u_kept = ts.load_mag_true(cut)[:, 0], ts.load_mag_true(kept)
    assert u_cut.max() <= 21.0
    faint = ~(u_kept[:, 0] <= 21.0)
    assert 0.2 < faint.mean() < 0.95          # most draws are fainter than the shallow u
    assert np.all((u_kept[:, 1:] >= 12.0) & (u_kept[:, 1:] <= 24.0))
    cond = Conditioning.for_survey(optional, p_mask=0.0)
    noise = NoiseModel.load(tmp_path / "noise.ecsv")
    x, _, ok = cond.draw(u_kept, np.full(len(u_kept), 0.1), noise, rng=0)
    miss = optional.layout.missing(x)
    assert miss[faint, 0].all() and not miss[:, 1:].any()
    assert abs(miss[~faint, 0].mean() - cond.p_optional) < 0.1      # not covered
    with pytest.raises(ValueError, match="mask-aware"):
        train_posterior(kept, tmp_path / "flow", None, progress=False, log=lambda *a: None)


def test_compare_fits_with_and_without_a_band(rubin, tmp_path):
    """Issue 20, item 5 at small scale: the same galaxies fitted with ugriz only and with
    ugrizy are matched by id, grouped by the extra band used, and compared."""
    from provabgs_sbi.inference.training_set import load_training_set
    from provabgs_sbi.io.catalog import PhotometryCatalog
    from provabgs_sbi.model.photometry import mag_to_nanomaggies
    from provabgs_sbi.workflows.compare_fits import compare_fits, plot_fit_comparison
    from provabgs_sbi.workflows.fit import fit_catalog

    _, _, x, _ = load_training_set(rubin["test"])
    x = x[:60]
    flux = mag_to_nanomaggies(x[:, :6])
    ivar = 1 / (0.4 * np.log(10) * flux * x[:, 6:12]) ** 2
    no_y = flux.copy(), ivar.copy()
    no_y[0][:, 5] = no_y[1][:, 5] = np.nan
    some_y = flux.copy(), ivar.copy()
    some_y[0][:25, 5] = some_y[1][:25, 5] = np.nan          # y for 35 of the 60
    fits = {}
    for name, (f, iv) in {"a": no_y, "b": some_y}.items():
        cat = PhotometryCatalog.from_arrays(f, iv, x[:, 12], ids=np.arange(60)[::-1], bands=BANDS)
        if name == "a":
            np.testing.assert_array_equal(cat.only_bands(tuple("ugriz")).to_x(), cat.to_x())
            with pytest.raises(ValueError, match="not the catalog's"):
                cat.only_bands(["w"])
        fits[name] = fit_catalog(rubin["post"], cat, tmp_path / f"{name}.h5", n_samples=60,
                                 chunk=30, progress=False)
    res = compare_fits(fits["a"], fits["b"], min_group=5, label_a="ugriz", label_b="ugrizy")
    assert res["n_matched"] == 60 and res["groups"] == {"+y": 35, "no extra band": 25}
    same = res["quantities"]["log_mstar_surviving"]["no extra band"]
    # without y the two fits see the same data: the same posterior up to sampling noise
    assert abs(same["median_width_ratio"] - 1) < 0.15 and same["median_abs_pull"] < 0.2
    for q in ("log_sfr_1gyr", "tau_ism", "tau_bc"):
        assert res["quantities"][q]["+y"]["n"] == 35
    assert plot_fit_comparison(res, tmp_path / "cmp.png").stat().st_size > 20_000

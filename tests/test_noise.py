"""Noise model p(sigma_m | m): recovery of known curves, draws, masking, I/O, default file."""
import dataclasses

import numpy as np
import pytest

from provabgs_sbi.io import catalog as cat
from provabgs_sbi.io import fetch
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.inference.noise import (DEFAULT_NOISE_FILE, MAD_TO_SIGMA, NoiseConfig, NoiseModel,
                                default_noise_model, merged_bin_edges)
from provabgs_sbi.model.photometry import mag_to_nanomaggies

LN10 = np.log(10.0)


def true_mu(m):
    """Known median error, mag: 0.005 at m = 16, x10 per 4 mag (0.0016 .. 0.05 over 14-22)."""
    return 0.005 * 10.0 ** (0.25 * (np.asarray(m) - 16.0))


def true_s(m):
    """Known scatter: 20 per cent of the median."""
    return 0.2 * true_mu(m)


def synthetic_catalog(n, seed, lo=14.0, hi=22.0):
    """Galaxies with m ~ U(lo, hi) per band and sigma_m ~ N(true_mu(m), true_s(m)).

    (A draw is negative with probability Phi(-5) ~ 3e-7; none occur with these seeds.)
    """
    rng = np.random.default_rng(seed)
    m = rng.uniform(lo, hi, size=(n, 5))
    sig = true_mu(m) + true_s(m) * rng.standard_normal((n, 5))
    assert (sig > 0).all()
    flux = mag_to_nanomaggies(m)
    sigma_f = sig * flux * LN10 / 2.5
    return PhotometryCatalog.from_arrays(flux, 1.0 / sigma_f**2, np.full(n, 0.1),
                                         source="synthetic"), m, sig


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_catalog(60_000, seed=1)


@pytest.fixture(scope="module")
def fitted(synthetic):
    return NoiseModel.fit(synthetic[0])


def hand_model(mu=(0.01, 0.1), s=(0.002, 0.02), centres=(15.0, 20.0)):
    """A two-bin model with the same curve in all bands."""
    edges = np.array([centres[0] - 1.0, 0.5 * (centres[0] + centres[1]), centres[1] + 1.0])
    return NoiseModel(edges=(edges,) * 5, centres=(np.array(centres),) * 5,
                      mu=(np.array(mu),) * 5, s=(np.array(s),) * 5,
                      counts=(np.array([100, 100]),) * 5,
                      mag_range=np.tile([14.0, 21.0], (5, 1)), provenance={"source": "hand"})


# ------------------------------------------------------------------ binning


def test_merged_bins_hold_min_count():
    rng = np.random.default_rng(3)
    m = np.concatenate([rng.normal(18.0, 0.8, 5000), [12.0, 25.0]])  # sparse tails
    edges = merged_bin_edges(m, 0.2, 100)
    counts = np.histogram(m, edges)[0]
    assert counts.sum() == len(m)
    assert counts.min() >= 100
    assert edges[0] <= m.min() and edges[-1] > m.max()
    widths = np.diff(edges)
    assert np.isclose(widths.min(), 0.2)          # dense centre keeps the fixed width
    assert widths[0] > 1.0 and widths[-1] > 1.0   # sparse tails merged
    one = merged_bin_edges(m[:150], 0.2, 100)     # fewer than 2 x min_count: one bin
    assert len(one) == 2


# ------------------------------------------------------------------ recovery


def test_fit_recovers_known_mu_and_s(fitted):
    # 60,000 galaxies over 8 mag -> ~1,500 per 0.2-mag bin. Expected errors: median
    # 1.25 s / sqrt(n) = 0.6% of mu; 1.4826 MAD ~3% of s, plus +1.4% from the change of
    # mu across a bin. Tolerances: 3% on mu, 12% on s (4 sigma).
    for b in range(5):
        c = fitted.centres[b]
        inner = (c > 14.3) & (c < 21.7)   # bins cut by the sample edges are skewed in m
        assert inner.sum() >= 30
        np.testing.assert_allclose(fitted.mu[b][inner], true_mu(c[inner]), rtol=0.03)
        np.testing.assert_allclose(fitted.s[b][inner], true_s(c[inner]), rtol=0.12)
        assert fitted.counts[b].min() >= 100
        assert fitted.counts[b].sum() == 60_000
        # interpolation between centres follows the true curve too
        grid = np.linspace(15.0, 21.0, 61)
        np.testing.assert_allclose(np.interp(grid, c, fitted.mu[b]), true_mu(grid), rtol=0.03)


def test_std_scatter_option_also_recovers_gaussian_width(synthetic):
    model = NoiseModel.fit(synthetic[0], NoiseConfig(scatter="std"))
    c = model.centres[2]
    inner = (c > 14.3) & (c < 21.7)
    np.testing.assert_allclose(model.s[2][inner], true_s(c[inner]), rtol=0.12)
    assert model.config.scatter == "std"


def test_mad_scatter_resists_outliers():
    # 3% of the errors are 50x too large: std explodes, 1.4826 MAD barely moves.
    catalog, m, sig = synthetic_catalog(20_000, seed=5)
    rng = np.random.default_rng(6)
    bad = rng.random(sig.shape) < 0.03
    sig = np.where(bad, 50 * sig, sig)
    flux = catalog.flux
    cat2 = PhotometryCatalog.from_arrays(flux, 1.0 / (sig * flux * LN10 / 2.5) ** 2, catalog.z)
    mad = NoiseModel.fit(cat2)
    std = NoiseModel.fit(cat2, NoiseConfig(scatter="std"))
    c = mad.centres[0]
    inner = (c > 14.5) & (c < 21.5)
    ratio_mad = mad.s[0][inner] / true_s(c[inner])
    ratio_std = std.s[0][inner] / true_s(std.centres[0][inner])
    assert np.median(ratio_mad) < 1.15
    assert np.median(ratio_std) > 5.0


def test_fit_uses_only_valid_rows_and_records_cuts(synthetic):
    catalog = synthetic[0]
    flux = np.array(catalog.flux)
    flux[:10, 0] = -1.0                          # 10 flagged rows
    cat2 = PhotometryCatalog.from_arrays(flux, catalog.ivar, catalog.z, source="synthetic")
    model = NoiseModel.fit(cat2, NoiseConfig(min_snr=3.0))
    assert model.provenance["n_rows_used"] == 60_000 - 10
    assert model.provenance["n_rows_catalog"] == 60_000
    assert any("flags == 0" in c for c in model.provenance["cuts"])
    assert any("S/N > 3.0" in c for c in model.provenance["cuts"])
    with pytest.raises(ValueError, match="usable rows"):
        NoiseModel.fit(cat2.subset(np.arange(20)))


def test_mag_range_and_in_range(fitted, synthetic):
    m = synthetic[1]
    np.testing.assert_allclose(fitted.mag_range[:, 0], m.min(axis=0))
    np.testing.assert_allclose(fitted.mag_range[:, 1], m.max(axis=0))
    np.testing.assert_allclose(fitted.flux_range[:, 0], mag_to_nanomaggies(m.max(axis=0)))
    probe = np.array([[18.0] * 5, [18.0, 18.0, 25.0, 18.0, 18.0], [np.nan] + [18.0] * 4])
    np.testing.assert_array_equal(fitted.in_range(probe), [True, False, False])
    # a band left out of the check (a survey's optional band) does not cut
    np.testing.assert_array_equal(fitted.in_range(probe, bands=("u", "g", "i", "z")),
                                  [True, True, False])
    with pytest.raises(ValueError, match="not the noise model's"):
        fitted.in_range(probe, bands=("y",))


# ------------------------------------------------------------------ draws


def test_draws_have_model_median_and_scatter():
    model = hand_model()
    rng = np.random.default_rng(7)
    n = 40_000
    for m0, mu0, s0 in [(15.0, 0.01, 0.002), (17.5, 0.055, 0.011), (20.0, 0.1, 0.02),
                        (10.0, 0.01, 0.002), (25.0, 0.1, 0.02)]:   # last two: beyond the ends
        sig, ok = model.sample_sigma(np.full((n, 5), m0), rng)
        assert ok.all()
        # median: sd 1.25 s / sqrt(n) = 0.6% of s; std: sd 0.35%. Tolerances ~5 sd.
        np.testing.assert_allclose(np.median(sig, axis=0), mu0, atol=0.03 * s0)
        np.testing.assert_allclose(np.std(sig, axis=0), s0, rtol=0.02)


def test_drawn_sigmas_match_fitted_bins(fitted, synthetic):
    m = synthetic[1]
    sig, ok = fitted.sample_sigma(m, np.random.default_rng(8))
    assert ok.all()
    for b in range(5):
        idx = np.searchsorted(fitted.edges[b], m[:, b], side="right") - 1
        for k in range(5, len(fitted.centres[b]) - 5, 5):
            sel = idx == k
            d = sig[sel, b]
            med = np.median(d)
            mad = MAD_TO_SIGMA * np.median(np.abs(d - med))
            # ~1,500 draws: median to 1.5% of mu, scatter to 12% (4 sd incl. in-bin gradient)
            assert med == pytest.approx(fitted.mu[b][k], rel=0.015)
            assert mad == pytest.approx(fitted.s[b][k], rel=0.12)


def test_negative_draws_are_masked():
    model = hand_model(mu=(0.01, 0.01), s=(0.02, 0.02))   # P(sigma' <= 0) = Phi(-0.5) = 0.3085
    n = 20_000
    mags = np.full((n, 5), 17.0)
    mags[:5, 3] = np.nan                                    # unusable inputs are invalid too
    sig, ok = model.sample_sigma(mags, np.random.default_rng(9))
    expect = np.all(sig > 0, axis=1) & np.isfinite(sig).all(axis=1)
    np.testing.assert_array_equal(ok, expect)
    assert not ok[:5].any()
    neg = np.mean(sig[5:] <= 0, axis=0)
    np.testing.assert_allclose(neg, 0.3085, atol=0.015)     # sd 0.003
    assert ok.mean() == pytest.approx(0.6915**5, abs=0.01)  # bands independent


def test_add_noise_is_gaussian_with_drawn_sigma_and_reproducible():
    model = hand_model()
    mags = np.full((30_000, 5), 18.0)
    noisy, sig, ok = model.add_noise(mags, rng=11)
    assert ok.all()
    eps = (noisy - mags) / sig
    assert abs(eps.mean()) < 0.02 and eps.std() == pytest.approx(1.0, abs=0.02)
    again = model.add_noise(mags, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(noisy, again[0])
    np.testing.assert_array_equal(sig, again[1])


# ------------------------------------------------------------------ config, I/O, figure


def test_config_validated():
    for bad in [dict(bin_width=0.0), dict(min_count=2), dict(min_count=10.5),
                dict(scatter="iqr"), dict(min_snr=-1.0)]:
        with pytest.raises(ValueError):
            NoiseConfig(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        NoiseConfig().bin_width = 0.5


def test_model_validated_and_frozen():
    model = hand_model()
    with pytest.raises(ValueError):
        model.mu[0][0] = 1.0
    with pytest.raises(ValueError, match="s >= 0"):
        hand_model(s=(-0.1, 0.1))
    with pytest.raises(ValueError, match="edges"):
        NoiseModel(edges=(np.array([1.0, 2.0]),) * 5, centres=(np.array([1.5, 1.7]),) * 5,
                   mu=(np.ones(2),) * 5, s=(np.ones(2),) * 5, counts=(np.ones(2),) * 5,
                   mag_range=np.tile([1.0, 2.0], (5, 1)))


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "sub" / "noise.ecsv")
    text = path.read_text()
    assert text.startswith("# %ECSV") and "provenance" in text
    back = NoiseModel.load(path)
    for name in ("edges", "centres", "mu", "s", "counts"):
        for a, b in zip(getattr(fitted, name), getattr(back, name)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.mag_range, fitted.mag_range)
    assert back.config == fitted.config
    assert back.provenance == fitted.provenance
    mags = np.full((100, 5), 17.3)
    np.testing.assert_array_equal(fitted.sample_sigma(mags, 4)[0], back.sample_sigma(mags, 4)[0])


def test_load_rejects_other_files(tmp_path):
    from astropy.table import Table

    path = tmp_path / "other.ecsv"
    Table({"a": [1.0]}).write(path, format="ascii.ecsv")
    with pytest.raises(ValueError, match="not a provabgs_sbi.noise.NoiseModel"):
        NoiseModel.load(path)


def test_plot_writes_png(tmp_path):
    catalog, _, _ = synthetic_catalog(3_000, seed=12)
    model = NoiseModel.fit(catalog, NoiseConfig(min_count=50))
    out = model.plot(catalog, tmp_path / "noise.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_workflow_writes_the_fitted_model_and_its_figure(tmp_path):
    from provabgs_sbi.workflows.noise_fit import fit_noise_model

    catalog, _, _ = synthetic_catalog(3_000, seed=13)
    config = NoiseConfig(min_count=50)
    model = fit_noise_model(catalog, out=tmp_path / "m.ecsv", figure=tmp_path / "m.png",
                            config=config)
    direct = NoiseModel.fit(catalog, config)
    back = NoiseModel.load(tmp_path / "m.ecsv")
    for b in range(5):
        for got in (model, back):
            np.testing.assert_array_equal(got.edges[b], direct.edges[b])
            np.testing.assert_array_equal(got.mu[b], direct.mu[b])
            np.testing.assert_array_equal(got.s[b], direct.s[b])
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fit_noise_model(catalog, out=tmp_path / "n.ecsv", figure=None, config=config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ecsv", "m.png", "n.ecsv"]


# ------------------------------------------------------------------ committed default


def test_default_file_loads():
    model = default_noise_model()
    assert DEFAULT_NOISE_FILE.exists()
    assert model.bands == tuple("ugriz")
    assert model.provenance["source_sha256"] == fetch.SDSS_SAMPLE.member_sha256
    assert model.provenance["n_rows_used"] == 9_988      # 12 rows have u flux <= 0
    assert model.config == NoiseConfig()
    for b in range(5):
        assert model.counts[b].sum() == 9_988
        assert model.counts[b].min() >= model.config.min_count
        assert np.all(np.diff(model.mu[b]) > -0.1 * model.mu[b][1:])  # rises with m
    # a few values: sigma_r ~ 0.004 mag at r = 16, sigma_u ~ 0.1 at u = 20
    assert model.median_sigma(np.full((1, 5), 16.0))[0, 2] == pytest.approx(0.0038, rel=0.1)
    assert model.median_sigma(np.full((1, 5), 20.0))[0, 0] == pytest.approx(0.10, rel=0.1)


@pytest.mark.slow
def test_default_model_reproduces_real_median_sigma():
    try:
        sample = cat.load_sdss_sample()
    except RuntimeError as err:
        pytest.skip(f"SDSS sample not obtainable here: {err}")
    model = default_noise_model()
    c = sample.subset(sample.valid)
    mags, errs = c.mags(), c.mag_errors()
    for b in range(5):
        lo, hi = np.percentile(mags[:, b], [10, 90])      # central bins
        edges = np.arange(lo, hi + 1e-9, 0.25)
        idx = np.digitize(mags[:, b], edges) - 1
        for k in range(len(edges) - 1):
            sel = idx == k
            med_m, med_sig = np.median(mags[sel, b]), np.median(errs[sel, b])
            probe = np.full((1, 5), med_m)
            assert model.median_sigma(probe)[0, b] == pytest.approx(med_sig, rel=0.10), (b, k)
    # drawn sigma_r at the real magnitudes: median within 10% of the real one
    sig, ok = model.sample_sigma(mags, np.random.default_rng(0))
    assert ok.mean() > 0.99
    assert np.median(sig[ok, 2]) == pytest.approx(np.median(errs[ok, 2]), rel=0.10)

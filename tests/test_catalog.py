"""Catalog input: presets, file formats, flags, errors and the real SDSS sample."""
import dataclasses

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from provabgs_sbi.io import catalog as cat
from provabgs_sbi.io import fetch
from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.flags import (FLAG_FLUX_NONFINITE, FLAG_FLUX_NONPOSITIVE, FLAG_IVAR_BAD,
                                FLAG_Z_BAD, FLAG_Z_OUT_OF_RANGE)
from provabgs_sbi.model.observation import Z_MIN
from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog

LN10 = np.log(10.0)


def _write(table, tmp_path, fmt):
    """Write ``table`` in one of the tested formats; return (path, Table.read kwargs)."""
    if fmt == "fits":
        path = tmp_path / "cat.fits"
        table.write(path)
        return path, {}
    if fmt == "hdf5":
        path = tmp_path / "cat.hdf5"
        table.write(path, path="catalog", serialize_meta=False)
        return path, {"path": "catalog"}
    if fmt == "csv":
        path = tmp_path / "cat.csv"
        table.write(path, format="ascii.csv")
        return path, {"format": "ascii.csv"}
    if fmt == "ecsv":
        path = tmp_path / "cat.ecsv"
        table.write(path, format="ascii.ecsv")
        return path, {}
    raise ValueError(fmt)


# ------------------------------------------------------------------ NSA preset


def _nsa_table():
    rng = np.random.default_rng(11)
    nmgy = rng.uniform(1.0, 500.0, size=(4, 7))
    ivar = rng.uniform(0.5, 5.0, size=(4, 7))
    return Table({"NSAID": np.array([101, 102, 103, 104]), "NMGY": nmgy, "NMGY_IVAR": ivar,
                  "Z": np.array([0.01, 0.02, 0.03, 0.05]), "RA": np.arange(4.0)})


@pytest.mark.parametrize("fmt", ["fits", "hdf5", "ecsv"])
def test_nsa_columns_2_to_7_taken_without_corrections(tmp_path, fmt):
    table = _nsa_table()
    path, kw = _write(table, tmp_path, fmt)
    c = read_catalog(path, **kw)  # autodetected
    assert "nsa preset" in c.source
    np.testing.assert_array_equal(c.flux, np.asarray(table["NMGY"])[:, 2:7])
    np.testing.assert_array_equal(c.ivar, np.asarray(table["NMGY_IVAR"])[:, 2:7])
    np.testing.assert_array_equal(c.z, table["Z"])
    np.testing.assert_array_equal(c.ids, [101, 102, 103, 104])
    assert c.valid.all()
    assert c.source_sha256 == sha256_file(path)


def test_nsa_wrong_band_count_is_an_error():
    table = _nsa_table()
    table["NMGY"] = np.asarray(table["NMGY"])[:, 2:7]
    with pytest.raises(ValueError, match=r"NMGY.*\(N, 7\)"):
        read_catalog(table, preset="nsa")


# ------------------------------------------------------------------ SDSS preset

SDSS_FLUX = np.array([[10.0, 20.0, 30.0, 40.0, 50.0],
                      [5.0, 50.0, 100.0, 150.0, 200.0]])
SDSS_IVAR = np.array([[1.0, 2.0, 3.0, 4.0, 5.0],
                      [0.5, 0.5, 0.5, 0.5, 0.5]])
SDSS_EXT = np.array([[0.2, 0.15, 0.1, 0.08, 0.05],
                     [0.0, 0.0, 0.0, 0.0, 0.0]])


def _expected_sdss_ab():
    """By hand: m_AB = m_SDSS - A + offset with offsets (-0.04, 0, 0, 0, +0.02), so
    f_AB = f_SDSS 10^(0.4 (A - offset)) and ivar_AB = ivar / (f_AB / f_SDSS)^2."""
    dmag = np.array([[0.2 + 0.04, 0.15, 0.1, 0.08, 0.05 - 0.02],
                     [0.0 + 0.04, 0.0, 0.0, 0.0, 0.0 - 0.02]])
    factor = 10.0 ** (0.4 * dmag)
    return SDSS_FLUX * factor, SDSS_IVAR / factor**2


def _sdss_table():
    return Table({"OBJID": np.array([7, 8], dtype=np.int64), "MODELFLUX": SDSS_FLUX,
                  "MODELFLUX_IVAR": SDSS_IVAR, "EXTINCTION": SDSS_EXT,
                  "Z": np.array([0.1, 0.2])})


@pytest.mark.parametrize("fmt", ["fits", "hdf5"])
def test_sdss_extinction_and_ab_offsets(tmp_path, fmt):
    path, kw = _write(_sdss_table(), tmp_path, fmt)
    c = read_catalog(path, **kw)  # autodetected
    assert "sdss preset" in c.source
    flux_ab, ivar_ab = _expected_sdss_ab()
    np.testing.assert_allclose(c.flux, flux_ab, rtol=1e-12)
    np.testing.assert_allclose(c.ivar, ivar_ab, rtol=1e-12)
    # one number written out: 10 nmgy in u with A_u = 0.2 -> 10 x 10^(0.4 x 0.24)
    assert c.flux[0, 0] == pytest.approx(12.47383514242943, rel=1e-12)
    assert c.flux[0, 4] == pytest.approx(51.400814906323674, rel=1e-12)
    # S/N is unchanged by the rescaling
    np.testing.assert_allclose(c.snr(), SDSS_FLUX * np.sqrt(SDSS_IVAR), rtol=1e-12)
    np.testing.assert_array_equal(c.ids, [7, 8])


def test_sdss_casjobs_per_band_csv_matches_2d_columns(tmp_path):
    t = Table()
    for b, band in enumerate("ugriz"):
        t[f"modelFlux_{band}"] = SDSS_FLUX[:, b]
        t[f"modelFluxIvar_{band}"] = SDSS_IVAR[:, b]
        t[f"extinction_{band}"] = SDSS_EXT[:, b]
    t["z"] = [0.1, 0.2]
    path, kw = _write(t, tmp_path, "csv")
    c = read_catalog(path, **kw)
    flux_ab, ivar_ab = _expected_sdss_ab()
    np.testing.assert_allclose(c.flux, flux_ab, rtol=1e-12)
    np.testing.assert_allclose(c.ivar, ivar_ab, rtol=1e-12)
    np.testing.assert_array_equal(c.ids, [0, 1])  # no id column: row index


def test_sdss_missing_extinction_band_lists_columns():
    t = Table()
    for b, band in enumerate("ugriz"):
        t[f"modelFlux_{band}"] = SDSS_FLUX[:, b]
        t[f"modelFluxIvar_{band}"] = SDSS_IVAR[:, b]
        if band != "r":
            t[f"extinction_{band}"] = SDSS_EXT[:, b]
    t["z"] = [0.1, 0.2]
    with pytest.raises(KeyError, match=r"extinction_r.*Columns found: modelFlux_u"):
        read_catalog(t)


# ------------------------------------------------------------------ generic columns


def _generic_mag_table():
    mags = np.array([[20.0, 19.0, 18.0, 17.5, 17.0],
                     [22.5, 21.0, 20.0, 19.0, 18.5]])
    errs = np.array([[0.1, 0.05, 0.02, 0.02, 0.03],
                     [0.3, 0.1, 0.05, 0.04, 0.06]])
    t = Table()
    for b, band in enumerate("ugriz"):
        t[f"{band}_mag"] = mags[:, b]
        t[f"{band}_err"] = errs[:, b]
    t["redshift"] = [0.05, 0.15]
    t["name"] = ["gal-a", "gal-b"]
    return t, mags, errs


MAG_COLS = [f"{b}_mag" for b in "ugriz"]
ERR_COLS = [f"{b}_err" for b in "ugriz"]


@pytest.mark.parametrize("fmt", ["csv", "fits", "hdf5"])
def test_generic_magnitudes_round_trip(tmp_path, fmt):
    t, mags, errs = _generic_mag_table()
    path, kw = _write(t, tmp_path, fmt)
    c = read_catalog(path, mag_cols=MAG_COLS, err_cols=ERR_COLS, z_col="redshift",
                     id_col="name", **kw)
    # by hand: 22.5 mag = 1 nmgy, 20 mag = 10 nmgy; sigma_f = err f ln10 / 2.5
    assert c.flux[1, 0] == pytest.approx(1.0, rel=1e-12)
    assert c.flux[0, 0] == pytest.approx(10.0, rel=1e-12)
    assert c.ivar[0, 0] == pytest.approx(1.0 / (0.1 * 10.0 * LN10 / 2.5) ** 2, rel=1e-12)
    x = c.to_x()
    np.testing.assert_allclose(x[:, :5], mags, rtol=0, atol=1e-12)
    np.testing.assert_allclose(x[:, 5:10], errs, rtol=1e-12)
    np.testing.assert_allclose(x[:, 10], [0.05, 0.15])
    assert list(c.ids) == ["gal-a", "gal-b"]


def test_generic_fluxes_and_2d_column(tmp_path):
    flux = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    ivar = np.array([[4.0, 4.0, 4.0, 4.0, 4.0]])
    t = Table()
    for b, band in enumerate("ugriz"):
        t[f"f_{band}"] = flux[:, b]
        t[f"iv_{band}"] = ivar[:, b]
    t["zz"] = [0.1]
    path, kw = _write(t, tmp_path, "csv")
    c = read_catalog(path, flux_cols=[f"F_{b}" for b in "ugriz"],  # case-insensitive
                     ivar_cols=[f"iv_{b}" for b in "ugriz"], z_col="zz", **kw)
    np.testing.assert_array_equal(c.flux, flux)
    np.testing.assert_array_equal(c.ivar, ivar)
    c2 = read_catalog(Table({"F": flux, "IV": ivar, "zz": [0.1]}), flux_cols="F",
                      ivar_cols="IV", z_col="zz")
    np.testing.assert_array_equal(c2.flux, flux)


def test_missing_band_column_gives_clear_error(tmp_path):
    t, _, _ = _generic_mag_table()
    t.remove_column("r_mag")
    path, kw = _write(t, tmp_path, "csv")
    with pytest.raises(KeyError, match=r"'r_mag'.*AB magnitudes.*Columns found: u_mag, u_err"):
        read_catalog(path, mag_cols=MAG_COLS, err_cols=ERR_COLS, z_col="redshift", **kw)


def test_unknown_layout_lists_columns():
    t = Table({"a": [1.0], "b": [2.0]})
    with pytest.raises(ValueError, match=r"cannot tell the column layout.*Columns found: a, b"):
        read_catalog(t)


def test_inconsistent_arguments():
    t, _, _ = _generic_mag_table()
    with pytest.raises(ValueError, match="z_col"):
        read_catalog(t, mag_cols=MAG_COLS, err_cols=ERR_COLS)
    with pytest.raises(ValueError, match="not a mix"):
        read_catalog(t, mag_cols=MAG_COLS, z_col="redshift")
    with pytest.raises(ValueError, match="preset"):
        read_catalog(t, preset="sdss", mag_cols=MAG_COLS, err_cols=ERR_COLS, z_col="redshift")
    with pytest.raises(ValueError, match="preset must be"):
        read_catalog(t, preset="2mass")
    with pytest.raises(ValueError, match="5 column names"):
        read_catalog(t, mag_cols=MAG_COLS[:4], err_cols=ERR_COLS[:4], z_col="redshift")


# ------------------------------------------------------------------ flags


def _bad_rows_table():
    flux = np.full((8, 5), 100.0)
    ivar = np.full((8, 5), 1.0)
    z = np.full(8, 0.1)
    flux[1, 2] = np.nan            # non-finite flux
    ivar[2, 0] = 0.0               # ivar <= 0
    ivar[3, 4] = -1.0
    ivar[4, 1] = np.inf            # non-finite ivar
    flux[5, 3] = -2.0              # negative flux
    z[6] = np.nan                  # bad z
    z[7] = 0.45                    # outside the trained range
    return Table({"NMGY": np.concatenate([np.ones((8, 2)), flux], axis=1),
                  "NMGY_IVAR": np.concatenate([np.ones((8, 2)), ivar], axis=1), "Z": z})


@pytest.mark.parametrize("fmt", ["fits", "hdf5"])
def test_bad_rows_are_flagged_not_dropped(tmp_path, fmt):
    path, kw = _write(_bad_rows_table(), tmp_path, fmt)
    c = read_catalog(path, z_range=(0.0, 0.2), **kw)
    assert len(c) == 8
    expected = [0, FLAG_FLUX_NONFINITE, FLAG_IVAR_BAD, FLAG_IVAR_BAD, FLAG_IVAR_BAD,
                FLAG_FLUX_NONPOSITIVE, FLAG_Z_BAD, FLAG_Z_OUT_OF_RANGE]
    np.testing.assert_array_equal(c.flags, expected)
    np.testing.assert_array_equal(c.valid, [True] + [False] * 7)
    x = c.to_x()
    assert np.isfinite(x[0]).all()
    # only the bad value is NaN: the rest of a flagged row keeps its numbers (issue 18)
    nan = np.isnan(x)
    assert nan[1].tolist() == [False, False, True, False, False, False, False, True] + [False] * 3
    assert np.flatnonzero(nan[2]).tolist() == [5]          # u error (ivar 0)
    assert np.flatnonzero(nan[3]).tolist() == [9]          # z-band error (ivar < 0)
    assert np.flatnonzero(nan[5]).tolist() == [3, 8]       # i flux < 0: mag and error
    assert np.flatnonzero(nan[6]).tolist() == [10]         # the redshift
    assert (x[1:6, 10] == 0.1).all()
    assert np.isfinite(x[7]).all() and x[7, 10] == pytest.approx(0.45)
    counts = c.flag_counts()
    assert counts == {"flux_nonfinite": 1, "ivar_bad": 3, "flux_nonpositive": 1, "z_bad": 1,
                      "z_out_of_range": 1, "valid": 1}
    text = c.describe()
    assert "rows: 8, valid (no flag): 1" in text and "ivar_bad         : 3" in text
    # per-element NaN in mags/mag_errors
    assert np.isnan(c.mags()[5, 3]) and np.isfinite(c.mags()[5, 2])
    assert np.isnan(c.mag_errors()[2, 0]) and np.isfinite(c.mag_errors()[2, 1])


def test_negative_z_and_z_range_flags():
    flux = np.full((4, 5), 10.0)
    ivar = np.ones((4, 5))
    c = PhotometryCatalog.from_arrays(flux, ivar, [-0.01, 0.0, 0.2, 0.21], z_range=(0.0, 0.2))
    # z = 0 has no distance: flagged like a negative one (issue 18, case 3)
    np.testing.assert_array_equal(c.flags, [FLAG_Z_BAD, FLAG_Z_BAD, 0, FLAG_Z_OUT_OF_RANGE])
    wide = c.with_z_range(None)
    np.testing.assert_array_equal(wide.flags, [FLAG_Z_BAD, FLAG_Z_BAD, 0, 0])
    edge = PhotometryCatalog.from_arrays(flux[:3], ivar[:3], [Z_MIN, np.nextafter(Z_MIN, 1), 0.5])
    np.testing.assert_array_equal(edge.flags, [FLAG_Z_BAD, 0, 0])
    with pytest.raises(ValueError, match="zmin < zmax"):
        c.with_z_range((0.3, 0.1))


def test_masked_csv_cell_becomes_nan_and_is_flagged(tmp_path):
    t, _, _ = _generic_mag_table()
    t["g_mag"] = MaskedColumn(t["g_mag"], mask=[False, True])
    path, kw = _write(t, tmp_path, "csv")
    c = read_catalog(path, mag_cols=MAG_COLS, err_cols=ERR_COLS, z_col="redshift", **kw)
    assert len(c) == 2
    # no magnitude -> no flux, and no flux error either (sigma_f = err f ln10 / 2.5)
    np.testing.assert_array_equal(c.flags, [0, FLAG_FLUX_NONFINITE | FLAG_IVAR_BAD])


def test_to_x_by_hand():
    flux = np.array([[1.0, 10.0, 100.0, 1000.0, 10000.0]])
    sigma_f = 0.1 * flux
    c = PhotometryCatalog.from_arrays(flux, 1.0 / sigma_f**2, [0.07])
    x = c.to_x()
    assert x.shape == (1, 11)
    np.testing.assert_allclose(x[0, :5], [22.5, 20.0, 17.5, 15.0, 12.5], atol=1e-12)
    # 2.5 x 0.1 / ln 10 = 0.10857362...
    np.testing.assert_allclose(x[0, 5:10], 0.10857362047581294, rtol=1e-12)
    assert x[0, 10] == pytest.approx(0.07)


def test_catalog_is_frozen_and_validated():
    c = PhotometryCatalog.from_arrays(np.ones((2, 5)), np.ones((2, 5)), [0.1, 0.2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.source = "x"
    with pytest.raises(ValueError):
        c.flux[0, 0] = 3.0  # read-only array
    with pytest.raises(ValueError, match="flags do not match"):
        PhotometryCatalog(flux=np.ones((2, 5)), ivar=np.ones((2, 5)), z=[0.1, 0.2],
                          ids=[0, 1], flags=[1, 0])
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        PhotometryCatalog.from_arrays(np.ones((2, 4)), np.ones((2, 4)), [0.1, 0.2])
    sub = c.subset(np.array([False, True]))
    assert len(sub) == 1 and sub.z[0] == pytest.approx(0.2)
    t = c.to_table()
    assert t["flux"].shape == (2, 5) and t.meta["bands"] == list("ugriz")


# ------------------------------------------------------------------ real sample


@pytest.fixture(scope="module")
def sdss_sample():
    try:
        return cat.load_sdss_sample()
    except RuntimeError as err:  # pip download impossible (no network, no cache)
        pytest.skip(f"SDSS sample not obtainable here: {err}")


@pytest.mark.slow
def test_real_sdss_sample(sdss_sample):
    c = sdss_sample
    assert len(c) == 10_000
    assert c.z.min() == pytest.approx(0.010, abs=5e-4)
    assert c.z.max() == pytest.approx(0.583, abs=5e-4)
    assert np.median(c.z) == pytest.approx(0.099, abs=1e-3)
    with np.errstate(invalid="ignore"):
        good = np.all(c.snr() > 3, axis=1)
    assert good.sum() >= 9_800
    assert c.flag_counts()["ivar_bad"] == 0          # model-spec 6: no ivar <= 0
    assert c.valid.sum() + c.flag_counts()["flux_nonpositive"] == 10_000
    assert c.source_sha256 == fetch.SDSS_SAMPLE.member_sha256
    x = c.to_x()
    ok = np.isfinite(x).all(axis=1)
    assert ok.sum() == c.valid.sum()
    # AB r magnitudes of an SDSS main (r < 17.77 Petrosian) sample: median near 16.7
    assert 16.0 < np.median(x[ok, 2]) < 17.5

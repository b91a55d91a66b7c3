"""Flagged rows in a catalog fit (issue 18, second part): z at or below the minimum, missing
bands and sentinels with their own flag and reason, unreadable values named by row and
column, flagged rows keeping their valid values, a self-describing output."""
import json

import h5py
import numpy as np
import pytest
from astropy.table import Table

from provabgs_sbi.cli.main import main
from provabgs_sbi.flags import (FLAG_CHECK_FAILED, FLAG_FLOW_FAILED, FLAG_MAG_RANGE,
                                FLAG_MISSING_BAND, FLAG_POOR_FIT, FLAG_TOO_FEW_BANDS,
                                FLAG_Z_RANGE, NO_SAMPLES)
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.catalog import read_catalog
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.observation import SDSS as XL, Z_MIN
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.workflows.fit import DERIVED, fit_catalog, summary_units

FLOW = DEFAULT_FLOW.parent / "bc03"
MAGS = [18.9, 17.3, 16.6, 16.2, 15.9]
ERRS = [0.05, 0.006, 0.005, 0.005, 0.012]    # the noise model's medians
MAG_COLS, ERR_COLS = ["umag", "gmag", "rmag", "imag", "zmag"], ["eu", "eg", "er", "ei", "ez"]


@pytest.fixture(scope="module")
def post():
    return Posterior.load(FLOW)


def table(rows):
    """Table of rows (id, z, five mags, five errors); the values may be anything."""
    t = Table(names=["id", "z"] + MAG_COLS + ERR_COLS, dtype=[object] * 12)
    for r in rows:
        t.add_row(r)
    return t


def good(i, z=0.1):
    return [i, z] + MAGS + ERRS


def write_csv(tmp_path, lines, name="cat.csv"):
    path = tmp_path / name
    header = ",".join(["id", "z"] + MAG_COLS + ERR_COLS)
    path.write_text("\n".join([header] + [",".join(str(v) for v in r) for r in lines]) + "\n")
    return path


def read(path):
    return read_catalog(path, mag_cols=MAG_COLS, err_cols=ERR_COLS, z_col="z", id_col="id")


def fit(post, cat, out, **kw):
    fit_catalog(post, cat, out, n_samples=4, chunk=3, progress=False, **kw)
    with h5py.File(out, "r") as fh:
        return fh["summary"][:], fh["x"][:], fh["samples"][:]


def text(reason):
    return reason.decode("utf-8")


# ------------------------------------------------- 3. z at or below the minimum
def test_z_zero_is_flagged_with_its_reason_and_no_samples(post, tmp_path):
    path = write_csv(tmp_path, [good(1), good(2, 0.0), good(3, Z_MIN), good(4, -0.01)])
    summary, x, samples = fit(post, read(path), tmp_path / "fit.h5")
    assert summary["flags"].tolist() == [0, FLAG_Z_RANGE, FLAG_Z_RANGE, FLAG_Z_RANGE]
    assert text(summary["reason"][1]) == f"z=0 <= minimum {Z_MIN}"
    assert text(summary["reason"][3]) == f"z=-0.01 <= minimum {Z_MIN}"
    assert np.isnan(samples[1:]).all() and np.isfinite(samples[0]).all()
    assert x[1, 10] == 0.0 and np.allclose(x[1, :5], MAGS)   # valid values kept


# ------------------------------------------------- 9. missing bands and sentinels
@pytest.mark.parametrize("band, mag, err", [
    (0, 99, 99), (0, -99, 0.1), (2, -9999, -9999), (4, 17.0, 0), (1, 17.0, -1), (3, "", ""),
    (1, "nan", 0.1), (2, 17.0, "inf"), (0, 1e300, 0.1)])
def test_missing_band_gets_its_own_flag_not_a_flow_overflow(post, tmp_path, band, mag, err):
    row = good(2)
    row[2 + band], row[7 + band] = mag, err
    path = write_csv(tmp_path, [good(1), row])
    summary, x, samples = fit(post, read(path), tmp_path / "fit.h5")
    assert summary["flags"][0] == 0
    assert summary["flags"][1] == FLAG_MISSING_BAND | FLAG_TOO_FEW_BANDS, summary["flags"][1]
    assert not summary["flags"][1] & FLAG_FLOW_FAILED
    assert summary["bad_bands"][1] == 1 << band
    assert text(summary["reason"][1]) == (f"missing band: {'ugriz'[band]}; 4 of 5 bands "
                                          "present, the posterior needs 5")
    assert np.isnan(samples[1]).all()
    keep = [j for j in range(11) if j not in (band, 5 + band)]
    assert np.isfinite(x[1, keep]).all() and np.isnan(x[1, [band, 5 + band]]).all()


def test_nonpositive_flux_reason_gives_the_flux(post, tmp_path):
    flux = np.full((2, 5), 100.0)
    flux[1, 3] = -2.5
    t = Table({"NMGY": np.c_[np.ones((2, 2)), flux], "NMGY_IVAR": np.ones((2, 7)), "Z": [0.1, 0.1]})
    cat = read_catalog(t, preset="nsa")
    summary, _, _ = fit(post, cat, tmp_path / "fit.h5")
    assert summary["flags"][1] & FLAG_MISSING_BAND
    assert "missing band: i (flux -2.5 nmgy <= 0)" in text(summary["reason"][1])


def test_out_of_range_magnitude_reason_names_band_and_value(post, tmp_path):
    row = good(2)
    row[2] = 31.5                              # u far fainter than anything trained on
    summary, _, samples = fit(post, read(write_csv(tmp_path, [row])), tmp_path / "fit.h5")
    assert summary["flags"][0] & FLAG_MAG_RANGE and summary["bad_bands"][0] & 1
    assert "mag outside training range: u=31.5" in text(summary["reason"][0])


@pytest.mark.parametrize("cell, shown", [("abc", "'abc'"), ("1.2.3", "'1.2.3'")])
def test_string_in_numeric_column_names_row_and_column(tmp_path, cell, shown):
    rows = [good(1), good(2), good(3)]
    rows[2][3] = cell                          # gmag of data row 2
    with pytest.raises(ValueError, match=f"column 'gmag' .*row 2 holds {shown}, not a number"):
        read(write_csv(tmp_path, rows))


def test_string_in_numeric_column_is_one_line_from_the_cli(tmp_path, capsys):
    rows = [good(1), good(2)]
    rows[1][1] = "0.1z"
    path = write_csv(tmp_path, rows)
    rc = main(["posterior", str(path), "--mag-cols", ",".join(MAG_COLS), "--err-cols",
               ",".join(ERR_COLS), "--z-col", "z", "--flow", str(FLOW), "--no-ppc",
               "--out", str(tmp_path / "o.h5")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "column 'z' (redshift): row 1 holds '0.1z', not a number" in err


# ------------------------------------------------- checks that cannot be computed
class NaNModel:
    """A predictive-check model whose photometry is all NaN (a broken emulator)."""

    def photometry(self, theta, z):
        return np.full((len(theta), 5), np.nan)


def test_predictive_check_that_cannot_be_computed_is_flagged(post, tmp_path):
    summary, _, _ = fit(post, read(write_csv(tmp_path, [good(1), good(2, 0.0)])),
                        tmp_path / "fit.h5", model=NaNModel())
    assert summary["flags"][0] == FLAG_CHECK_FAILED and not summary["flags"][0] & FLAG_POOR_FIT
    assert text(summary["reason"][0]) == "predictive check gave no finite chi2"
    assert summary["flags"][1] == FLAG_Z_RANGE          # no samples: nothing to check


# ------------------------------------------------- 10. a self-describing output
def test_output_carries_column_names_and_units(post, tmp_path):
    out = tmp_path / "fit.h5"
    fit(post, read(write_csv(tmp_path, [good(1)])), out)
    with h5py.File(out, "r") as fh:
        assert json.loads(fh["samples"].attrs["columns"]) == list(PARAM_NAMES)
        units = json.loads(fh["samples"].attrs["units"])
        assert units[PARAM_NAMES.index("log_mstar")] == "log10(Msun)"
        assert units[PARAM_NAMES.index("tburst")] == "Gyr"
        assert json.loads(fh["x"].attrs["columns"]) == list(XL.names)
        assert json.loads(fh["x"].attrs["units"])[0] == "mag (AB)"
        assert json.loads(fh["stats"].attrs["quantities"]) == list(PARAM_NAMES) + list(DERIVED)
        assert json.loads(fh["stats"].attrs["percentiles"]) == [16, 50, 84]
        assert fh["derived/sfr_100myr"].attrs["unit"] == "Msun/yr"
        assert fh["model_flux_best"].attrs["unit"] == "nanomaggy (AB)"
        summary_u = json.loads(fh["summary"].attrs["units"])
        assert list(summary_u) == list(fh["summary"].dtype.names) == list(summary_units())
        assert summary_u["tburst_p50"] == "Gyr"
        assert json.loads(fh["summary"].attrs["bad_bands_bits"]) == {"u": 1, "g": 2, "r": 4,
                                                                     "i": 8, "z": 16}
        names = json.loads(fh.attrs["flag_names"])
        assert names[str(FLAG_MISSING_BAND)] == "missing_band"
        assert set(np.asarray(list(map(int, names)))) >= {NO_SAMPLES & -NO_SAMPLES}

"""Catalog fits that never mix, lose or silently corrupt data (issue 18, first part):
resume keyed to the exact work, no silent overwrite, the console summary from the file,
stored samples inside the prior, one-line errors from ``provabgs-sbi posterior``."""
import h5py
import numpy as np
import pytest

from provabgs_sbi.cli.main import main
from provabgs_sbi.flags import FLAG_FLOW_FAILED, count_flags
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.io.h5store import SettingsMismatch
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.parameters import from_warped
from provabgs_sbi.model.photometry import mag_to_nanomaggies
from provabgs_sbi.model.priors import HIGH, LOW, Prior
from provabgs_sbi.workflows import fit, fit_output
from provabgs_sbi.workflows.fit import fit_catalog, fit_settings, stored_samples

FLOW = DEFAULT_FLOW.parent / "bc03"
OTHER_FLOW = DEFAULT_FLOW.parent / "bc03_logbeta1"
assert FLOW != OTHER_FLOW
MAGS = np.array([18.9, 17.3, 16.6, 16.2, 15.9])
KW = dict(n_samples=8, chunk=2, progress=False)


@pytest.fixture(scope="module")
def post():
    return Posterior.load(FLOW)


def make_catalog(n=5, shift=0.0):
    mags = MAGS + np.linspace(0, 0.5, n)[:, None] + shift
    flux = mag_to_nanomaggies(mags)
    sig = flux * 0.01
    return PhotometryCatalog.from_arrays(flux, 1 / sig**2, np.linspace(0.05, 0.15, n))


def interrupt_after_first_chunk(monkeypatch):
    """Make the next fit raise KeyboardInterrupt once its first chunk is committed."""
    real = fit_output.commit              # what write_chunk commits each chunk with

    def commit_then_stop(fh, **progress):
        real(fh, **progress)
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_output, "commit", commit_then_stop)
    return lambda: monkeypatch.setattr(fit_output, "commit", real)


def read_all(path):
    out = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                      if isinstance(obj, h5py.Dataset) else None)
        attrs = dict(fh.attrs)
    return out, attrs


def assert_same_file(a, b):
    da, aa = read_all(a)
    db, ab = read_all(b)
    assert sorted(da) == sorted(db) and aa == ab
    for name in da:
        if da[name].dtype.names:
            for col in da[name].dtype.names:
                x, y = da[name][col], db[name][col]
                assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (name, col)
        else:
            assert np.array_equal(da[name], db[name], equal_nan=True), name


# ---------------------------------------------------------------- 1. resume keyed to the work
def test_resumed_fit_is_bit_identical_to_uninterrupted(post, tmp_path, monkeypatch):
    cat = make_catalog()
    whole = fit_catalog(post, cat, tmp_path / "whole.h5", **KW)
    restore = interrupt_after_first_chunk(monkeypatch)
    out = tmp_path / "resumed.h5"
    with pytest.raises(KeyboardInterrupt):
        fit_catalog(post, cat, out, **KW)
    part = tmp_path / "resumed.h5.part"
    assert part.exists() and not out.exists()
    with h5py.File(part, "r") as fh:
        assert fh.attrs["n_done"] == 2
    restore()
    fit_catalog(post, cat, out, **KW)
    assert not part.exists()
    assert_same_file(whole, out)


def test_fewer_stored_draws_keep_the_summaries_of_all_draws(post, tmp_path):
    """n_store: the stored draws are the first of the full fit's, the percentiles the same
    (computed from all draws); n_store = 0 writes summaries only; out of range is refused."""
    cat = make_catalog()
    full, _ = read_all(fit_catalog(post, cat, tmp_path / "full.h5", **KW))
    some, _ = read_all(fit_catalog(post, cat, tmp_path / "some.h5", n_store=3, **KW))
    assert some["samples"].shape == (5, 3, 12)
    np.testing.assert_array_equal(some["samples"], full["samples"][:, :3])
    np.testing.assert_array_equal(some["derived/z_mw"], full["derived/z_mw"][:, :3])
    np.testing.assert_array_equal(some["stats"], full["stats"])
    none, _ = read_all(fit_catalog(post, cat, tmp_path / "none.h5", n_store=0, **KW))
    assert "samples" not in none and not any(k.startswith("derived") for k in none)
    np.testing.assert_array_equal(none["stats"], full["stats"])
    for bad in (-1, 9):
        with pytest.raises(ValueError, match="n_store"):
            fit_catalog(post, cat, tmp_path / "bad.h5", n_store=bad, **KW)


@pytest.mark.parametrize("change", ["rows", "content", "posterior", "seed"])
def test_resume_with_other_work_is_refused(post, tmp_path, monkeypatch, change):
    full = make_catalog(8)
    cat, rows = full.subset(np.arange(0, 5)), np.arange(0, 5)
    restore = interrupt_after_first_chunk(monkeypatch)
    out = tmp_path / "fit.h5"
    with pytest.raises(KeyboardInterrupt):
        fit_catalog(post, cat, out, rows=rows, **KW)
    restore()
    part = tmp_path / "fit.h5.part"
    before = part.read_bytes()
    p2, seed = post, 0
    if change == "rows":
        cat, rows = full.subset(np.arange(3, 8)), np.arange(3, 8)
    elif change == "content":
        cat = make_catalog(5, shift=0.01)
    elif change == "posterior":
        p2 = Posterior.load(OTHER_FLOW)
    else:
        seed = 1
    with pytest.raises(SettingsMismatch, match=r"not merged.*delete it or pass overwrite=True"):
        fit_catalog(p2, cat, out, rows=rows, **dict(KW, seed=seed))
    assert part.read_bytes() == before and not out.exists()     # left as it was
    fit_catalog(p2, cat, out, rows=rows, overwrite=True, **dict(KW, seed=seed))
    with h5py.File(out, "r") as fh:
        assert np.array_equal(fh["x"][:], cat.to_x(), equal_nan=True)


def test_settings_record_chunk_samples_and_predictive_check(post):
    cat = make_catalog()
    x, ids = cat.to_x(), np.asarray(cat.ids)
    base = fit_settings(post, ids, x, None, 8, 0, 2, None)
    assert base == fit_settings(post, ids, x, None, 8, 0, 2, None)
    for other in (fit_settings(post, ids, x, None, 9, 0, 2, None),
                  fit_settings(post, ids, x, None, 8, 0, 3, None),
                  fit_settings(post, ids, x, [0, 1, 2, 3, 4], 8, 0, 2, None),
                  fit_settings(post, ids[::-1], x, None, 8, 0, 2, None),
                  fit_settings(post, ids, x, None, 8, 0, 2, object())):
        assert other != base


# ---------------------------------------------------------------- 2. never overwrite
def test_existing_output_is_kept_without_overwrite(post, tmp_path):
    cat = make_catalog(3)
    out = tmp_path / "new" / "dir" / "fit.h5"             # a missing folder is created
    fit_catalog(post, cat, out, **KW)
    stamp = out.read_bytes()
    assert fit_catalog(post, cat, out, **KW) == out       # this very fit again: its file, untouched
    assert out.read_bytes() == stamp
    with pytest.raises(FileExistsError, match="overwrite"):
        fit_catalog(post, cat, out, **dict(KW, seed=3))   # other work into the same file
    assert out.read_bytes() == stamp
    fit_catalog(post, cat, out, overwrite=True, **dict(KW, seed=3))
    assert out.read_bytes() != stamp


# ---------------------------------------------------------------- 4. samples inside the prior
def bound_points():
    """Physical points with one warped coordinate at its lower or upper bound."""
    mid = (LOW + HIGH) / 2
    pts = []
    for j in range(len(LOW)):
        for bound in (LOW[j], HIGH[j]):
            w = mid.copy()
            w[j] = bound
            pts.append(w)
    w = mid.copy()
    w[1:4] = 1.0                        # beta1..3 = 0, beta4 = 1 (a corner of the simplex)
    pts.append(w)
    return from_warped(np.array(pts))


def positive_density(theta, kind="default"):
    """Points of ``theta`` where the prior's density is positive in float64. At u1 = 0 or
    u2 = 0 (a beta at 0 with the next ones) the flat-Dirichlet density is 0 and the
    Jacobian infinite, so those bound points are checked for support only."""
    with np.errstate(all="ignore"):
        return np.isfinite(Prior(kind).log_prob(theta))


def assert_inside_prior(stored, theta):
    with np.errstate(all="ignore"):
        for kind in ("default", "sedflow"):
            assert np.all(Prior(kind).in_support(stored))
            keep = positive_density(theta, kind)
            assert np.all(np.isfinite(Prior(kind).log_prob(stored[keep])))


def test_stored_samples_stay_inside_prior_on_every_bound():
    theta = bound_points()
    assert np.all(Prior().in_support(theta)) and positive_density(theta).sum() >= 19
    assert not np.all(Prior().in_support(theta.astype(np.float32)))   # the bug
    stored = stored_samples(theta)
    assert stored.dtype == np.float32
    assert_inside_prior(stored, theta)
    np.testing.assert_allclose(stored, theta, rtol=1e-6, atol=1e-7)
    inside = from_warped(((LOW + HIGH) / 2)[None])
    assert np.array_equal(stored_samples(inside), inside.astype(np.float32))   # unchanged
    assert np.isnan(stored_samples(np.full((1, 12), np.nan))).all()


def test_fit_stores_boundary_draws_inside_prior(post, tmp_path, monkeypatch):
    theta = bound_points()
    cat = make_catalog(2)

    def sample_at_bounds(x, n, seed=None, strict=True):
        return np.broadcast_to(theta[:n], (len(x), n, 12)).copy()

    class NoDerived:
        def derived(self, flat, z):
            return {k: np.zeros(len(flat)) for k in fit.DERIVED}

    monkeypatch.setattr(post, "sample", sample_at_bounds)
    out = fit_catalog(post, cat, tmp_path / "fit.h5", n_samples=len(theta), chunk=2,
                      progress=False, derived_model=NoDerived())
    with h5py.File(out, "r") as fh:
        stored = fh["samples"][:]
    for row in stored:
        assert_inside_prior(row, theta)


# ---------------------------------------------------------------- 3, 5: the command line
@pytest.fixture()
def csv(tmp_path):
    from astropy.table import Table

    cat = make_catalog(5)
    t = Table({"id": np.arange(100, 105), "z": cat.z})
    for b, m, e in zip("ugriz", cat.mags().T, cat.mag_errors().T):
        t[f"{b}mag"], t[f"e{b}"] = m, e
    path = tmp_path / "cat.csv"
    t.write(path)
    return path


def posterior_cli(csv, out, *extra):
    return main(["posterior", str(csv), "--mag-cols", "umag,gmag,rmag,imag,zmag",
                 "--err-cols", "eu,eg,er,ei,ez", "--z-col", "z", "--flow", str(FLOW), "--no-ppc",
                 "--n-samples", "4", "--out", str(out), *extra])


def test_console_counts_the_files_final_flags(csv, tmp_path, capsys, monkeypatch):
    real = Posterior.sample

    def first_row_overflows(self, x, n, seed=None, strict=True):
        s = real(self, x, n, seed=seed, strict=strict)
        if seed[1] == 0:
            s[0] = np.nan
        return s

    monkeypatch.setattr(Posterior, "sample", first_row_overflows)
    out = tmp_path / "fit.h5"
    assert posterior_cli(csv, out) == 0
    with h5py.File(out, "r") as fh:
        flags = fh["summary"]["flags"]
    assert flags[0] & FLAG_FLOW_FAILED
    printed = capsys.readouterr().out
    assert str(count_flags(flags)) in printed and "'flow_overflow_no_samples': 1" in printed


def assert_one_line_error(rc, capsys, tmp_path, match):
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert match in err, err
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize("extra, match", [
    (["--rows", "9"], "outside the table"),
    (["--rows=-2:"], "need 0 <= a < b"),
    (["--rows", "1,1"], "more than once"),
    (["--rows", "3:9"], "need 0 <= a < b <= 5"),
])
def test_bad_rows_are_one_line_errors(csv, tmp_path, capsys, extra, match):
    assert_one_line_error(posterior_cli(csv, tmp_path / "o.h5", *extra), capsys, tmp_path, match)


def test_wrong_column_lists_available_columns(csv, tmp_path, capsys):
    rc = main(["posterior", str(csv), "--mag-cols", "u,gmag,rmag,imag,zmag", "--err-cols",
               "eu,eg,er,ei,ez", "--z-col", "z", "--flow", str(FLOW), "--no-ppc",
               "--out", str(tmp_path / "o.h5")])
    assert_one_line_error(rc, capsys, tmp_path, "Columns found: id, z, umag, eu")


def test_duplicate_ids_header_only_and_zero_samples(csv, tmp_path, capsys):
    text = csv.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(text[:3] + [text[2]]) + "\n")
    assert_one_line_error(posterior_cli(dup, tmp_path / "o.h5"), capsys, tmp_path,
                          "more than once, e.g. 101")
    empty = tmp_path / "empty.csv"
    empty.write_text(text[0] + "\n")
    assert_one_line_error(posterior_cli(empty, tmp_path / "o.h5"), capsys, tmp_path, "no rows")
    with pytest.raises(SystemExit) as exc:
        posterior_cli(csv, tmp_path / "o.h5", "--n-samples", "0")
    assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_out_is_never_the_catalog_and_never_replaced_silently(csv, tmp_path, capsys):
    stamp = csv.read_bytes()
    for extra in ((), ("--overwrite",)):
        assert_one_line_error(posterior_cli(csv, csv, *extra), capsys, tmp_path,
                              "is the input catalog")
    assert csv.read_bytes() == stamp
    out = tmp_path / "missing" / "fit.h5"
    assert posterior_cli(csv, out) == 0 and out.exists()
    capsys.readouterr()
    assert_one_line_error(posterior_cli(csv, out), capsys, tmp_path, "--overwrite")
    assert posterior_cli(csv, out, "--overwrite") == 0


def test_ctrl_c_exits_130_and_the_same_command_resumes(csv, tmp_path, capsys, monkeypatch):
    restore = interrupt_after_first_chunk(monkeypatch)
    out = tmp_path / "fit.h5"
    assert posterior_cli(csv, out) == 130
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.lstrip("\r").startswith("posteriors:")]   # tqdm's bar
    assert len(err) == 1 and "rerunning the same command resumes" in err[0], err
    assert (tmp_path / "fit.h5.part").exists()
    restore()
    assert posterior_cli(csv, out) == 0 and out.exists()
    whole = tmp_path / "whole.h5"
    assert posterior_cli(csv, whole) == 0
    assert_same_file(out, whole)


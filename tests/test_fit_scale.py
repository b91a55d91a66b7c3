"""Catalog fits at scale (issue 21): catalogs read a chunk at a time from FITS, HDF5 and
Parquet give the numbers reading them whole gives, and a fit on a 2-worker Dask
LocalCluster, resumed from an interrupted serial fit, writes the serial fit's file."""
import numpy as np
import pytest
from astropy.table import Table

from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.catalog import read_catalog
from provabgs_sbi.io.catalog_stream import CatalogFile
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.photometry import mag_to_nanomaggies
from provabgs_sbi.workflows.fit import fit_catalog

from tests.test_fit_safety import assert_same_file, interrupt_after_first_chunk, read_all

COLS = {"flux_cols": "FLUX", "ivar_cols": "IVAR", "z_col": "Z"}


def catalog_table(n=53, seed=3):
    """A table of plausible galaxies with a few bad rows (a missing band, z = 0)."""
    rng = np.random.default_rng(seed)
    mags = np.array([18.9, 17.3, 16.6, 16.2, 15.9]) + rng.uniform(-0.5, 1.5, (n, 1)) \
        + rng.normal(0, 0.1, (n, 5))
    flux = mag_to_nanomaggies(mags)
    ivar = 1 / (flux * rng.uniform(0.005, 0.03, (n, 5))) ** 2
    z = rng.uniform(0.02, 0.25, n)
    flux[5, 2] = np.nan
    z[7] = 0.0
    return Table({"OBJID": 1000 + np.arange(n), "FLUX": flux, "IVAR": ivar, "Z": z})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("catalogs")
    table = catalog_table()
    paths = {}
    for suffix in ("fits", "h5", "parquet", "ecsv"):
        paths[suffix] = d / f"cat.{suffix}"
        kw = {"path": "data"} if suffix == "h5" else {}
        table.write(paths[suffix], **kw)
    return table, paths


@pytest.mark.parametrize("suffix", ["fits", "h5", "parquet", "ecsv"])
def test_catalog_file_slices_equal_the_whole_read(files, suffix):
    table, paths = files
    whole = read_catalog(table, z_range=(0.0, 0.3), **COLS)
    src = CatalogFile(paths[suffix], {**COLS, "z_range": (0.0, 0.3)})
    assert len(src) == len(table)
    assert src.format == {"h5": "hdf5", "ecsv": "other"}.get(suffix, suffix)
    parts = list(src.chunks(20))
    assert [s for s, _ in parts] == [0, 20, 40] and len(parts[-1][1]) == 13
    for start, cat in parts:
        sl = slice(start, start + len(cat))
        np.testing.assert_array_equal(cat.to_x(), whole.to_x()[sl])
        np.testing.assert_array_equal(cat.ids, whole.ids[sl])
        np.testing.assert_array_equal(cat.flags, whole.flags[sl])
    with pytest.raises(ValueError, match="not in the table"):
        src.read(53, 60)


def test_row_index_ids_count_from_the_start_of_the_file(files, tmp_path):
    table, _ = files
    table = table.copy()
    table.remove_column("OBJID")
    table.write(tmp_path / "noid.fits")
    cat = CatalogFile(tmp_path / "noid.fits", COLS).read(40, 45)
    np.testing.assert_array_equal(cat.ids, np.arange(40, 45))


@pytest.fixture(scope="module")
def post():
    return Posterior.load(DEFAULT_FLOW)


KW = dict(n_samples=20, chunk=10, progress=False)


def test_streamed_fit_equals_the_in_memory_fit(files, post, tmp_path):
    table, paths = files
    src = CatalogFile(paths["h5"], {**COLS, "z_range": post.z_range})
    cat = read_catalog(table, z_range=post.z_range, **COLS)
    a = fit_catalog(post, cat, tmp_path / "memory.h5", **KW)
    b = fit_catalog(post, src, tmp_path / "stream.h5", n_store=5, **KW)
    da, _ = read_all(a)
    db, _ = read_all(b)
    np.testing.assert_array_equal(db["samples"], da["samples"][:, :5])
    for name in ("stats", "x", "chi2_best"):
        np.testing.assert_array_equal(db[name], da[name])
    for col in da["summary"].dtype.names:
        x, y = da["summary"][col], db["summary"][col]
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), col
    assert db["summary"]["flags"][7] != 0 and db["summary"]["flags"][5] != 0


def test_dask_fit_resumed_from_a_serial_one_is_the_serial_file(files, post, tmp_path,
                                                                   monkeypatch):
    pytest.importorskip("distributed")
    from provabgs_sbi.workflows.fit_dask import local_client

    table, paths = files
    src = CatalogFile(paths["parquet"], {**COLS, "z_range": post.z_range})
    serial = fit_catalog(post, src, tmp_path / "serial.h5", **KW)
    out = tmp_path / "dask.h5"
    restore = interrupt_after_first_chunk(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        fit_catalog(post, src, out, **KW)
    restore()
    with local_client(n_workers=2) as client:
        assert len(client.nthreads()) == 2
        fit_catalog(post, src, out, client=client, **KW)
    assert_same_file(serial, out)


@pytest.mark.parametrize("bad", ["local:0", "local:x", "local:-2"])
def test_scheduler_option_refuses_a_bad_worker_count(bad):
    from provabgs_sbi.cli.commands import _dask_client

    with pytest.raises(ValueError, match="local:N needs N >= 1"):
        _dask_client(bad)
    assert _dask_client(None) is None

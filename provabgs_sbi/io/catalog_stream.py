"""Catalogs read a slice of rows at a time, so that a fit's memory does not grow with them.

A :class:`CatalogFile` names a table file and how to read it (the options of
:func:`~provabgs_sbi.io.catalog.read_catalog`); :meth:`CatalogFile.read` returns rows
``[start, stop)`` as a :class:`~provabgs_sbi.io.catalog.PhotometryCatalog` with the same
columns, corrections and flags that reading the whole file would give those rows, and
:meth:`CatalogFile.chunks` walks the file. Only the rows asked for are read:

- FITS binary tables (``.fits``, ``.fit``, ``.fts``): memory-mapped with astropy.io.fits;
- HDF5 tables (``.h5``, ``.hdf5``, ``.hdf``; a compound dataset as astropy writes it, at
  ``path=`` or the first one found): sliced with h5py;
- Parquet (``.parquet``, ``.pq``): the row groups holding the rows, read with pyarrow.

Any other format astropy reads (CSV, ECSV, compressed FITS, ...) is read whole once and then
sliced in memory (no memory bound).

Ids that are row indices (no id column) are the rows' indices in the whole file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from astropy.table import Table

from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog
from provabgs_sbi.io.hashing import sha256_file

_FITS = (".fits", ".fit", ".fts")
_HDF5 = (".h5", ".hdf5", ".hdf")
_PARQUET = (".parquet", ".pq")


def file_format(path) -> str:
    """``"fits"``, ``"hdf5"``, ``"parquet"`` (read in slices) or ``"other"`` (read whole)."""
    name = Path(path).name.lower()
    for kind, suffixes in (("fits", _FITS), ("hdf5", _HDF5), ("parquet", _PARQUET)):
        if name.endswith(suffixes):
            return kind
    return "other"


def _arrow_column(col) -> np.ndarray:
    """A pyarrow column as numpy: list columns (one (N, k) column) stacked to 2-D."""
    import pyarrow as pa

    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) \
            or pa.types.is_large_list(col.type):
        values = col.to_pylist()
        return np.array(values, dtype=np.float64) if len(values) else np.empty((0, 0))
    arr = col.to_numpy(zero_copy_only=False)
    if arr.dtype == object:
        arr = np.array([str(v) for v in arr])
    return arr


@dataclass(frozen=True)
class CatalogFile:
    """A photometry table file read ``read(start, stop)`` rows at a time.

    Parameters
    ----------
    path : path-like
        The table file.
    options : dict
        Keyword arguments of :func:`~provabgs_sbi.io.catalog.read_catalog` (``preset``,
        ``mag_cols``, ``err_cols``, ``flux_cols``, ``ivar_cols``, ``z_col``, ``id_col``,
        ``z_range``) and, for FITS ``hdu`` and for HDF5 ``path``, where the table is.

    Examples
    --------
    >>> src = CatalogFile("nsa.fits", {"preset": "nsa"})
    >>> len(src)                                   # rows, from the header
    >>> for start, cat in src.chunks(10_000):      # PhotometryCatalog of 10,000 rows each
    ...     ...
    """

    path: Path
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "path", Path(os.fspath(self.path)))
        if not self.path.is_file():
            raise FileNotFoundError(f"catalog {self.path} does not exist")
        object.__setattr__(self, "options", dict(self.options))

    @property
    def format(self) -> str:
        """How the file is read: see :func:`file_format`."""
        return file_format(self.path)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the file (read in blocks)."""
        return sha256_file(self.path)

    def _location(self):
        """(table options, read_catalog options): where the table is in the file."""
        where = {k: self.options[k] for k in ("hdu", "path") if k in self.options}
        rest = {k: v for k, v in self.options.items() if k not in where}
        return where, rest

    @cached_property
    def _whole(self) -> Table:
        where, _ = self._location()
        return Table.read(self.path, **where)

    def _hdf5_dataset(self, fh):
        where, _ = self._location()
        if "path" in where:
            return fh[where["path"]]
        found = []

        def visit(name, obj):
            if not found and hasattr(obj, "dtype") and obj.dtype.names:
                found.append(obj)

        fh.visititems(visit)
        if not found:
            raise ValueError(f"{self.path} holds no table (compound dataset)")
        return found[0]

    def _fits_hdu(self, hdul):
        where, _ = self._location()
        if "hdu" in where:
            return hdul[where["hdu"]]
        for hdu in hdul:
            if hdu.is_image is False and hdu.data is not None:
                return hdu
        raise ValueError(f"{self.path} holds no table HDU")

    def __len__(self) -> int:
        return self.n_rows

    @cached_property
    def n_rows(self) -> int:
        """Rows in the table (from the header or metadata, without reading the data)."""
        kind = self.format
        if kind == "fits":
            from astropy.io import fits

            with fits.open(self.path, memmap=True) as hdul:
                return int(self._fits_hdu(hdul).header["NAXIS2"])
        if kind == "hdf5":
            import h5py

            with h5py.File(self.path, "r") as fh:
                return int(self._hdf5_dataset(fh).shape[0])
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(self.path).metadata.num_rows)
        return len(self._whole)

    def _table(self, start: int, stop: int) -> Table:
        kind = self.format
        if kind == "fits":
            from astropy.io import fits

            with fits.open(self.path, memmap=True) as hdul:
                hdu = self._fits_hdu(hdul)
                return Table(np.array(hdu.data[start:stop]))       # copied out of the map
        if kind == "hdf5":
            import h5py

            with h5py.File(self.path, "r") as fh:
                return Table(self._hdf5_dataset(fh)[start:stop])
        if kind == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path)
            md = pf.metadata
            bounds = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
            groups = [i for i in range(md.num_row_groups) if bounds[i] < stop and bounds[i + 1] > start]
            arrow = pf.read_row_groups(groups).slice(start - bounds[groups[0]], stop - start)
            return Table({name: _arrow_column(arrow.column(name)) for name in arrow.column_names})
        return self._whole[start:stop]

    def read(self, start: int, stop: int) -> PhotometryCatalog:
        """Rows ``[start, stop)`` (clipped to the table) as a PhotometryCatalog.

        Raises
        ------
        ValueError
            An empty range, or what :func:`~provabgs_sbi.io.catalog.read_catalog` raises.
        """
        start, stop = int(start), min(int(stop), self.n_rows)
        if not 0 <= start < stop:
            raise ValueError(f"rows [{start}, {stop}) are not in the table of {self.n_rows} rows")
        _, options = self._location()
        cat = read_catalog(self._table(start, stop), id_offset=start, **options)
        return replace(cat, source=f"{self.path} rows {start}-{stop - 1} "
                                   f"[{cat.source.split('[', 1)[-1]}")

    def chunks(self, rows: int, start: int = 0):
        """Yield ``(first row, PhotometryCatalog)`` of ``rows`` rows at a time from ``start``."""
        for s in range(int(start), self.n_rows, int(rows)):
            yield s, self.read(s, s + int(rows))

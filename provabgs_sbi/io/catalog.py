"""Read ugriz galaxy photometry catalogs into one in-memory form (model-spec 2.2, 2.4, 5.8, 6).

Any table astropy can read (FITS, HDF5, CSV, ECSV, ...), or an astropy ``Table`` passed
directly, becomes a :class:`PhotometryCatalog`: AB nanomaggies and inverse variances in
ugriz, redshift, ids and a per-row quality bitmask. From it, :meth:`PhotometryCatalog.to_x`
builds SEDflow's conditioning vector x = [m_u..m_z, sigma_u..sigma_z, z] (AB magnitudes,
magnitude errors, redshift).

Column layouts (``preset``):

``"nsa"``
    NASA-Sloan Atlas: ``NMGY`` and ``NMGY_IVAR`` of shape (N, 7) in the band order
    F, N, u, g, r, i, z (columns 2:7 are ugriz), and ``Z``. NSA fluxes are already
    corrected for Galactic extinction and are taken as AB: nothing is applied.
``"sdss"``
    SDSS catalog fluxes: ``MODELFLUX``, ``MODELFLUX_IVAR``, ``EXTINCTION`` (each (N, 5)
    ugriz, or one column per band as CasJobs writes them, ``modelFlux_u``,
    ``modelFluxIvar_u``, ``extinction_u``, ...) and ``Z``. Fluxes are corrected for
    Galactic extinction and brought from the SDSS system to AB with
    :func:`provabgs_sbi.model.photometry.sdss_to_ab` (u_AB = u_SDSS - 0.04, z_AB = z_SDSS + 0.02).
generic
    ``mag_cols`` + ``err_cols`` (AB magnitudes and their errors) + ``z_col``, or
    ``flux_cols`` + ``ivar_cols`` (AB nanomaggies, nmgy^-2) + ``z_col``. Each of
    ``*_cols`` is five column names in ugriz order or the name of one (N, 5) column.

Column names are matched case-insensitively (an exact match wins). With no preset and no
generic columns the layout is detected from the column names (``NMGY``/``NMGY_IVAR`` ->
nsa, ``MODELFLUX``/``MODELFLUX_IVAR`` or ``modelFlux_u``... -> sdss).

Bad rows are never dropped: each row carries a bitmask of the ``FLAG_*`` constants below
(a bit is set when any band has the problem) and :attr:`PhotometryCatalog.valid` is
``flags == 0``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from provabgs_sbi.io.hashing import sha256_file
from provabgs_sbi.model.observation import XLayout, Z_MIN, missing_mag
from astropy.table import Table

from provabgs_sbi.io import fetch
from provabgs_sbi.flags import (CATALOG_FLAG_NAMES, FLAG_FLUX_NONFINITE,
                                FLAG_FLUX_NONPOSITIVE, FLAG_IVAR_BAD, FLAG_Z_BAD,
                                FLAG_Z_OUT_OF_RANGE)
from provabgs_sbi.model.photometry import (BANDS, ivar_to_sigma, mag_error, mag_to_nanomaggies,
                         nanomaggies_to_mag, sdss_to_ab)

PRESETS = ("nsa", "sdss")
#: Column names tried, in order, for the object id when ``id_col`` is not given.
ID_COLUMNS = ("NSAID", "OBJID", "SPECOBJID", "TARGETID", "ID", "OBJ_ID")
#: Per-band column name patterns of the sdss preset in CasJobs style (``{b}`` = band).
_SDSS_PER_BAND = {"flux": "modelFlux_{b}", "ivar": "modelFluxIvar_{b}",
                  "extinction": "extinction_{b}"}


def compute_flags(flux, ivar, z, z_range: tuple[float, float] | None = None) -> np.ndarray:
    """Quality bitmask of each row (the ``FLAG_*`` constants).

    Parameters
    ----------
    flux : ndarray of shape (N, 5)
        AB nanomaggies.
    ivar : ndarray of shape (N, 5)
        Inverse variances of ``flux``, nmgy^-2.
    z : ndarray of shape (N,)
        Redshifts.
    z_range : (float, float), optional
        Trained redshift range [zmin, zmax]; rows outside get ``FLAG_Z_OUT_OF_RANGE``.
        Redshifts not finite or at or below
        :data:`~provabgs_sbi.model.observation.Z_MIN` get ``FLAG_Z_BAD`` instead.

    Returns
    -------
    ndarray of shape (N,), int32
    """
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    flags = np.zeros(len(z), dtype=np.int32)
    finite_flux = np.isfinite(flux)
    flags[~finite_flux.all(axis=1)] |= FLAG_FLUX_NONFINITE
    with np.errstate(invalid="ignore"):
        ivar_ok = np.isfinite(ivar) & (ivar > 0)
        flags[~ivar_ok.all(axis=1)] |= FLAG_IVAR_BAD
        flags[(finite_flux & (flux <= 0)).any(axis=1)] |= FLAG_FLUX_NONPOSITIVE
        z_ok = np.isfinite(z) & (z > Z_MIN)
    flags[~z_ok] |= FLAG_Z_BAD
    if z_range is not None:
        zmin, zmax = z_range
        flags[z_ok & ((z < zmin) | (z > zmax))] |= FLAG_Z_OUT_OF_RANGE
    return flags


def _check_z_range(z_range):
    if z_range is None:
        return None
    if len(z_range) != 2:
        raise ValueError(f"z_range must be (zmin, zmax), got {z_range!r}")
    zmin, zmax = float(z_range[0]), float(z_range[1])
    if not (np.isfinite(zmin) and np.isfinite(zmax) and zmin < zmax):
        raise ValueError(f"z_range must be finite with zmin < zmax, got {z_range!r}")
    return (zmin, zmax)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class PhotometryCatalog:
    """Photometry of N galaxies in AB nanomaggies (ugriz unless ``bands`` says otherwise),
    with redshifts and quality flags.

    Build one with :func:`read_catalog`, :func:`load_sdss_sample` or
    :meth:`from_arrays`; the constructor checks shapes and that ``flags`` agree with
    the data.

    Attributes
    ----------
    flux : ndarray of shape (N, n_bands)
        AB nanomaggies in ``bands``, Galactic-extinction corrected.
    ivar : ndarray of shape (N, n_bands)
        Inverse variance of ``flux``, nmgy^-2.
    z : ndarray of shape (N,)
        Redshift.
    ids : ndarray of shape (N,)
        Catalog id column if the table had one, else the row index.
    flags : ndarray of shape (N,), int32
        Bitmask of the ``FLAG_*`` constants (see :func:`compute_flags`).
    source : str
        Where the data came from (file and layout).
    source_sha256 : str or None
        SHA-256 of the source file, when read from a file.
    z_range : (float, float) or None
        Redshift range used for ``FLAG_Z_OUT_OF_RANGE``.
    bands : tuple of str
        Band names of the columns (default ugriz).
    """

    flux: np.ndarray
    ivar: np.ndarray
    z: np.ndarray
    ids: np.ndarray
    flags: np.ndarray
    source: str = "arrays"
    source_sha256: str | None = None
    z_range: tuple[float, float] | None = None
    bands: tuple = BANDS

    def __post_init__(self):
        object.__setattr__(self, "bands", tuple(XLayout(tuple(self.bands)).bands))
        nb = len(self.bands)
        flux = np.asarray(self.flux, dtype=np.float64)
        ivar = np.asarray(self.ivar, dtype=np.float64)
        z = np.asarray(self.z, dtype=np.float64)
        ids = np.asarray(self.ids)
        flags = np.asarray(self.flags)
        n = len(z)
        if z.ndim != 1:
            raise ValueError(f"z must have shape (N,), got {z.shape}")
        for name, arr in (("flux", flux), ("ivar", ivar)):
            if arr.shape != (n, nb):
                raise ValueError(f"{name} must have shape (N, {nb}) = ({n}, {nb}), "
                                 f"got {arr.shape}")
        for name, arr in (("ids", ids), ("flags", flags)):
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        if not np.issubdtype(flags.dtype, np.integer):
            raise ValueError(f"flags must be integers, got dtype {flags.dtype}")
        z_range = _check_z_range(self.z_range)
        expected = compute_flags(flux, ivar, z, z_range)
        if not np.array_equal(flags, expected):
            raise ValueError("flags do not match the data; build the catalog with "
                             "PhotometryCatalog.from_arrays or compute_flags")
        object.__setattr__(self, "flux", _readonly(flux))
        object.__setattr__(self, "ivar", _readonly(ivar))
        object.__setattr__(self, "z", _readonly(z))
        object.__setattr__(self, "ids", _readonly(ids))
        object.__setattr__(self, "flags", _readonly(flags.astype(np.int32)))
        object.__setattr__(self, "z_range", z_range)

    @classmethod
    def from_arrays(cls, flux, ivar, z, ids=None, *, z_range=None, source: str = "arrays",
                    source_sha256: str | None = None, bands=BANDS) -> "PhotometryCatalog":
        """Catalog from arrays already in AB nanomaggies; flags are computed.

        Parameters
        ----------
        flux, ivar : ndarray of shape (N, n_bands)
            AB nanomaggies and their inverse variances (nmgy^-2).
        z : ndarray of shape (N,)
        ids : ndarray of shape (N,), optional
            Default: row index.
        z_range : (float, float), optional
            Trained redshift range for ``FLAG_Z_OUT_OF_RANGE``.
        bands : sequence of str
            Band names of the columns (default ugriz).
        """
        z = np.asarray(z, dtype=np.float64)
        ids = np.arange(len(z)) if ids is None else np.asarray(ids)
        z_range = _check_z_range(z_range)
        flags = compute_flags(flux, ivar, z, z_range)
        return cls(flux=flux, ivar=ivar, z=z, ids=ids, flags=flags, source=source,
                   source_sha256=source_sha256, z_range=z_range, bands=tuple(bands))

    def __len__(self) -> int:
        return len(self.z)

    @property
    def valid(self) -> np.ndarray:
        """Rows with no flag set, ndarray of shape (N,), bool."""
        return self.flags == 0

    def sigma_flux(self) -> np.ndarray:
        """Flux errors ivar^-1/2 in nanomaggies, shape (N, 5) (NaN where ivar <= 0)."""
        return ivar_to_sigma(self.ivar)

    def snr(self) -> np.ndarray:
        """Signal to noise flux * sqrt(ivar), shape (N, 5) (NaN where ivar is unusable)."""
        return self.flux / self.sigma_flux()

    def mags(self) -> np.ndarray:
        """AB magnitudes 22.5 - 2.5 log10(flux), shape (N, 5); NaN where flux <= 0 or not finite."""
        with np.errstate(invalid="ignore"):
            return nanomaggies_to_mag(self.flux)

    def mag_errors(self) -> np.ndarray:
        """Magnitude errors 2.5 sigma_f / (f ln 10), shape (N, 5).

        NaN where the flux is not positive and finite or ivar is unusable.
        """
        with np.errstate(invalid="ignore"):
            err = mag_error(self.flux, self.sigma_flux())
            return np.where(np.isfinite(self.flux) & (self.flux > 0), err, np.nan)

    @property
    def layout(self) -> XLayout:
        """The layout of :meth:`to_x` for these bands."""
        return XLayout(self.bands)

    def to_x(self) -> np.ndarray:
        """SEDflow conditioning vectors, shape (N, 2 n_bands + 1) (11 for ugriz).

        Columns: the AB magnitudes; their magnitude errors; redshift (model-spec 2.2). Only what cannot be converted is NaN: the magnitude and error of
        a band whose flux is not finite or <= 0, the error of a band without a usable
        inverse variance. The redshift is kept as read, even where it is flagged, and the
        other bands of a flagged row keep their values (check :attr:`valid`).
        """
        return self.layout.assemble(self.mags(), self.mag_errors(), self.z)

    def flag_counts(self) -> dict[str, int]:
        """Number of rows carrying each flag (a row can carry several), plus ``valid``."""
        counts = {name: int(np.count_nonzero(self.flags & bit)) for bit, name in CATALOG_FLAG_NAMES.items()}
        counts["valid"] = int(np.count_nonzero(self.valid))
        return counts

    def describe(self) -> str:
        """Readable summary: source, size, redshift range and rows per flag."""
        counts = self.flag_counts()
        zf = self.z[np.isfinite(self.z)]
        zr = f"{zf.min():.4g} - {zf.max():.4g}" if len(zf) else "none finite"
        lines = [f"PhotometryCatalog from {self.source}",
                 f"  rows: {len(self)}, valid (no flag): {counts['valid']}",
                 f"  redshift (finite): {zr}"
                 + ("" if self.z_range is None else f"; trained range {self.z_range}")]
        for bit, name in CATALOG_FLAG_NAMES.items():
            lines.append(f"  flag {bit:2d} {name:<17s}: {counts[name]}")
        return "\n".join(lines)

    def subset(self, index) -> "PhotometryCatalog":
        """Rows selected by a boolean mask or integer index, as a new catalog."""
        index = np.asarray(index)
        return replace(self, flux=self.flux[index], ivar=self.ivar[index], z=self.z[index],
                       ids=self.ids[index], flags=self.flags[index])

    def only_bands(self, keep) -> "PhotometryCatalog":
        """The same catalog with every band not in ``keep`` missing (flux and ivar NaN,
        flags recomputed): e.g. a ten-band catalog fitted with ugriz only by the same
        mask-aware posterior, to see what the other bands add."""
        keep = [keep] if isinstance(keep, str) else list(keep)
        unknown = set(keep) - set(self.bands)
        if unknown:
            raise ValueError(f"bands {sorted(unknown)} are not the catalog's {list(self.bands)}")
        drop = ~np.isin(self.bands, keep)
        flux, ivar = self.flux.copy(), self.ivar.copy()
        flux[:, drop] = ivar[:, drop] = np.nan
        return replace(self, flux=flux, ivar=ivar,
                       flags=compute_flags(flux, ivar, self.z, self.z_range))

    def with_z_range(self, z_range) -> "PhotometryCatalog":
        """The same catalog with flags recomputed for another trained ``z_range`` (or None)."""
        z_range = _check_z_range(z_range)
        return replace(self, z_range=z_range,
                       flags=compute_flags(self.flux, self.ivar, self.z, z_range))

    def to_table(self) -> Table:
        """Astropy Table with ids, flux, ivar, z, flags, mags and mag errors ((N, 5) columns)."""
        t = Table()
        t["id"] = self.ids
        t["flux"] = self.flux
        t["flux"].unit = "nanomaggy"
        t["ivar"] = self.ivar
        t["ivar"].unit = "nanomaggy-2"
        t["z"] = self.z
        t["flags"] = self.flags
        t["mag"] = self.mags()
        t["mag"].unit = "mag"
        t["mag_err"] = self.mag_errors()
        t["mag_err"].unit = "mag"
        t.meta["bands"] = list(self.bands)
        t.meta["source"] = self.source
        t.meta["flag_bits"] = {name: bit for bit, name in CATALOG_FLAG_NAMES.items()}
        return t


# --------------------------------------------------------------------------- reading


class MissingColumnError(KeyError, ValueError):
    """A column the reader needs is not in the table (a KeyError, and a ValueError so that
    the command line reports it in one line); ``str()`` is the plain message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _Columns:
    """Case-insensitive column lookup with errors that list what the table has."""

    def __init__(self, table: Table, what: str):
        self.table = table
        self.what = what
        self.lower: dict[str, str] = {}
        for name in table.colnames:
            self.lower.setdefault(name.lower(), name)

    def find(self, name: str) -> str | None:
        if name in self.table.colnames:
            return name
        return self.lower.get(name.lower())

    def has(self, *names: str) -> bool:
        return all(self.find(n) is not None for n in names)

    def missing_error(self, missing: Sequence[str], role: str) -> MissingColumnError:
        return MissingColumnError(
            f"{self.what}: column(s) {', '.join(repr(m) for m in missing)} needed for {role} "
            f"not found. Columns found: {', '.join(self.table.colnames)}")

    def get(self, name: str, role: str) -> np.ndarray:
        real = self.find(name)
        if real is None:
            raise self.missing_error([name], role)
        return _as_float(self.table[real], f"{self.what}: column {real!r} ({role})")

    def bands(self, cols, role: str, n_cols: int = len(BANDS), take=slice(None),
              names=BANDS) -> np.ndarray:
        """(N, n_bands) array from one column name per band of ``names`` or one (N, n_cols)
        column."""
        if isinstance(cols, str):
            arr = self.get(cols, role)
            if arr.ndim != 2 or arr.shape[1] != n_cols:
                raise ValueError(f"{self.what}: column {cols!r} ({role}) must have shape "
                                 f"(N, {n_cols}), got {arr.shape}")
            return arr[:, take]
        cols = list(cols)
        if len(cols) != len(names):
            raise ValueError(f"{role}: give {len(names)} column names in the order "
                             f"{', '.join(names)}, got {cols!r}")
        missing = [c for c in cols if self.find(c) is None]
        if missing:
            raise self.missing_error(missing, role)
        arrs = [self.get(c, role) for c in cols]
        for c, a in zip(cols, arrs):
            if a.ndim != 1:
                raise ValueError(f"{self.what}: column {c!r} ({role}) must be 1-D, got {a.shape}")
        return np.stack(arrs, axis=1)


def _as_float(col, what: str = "column") -> np.ndarray:
    """Column -> float64 ndarray, masked (empty) entries as NaN, units dropped.

    Raises
    ------
    ValueError
        An entry is not a number; the message names ``what`` (the column), the first such
        row (0-based, data rows) and its value.
    """
    values = np.ma.asarray(getattr(col, "value", col))  # Quantity columns of a QTable
    try:
        return np.ma.filled(values.astype(np.float64), np.nan)
    except (ValueError, TypeError):
        pass
    flat = values.reshape(len(values), -1)
    out = np.full(flat.shape, np.nan)
    mask = np.ma.getmaskarray(flat)
    for i, j in zip(*np.nonzero(~mask)):
        v = flat[i, j]
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        try:
            out[i, j] = float(text)
        except (ValueError, TypeError):
            raise ValueError(f"{what}: row {i} holds {text!r}, not a number") from None
    return out.reshape(values.shape)


def _detect_preset(cols: _Columns) -> str | None:
    if cols.has("NMGY", "NMGY_IVAR"):
        return "nsa"
    if cols.has("MODELFLUX", "MODELFLUX_IVAR") or cols.has(
            _SDSS_PER_BAND["flux"].format(b="u"), _SDSS_PER_BAND["ivar"].format(b="u")):
        return "sdss"
    return None


def _read_nsa(cols: _Columns, z_col: str | None):
    flux = cols.bands("NMGY", "NSA fluxes", n_cols=7, take=slice(2, 7))
    ivar = cols.bands("NMGY_IVAR", "NSA inverse variances", n_cols=7, take=slice(2, 7))
    z = cols.get(z_col or "Z", "redshift")
    return flux, ivar, z


def _read_sdss(cols: _Columns, z_col: str | None):
    def block(two_d: str, kind: str, role: str):
        if cols.find(two_d) is not None:
            return cols.bands(two_d, role)
        return cols.bands([_SDSS_PER_BAND[kind].format(b=b) for b in BANDS], role)

    flux = block("MODELFLUX", "flux", "SDSS model fluxes")
    ivar = block("MODELFLUX_IVAR", "ivar", "SDSS model flux inverse variances")
    ext = block("EXTINCTION", "extinction", "SDSS Galactic extinction")
    z = cols.get(z_col or "Z", "redshift")
    flux_ab, ivar_ab = sdss_to_ab(flux, ivar, ext)
    return flux_ab, ivar_ab, z


def _read_generic(cols: _Columns, mag_cols, err_cols, flux_cols, ivar_cols, z_col,
                  bands=BANDS, ab_offsets=None):
    """Generic columns of ``bands``; magnitudes (or fluxes) are brought to AB with
    ``ab_offsets`` (m_AB - m_catalog per band) when given."""
    if z_col is None:
        raise ValueError("generic columns need z_col (the redshift column)")
    nb = len(bands)
    offsets = np.zeros(nb) if ab_offsets is None else np.asarray(ab_offsets, dtype=np.float64)
    if mag_cols is not None:
        if err_cols is None or flux_cols is not None or ivar_cols is not None:
            raise ValueError("give mag_cols with err_cols, or flux_cols with ivar_cols, not a mix")
        ab = "AB magnitudes" if not np.any(offsets) else "magnitudes (before the AB offsets)"
        mag = cols.bands(mag_cols, ab, n_cols=nb, names=bands)
        err = cols.bands(err_cols, "magnitude errors", n_cols=nb, names=bands)
        missing = missing_mag(mag, err)     # NaN, sentinels (99, -9999, ...), error <= 0
        with np.errstate(over="ignore", invalid="ignore"):
            flux = np.where(missing, np.nan, mag_to_nanomaggies(mag + offsets))
            sigma_f = err * flux * np.log(10.0) / 2.5
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ivar = 1.0 / sigma_f**2
        ivar = np.where(~missing & np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    else:
        if flux_cols is None or ivar_cols is None or err_cols is not None:
            raise ValueError("give mag_cols with err_cols, or flux_cols with ivar_cols, not a mix")
        scale = 10.0 ** (-0.4 * offsets)        # catalog flux -> AB flux
        ab = "AB nanomaggies" if not np.any(offsets) else "nanomaggies (before the AB offsets)"
        flux = cols.bands(flux_cols, ab, n_cols=nb, names=bands) * scale
        ivar = cols.bands(ivar_cols, "inverse variances", n_cols=nb, names=bands) / scale**2
    z = cols.get(z_col, "redshift")
    return flux, ivar, z


def read_catalog(source, preset: str | None = None, *, mag_cols=None, err_cols=None,
                 flux_cols=None, ivar_cols=None, z_col: str | None = None,
                 id_col: str | None = None, z_range: tuple[float, float] | None = None,
                 id_offset: int = 0, survey=None, **read_kwargs) -> PhotometryCatalog:
    """Read a photometry table into a :class:`PhotometryCatalog`.

    Parameters
    ----------
    source : str, os.PathLike or astropy.table.Table
        A file astropy can read (FITS, HDF5, CSV, ECSV, ...) or a table.
    preset : {"nsa", "sdss"}, optional
        Column layout (see the module docstring). Default: generic columns if any
        ``*_cols`` is given, else detected from the column names.
    mag_cols, err_cols : sequence of 5 str or str, optional
        AB magnitude and magnitude-error columns (ugriz order), or one (N, 5) column each.
    flux_cols, ivar_cols : sequence of 5 str or str, optional
        AB nanomaggy and inverse-variance (nmgy^-2) columns.
    z_col : str, optional
        Redshift column (required for generic columns; presets use ``Z``).
    id_col : str, optional
        Object id column. Default: the first of ``ID_COLUMNS`` present, else the row index.
    z_range : (float, float), optional
        Trained redshift range; rows outside are flagged ``FLAG_Z_OUT_OF_RANGE``.
    id_offset : int
        First row index, when the ids are row indices (a table that is a slice of a larger
        one, :class:`~provabgs_sbi.io.catalog_stream.CatalogFile`).
    survey : Survey or str, optional
        Read the bands of another survey than SDSS ugriz
        (:class:`~provabgs_sbi.model.survey.Survey`, a shipped name or a JSON file):
        generic columns only, one per band in the survey's order, brought to AB with its
        ``ab_offsets``. Without ``*_cols`` the columns ``mag_<band>`` and
        ``magerr_<band>`` are read (else ``flux_<band>`` and ``flux_ivar_<band>``, in
        nanomaggies), with ``z_col`` default ``z``.
    **read_kwargs
        Passed to ``astropy.table.Table.read`` (e.g. ``hdu=1``, ``path="data"``,
        ``format="ascii.csv"``).

    Returns
    -------
    PhotometryCatalog
        Every input row, flagged where bad.

    Raises
    ------
    MissingColumnError
        A needed column (e.g. one band) is missing; the message lists the columns found.
        It is both a KeyError and a ValueError.
    ValueError
        No layout matches, the arguments are inconsistent, or the table has no rows.
    """
    sha = None
    if isinstance(source, Table):
        table, label = source, "astropy Table"
    else:
        path = Path(os.fspath(source))
        table = Table.read(path, **read_kwargs)
        label = str(path)
        sha = sha256_file(path)
    if len(table) == 0:
        raise ValueError(f"catalog {label} has no rows (columns: {', '.join(table.colnames)})")
    cols = _Columns(table, f"catalog {label}")
    generic = any(c is not None for c in (mag_cols, err_cols, flux_cols, ivar_cols))
    if survey is not None:
        return _read_survey(table, cols, label, sha, survey, mag_cols, err_cols, flux_cols,
                            ivar_cols, z_col, id_col, z_range, id_offset, preset)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS} or None, got {preset!r}")
        if generic:
            raise ValueError(f"preset {preset!r} fixes the columns; do not also give *_cols")
    elif not generic:
        preset = _detect_preset(cols)
        if preset is None:
            raise ValueError(
                f"catalog {label}: cannot tell the column layout. Expected NSA columns "
                f"(NMGY, NMGY_IVAR, Z), SDSS columns (MODELFLUX, MODELFLUX_IVAR, EXTINCTION, Z) "
                f"or generic mag_cols/err_cols or flux_cols/ivar_cols with z_col. "
                f"Columns found: {', '.join(table.colnames)}")

    if preset == "nsa":
        flux, ivar, z = _read_nsa(cols, z_col)
        layout = "nsa preset (NMGY[:, 2:7], NMGY_IVAR[:, 2:7], Z; no corrections)"
    elif preset == "sdss":
        flux, ivar, z = _read_sdss(cols, z_col)
        layout = "sdss preset (MODELFLUX, extinction corrected, SDSS->AB offsets)"
    else:
        flux, ivar, z = _read_generic(cols, mag_cols, err_cols, flux_cols, ivar_cols, z_col)
        layout = "generic columns (" + ("magnitudes" if mag_cols is not None else "fluxes") + ")"
    if z.ndim != 1:
        raise ValueError(f"catalog {label}: the redshift column must be 1-D, got {z.shape}")

    ids = _read_ids(table, cols, id_col, id_offset)
    return PhotometryCatalog.from_arrays(flux, ivar, z, ids, z_range=z_range,
                                         source=f"{label} [{layout}]", source_sha256=sha)


def _read_ids(table, cols: _Columns, id_col, id_offset: int) -> np.ndarray:
    """The id column (``id_col``, else the first of :data:`ID_COLUMNS`), else row indices."""
    if id_col is not None:
        real = cols.find(id_col)
        if real is None:
            raise cols.missing_error([id_col], "ids")
        ids = np.asarray(table[real])
    else:
        found = next((cols.find(c) for c in ID_COLUMNS if cols.find(c) is not None), None)
        ids = (np.asarray(table[found]) if found is not None
               else np.arange(id_offset, id_offset + len(table)))
    if ids.ndim != 1:
        ids = np.arange(id_offset, id_offset + len(table))
    elif ids.dtype.kind == "S":  # FITS/HDF5 strings come back as bytes
        ids = np.char.decode(ids, "utf-8")
    return ids


def _read_survey(table, cols: _Columns, label, sha, survey, mag_cols, err_cols, flux_cols,
                 ivar_cols, z_col, id_col, z_range, id_offset, preset) -> PhotometryCatalog:
    """:func:`read_catalog` of a survey's bands (generic columns, its AB offsets)."""
    from provabgs_sbi.model.survey import get_survey

    survey = get_survey(survey)
    if preset is not None:
        raise ValueError(f"presets read SDSS ugriz; for survey {survey.name!r} give its "
                         "columns (mag_cols and err_cols, or flux_cols and ivar_cols)")
    if all(c is None for c in (mag_cols, err_cols, flux_cols, ivar_cols)):
        mags = [f"mag_{b}" for b in survey.bands]
        if all(cols.find(c) is not None for c in mags):
            mag_cols, err_cols = mags, [f"magerr_{b}" for b in survey.bands]
        else:
            flux_cols = [f"flux_{b}" for b in survey.bands]
            ivar_cols = [f"flux_ivar_{b}" for b in survey.bands]
    flux, ivar, z = _read_generic(cols, mag_cols, err_cols, flux_cols, ivar_cols,
                                  z_col or "z", bands=survey.bands,
                                  ab_offsets=survey.ab_offsets)
    if z.ndim != 1:
        raise ValueError(f"catalog {label}: the redshift column must be 1-D, got {z.shape}")
    kind = "magnitudes" if mag_cols is not None else "fluxes"
    return PhotometryCatalog.from_arrays(
        flux, ivar, z, _read_ids(table, cols, id_col, id_offset), z_range=z_range,
        source=f"{label} [survey {survey.name}, {kind}, AB offsets {list(survey.ab_offsets)}]",
        source_sha256=sha, bands=survey.bands)


def load_sdss_sample(z_range: tuple[float, float] | None = None) -> PhotometryCatalog:
    """The 10,000 SDSS main-sample galaxies shipped in the kcorrect 5.1.9 wheel (model-spec 6).

    ``kcorrect/data/test/gst_tests_small.fits``, table ``GSTTEST``, is fetched once through
    :func:`provabgs_sbi.io.fetch.fetch` (``pip download``, checksum verified, cached) and read
    with the ``"sdss"`` preset: MODELFLUX corrected for EXTINCTION and brought to AB.

    Parameters
    ----------
    z_range : (float, float), optional
        Trained redshift range for ``FLAG_Z_OUT_OF_RANGE``.

    Returns
    -------
    PhotometryCatalog
        10,000 rows; z from 0.010 to 0.583; ids are row indices.
    """
    path = fetch.fetch(fetch.SDSS_SAMPLE)
    table = Table.read(path, hdu="GSTTEST")
    cat = read_catalog(table, preset="sdss", z_range=z_range)
    return replace(cat, source=f"{fetch.SDSS_SAMPLE.package}=={fetch.SDSS_SAMPLE.version}:"
                               f"{fetch.SDSS_SAMPLE.member}[GSTTEST] [sdss preset]",
                   source_sha256=fetch.SDSS_SAMPLE.member_sha256)

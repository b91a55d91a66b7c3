"""The on-disk SSP table: one per SPS configuration.

File format (HDF5, written by :func:`write_ssp_table`):

``log_age``
    (n_age,) float64, log10 of the SSP age in years, ascending.
``metallicity``
    (n_z,) float64, absolute metallicity Z (mass fraction), ascending.
``wavelength``
    (n_wave,) float64, rest-frame wavelength in Angstrom, ascending.
``luminosity``
    (n_age, n_z, n_wave) float64, L_lambda in Lsun/Angstrom per Msun formed.
``surviving_mass``
    (n_age, n_z) float64, fraction of the formed mass still in stars (plus remnants
    where the backend counts them; see the ``mass_definition`` attribute).

Root attributes: ``format`` ("provabgs_sbi.ssp_table"), ``format_version`` (1),
``backend``, ``configuration`` (JSON of the backend settings), ``source`` (where the
numbers came from), ``mass_definition``, ``created``, ``package_version`` and
``content_hash``: SHA-256 over the five arrays (see :func:`content_hash`), so that an
emulator trained on one table can refuse another.

Zero ages are not representable in log age; backends drop or shift them.
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi._version import __version__
from provabgs_sbi.io.atomic import atomic_path
from provabgs_sbi.io.hashing import sha256_bytes

FORMAT_NAME = "provabgs_sbi.ssp_table"
FORMAT_VERSION = 1
_ARRAYS = ("log_age", "metallicity", "wavelength", "luminosity", "surviving_mass")


@dataclass(frozen=True, eq=False)
class SSPTable:
    """Simple-stellar-population spectra on an (age, metallicity, wavelength) grid.

    Attributes
    ----------
    log_age : ndarray of shape (n_age,)
        log10(age / yr), strictly ascending.
    metallicity : ndarray of shape (n_z,)
        Absolute metallicity Z, strictly ascending, > 0.
    wavelength : ndarray of shape (n_wave,)
        Rest-frame wavelength in Angstrom, strictly ascending.
    luminosity : ndarray of shape (n_age, n_z, n_wave)
        L_lambda in Lsun / Angstrom per Msun formed.
    surviving_mass : ndarray of shape (n_age, n_z)
        Surviving stellar mass per Msun formed.
    attrs : dict
        Provenance (backend, configuration, source, ...).
    """

    log_age: np.ndarray
    metallicity: np.ndarray
    wavelength: np.ndarray
    luminosity: np.ndarray
    surviving_mass: np.ndarray
    attrs: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in _ARRAYS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        n_age, n_z, n_wave = len(self.log_age), len(self.metallicity), len(self.wavelength)
        if self.luminosity.shape != (n_age, n_z, n_wave):
            raise ValueError(f"luminosity has shape {self.luminosity.shape}, expected "
                             f"(n_age, n_z, n_wave) = {(n_age, n_z, n_wave)}")
        if self.surviving_mass.shape != (n_age, n_z):
            raise ValueError(f"surviving_mass has shape {self.surviving_mass.shape}, "
                             f"expected {(n_age, n_z)}")
        for name in ("log_age", "metallicity", "wavelength"):
            arr = getattr(self, name)
            if arr.ndim != 1 or len(arr) < 2 or np.any(np.diff(arr) <= 0):
                raise ValueError(f"{name} must be a 1-d, strictly ascending array of >= 2 values")
        if np.any(self.metallicity <= 0):
            raise ValueError("metallicity must be > 0 (it is interpolated in log Z)")
        if not np.all(np.isfinite(self.luminosity)) or np.any(self.luminosity < 0):
            raise ValueError("luminosity must be finite and >= 0")

    @property
    def age_gyr(self) -> np.ndarray:
        """SSP ages in Gyr, shape (n_age,)."""
        return 10.0 ** (self.log_age - 9.0)

    @property
    def content_hash(self) -> str:
        """SHA-256 over the table's arrays (see :func:`content_hash`)."""
        return content_hash(self)

    def trimmed(self, wave_min: float, wave_max: float) -> "SSPTable":
        """The same table restricted to ``wave_min <= wavelength <= wave_max`` (Angstrom)."""
        keep = (self.wavelength >= wave_min) & (self.wavelength <= wave_max)
        if keep.sum() < 2:
            raise ValueError(f"no wavelengths of the table in [{wave_min}, {wave_max}] A")
        attrs = dict(self.attrs, trimmed_to=f"[{wave_min}, {wave_max}] A")
        return SSPTable(self.log_age, self.metallicity, self.wavelength[keep],
                        self.luminosity[:, :, keep], self.surviving_mass, attrs)


    def rebinned(self, resolution: float) -> "SSPTable":
        """The table averaged onto a logarithmic grid of resolving power ``resolution``.

        Each new pixel is the mean of the (piecewise-linear) spectrum over its bin,
        lambda_k (1 -+ 1/(2R)), so every integral over a broad filter is preserved to
        the accuracy of the new sampling. Bins run over the table's own range.

        Parameters
        ----------
        resolution : float
            R = lambda / delta lambda of the new grid.
        """
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0, got {resolution}")
        lo, hi = np.log(self.wavelength[0]), np.log(self.wavelength[-1])
        n = int(np.floor((hi - lo) * resolution))
        if n < 2:
            raise ValueError("resolution too low for the table's wavelength range")
        edges = np.exp(lo + np.arange(n + 1) / resolution)
        centres = np.sqrt(edges[1:] * edges[:-1])
        # Cumulative trapezoid integral of L over wavelength, evaluated at the new edges.
        w = self.wavelength
        seg = 0.5 * (self.luminosity[..., 1:] + self.luminosity[..., :-1]) * np.diff(w)
        cum = np.concatenate([np.zeros(self.luminosity.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)],
                             axis=-1)
        k = np.clip(np.searchsorted(w, edges, side="right") - 1, 0, len(w) - 2)
        t = (edges - w[k]) / (w[k + 1] - w[k])
        l0, l1 = self.luminosity[..., k], self.luminosity[..., k + 1]
        dx = edges - w[k]
        # Exact integral of the linear segment from w[k] to the edge.
        cum_edges = cum[..., k] + dx * (l0 + 0.5 * t * (l1 - l0))
        lum = np.diff(cum_edges, axis=-1) / np.diff(edges)
        attrs = dict(self.attrs, rebinned_to=f"log grid, R = {resolution:g}")
        return SSPTable(self.log_age, self.metallicity, centres, np.clip(lum, 0.0, None),
                        self.surviving_mass, attrs)


def content_hash(table: SSPTable) -> str:
    """SHA-256 over the little-endian float64 bytes of the five arrays, in a fixed order,
    each preceded by its name and shape (the hash committed emulators record)."""
    parts = []
    for name in _ARRAYS:
        arr = np.ascontiguousarray(getattr(table, name), dtype="<f8")
        parts += [name.encode(), str(arr.shape).encode(), memoryview(arr).cast("B")]
    return sha256_bytes(b"".join(parts))


def write_ssp_table(table: SSPTable, path: str | os.PathLike) -> Path:
    """Write ``table`` to ``path`` atomically (:func:`provabgs_sbi.io.atomic.atomic_path`).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        for name in _ARRAYS:
            fh.create_dataset(name, data=getattr(table, name))
        fh.attrs["format"] = FORMAT_NAME
        fh.attrs["format_version"] = FORMAT_VERSION
        fh.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        fh.attrs["package_version"] = __version__
        for key, value in table.attrs.items():
            fh.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value)
        fh.attrs["content_hash"] = content_hash(table)
    return path


def read_ssp_table(path: str | os.PathLike, verify: bool = True) -> SSPTable:
    """Read an SSP table written by :func:`write_ssp_table`.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    verify : bool
        Recompute the content hash and compare with the stored one.

    Raises
    ------
    ValueError
        If the file is not an SSP table of a known format version, or its hash does not match.
    """
    with h5py.File(path, "r") as fh:
        if fh.attrs.get("format") != FORMAT_NAME:
            raise ValueError(f"{path} is not a provabgs_sbi SSP table")
        if int(fh.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(f"{path}: SSP table format version {fh.attrs.get('format_version')} "
                             f"is not {FORMAT_VERSION}; rebuild it with `provabgs-sbi sps build`")
        arrays = {name: fh[name][...] for name in _ARRAYS}
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in fh.attrs.items()}
    table = SSPTable(**arrays, attrs=attrs)
    if verify and table.content_hash != attrs.get("content_hash"):
        raise ValueError(f"{path}: content hash mismatch (file corrupted?); delete it and rebuild")
    return table

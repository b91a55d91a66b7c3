"""Emission lines added exactly to an emulated SED (:class:`NebularLines`).

An emission line is a narrow spike a few pixels wide; a PCA + MLP emulator of the whole
spectrum fits it worse than the continuum (the 99th percentile of |dL/L| at the strong
lines of ``emulator/bc03_nebular_wide`` is 2-3%, against 0.2% in the continuum;
``docs/results/emulator.md``). The lines need no network: the SED model is linear in its
SSP table, and the nebular table is the sum of a table without lines and a table of the
lines alone (:func:`~provabgs_sbi.model.sps.nebular.add_nebular`, ``parts``). Lines come
only from populations younger than the nebular grid's last age (25 Myr), which fall in the
first few lookback bins; there the NMF part of a galaxy is

    L_lines(lambda) = sum_{bins b, metallicity nodes k} w_bk F_bk(lambda) T_b(lambda)

with w_bk the mass formed in bin b (:func:`~provabgs_sbi.model.sfh.binned_history`) split
linearly in log Z between the table's metallicity nodes, F_bk the line table interpolated
in log age at the bin centre (exactly as :class:`~provabgs_sbi.model.sed_model.SEDModel`
does), and T_b the birth-cloud transmission for bins younger than ``birth_cloud_age`` (1
otherwise). It is nonzero only at the few hundred pixels that hold a line; an emulator with
exact lines (``EmulatorConfig(exact_lines=True)``) emulates the rest with its network and
adds this term to the network's NMF part before the burst, diffuse dust and mass are
applied, so lines differ from the direct model only by float rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provabgs_sbi.model.dust import birth_cloud_transmission
from provabgs_sbi.model.sed_model import _axis_weights
from provabgs_sbi.model.sfh import BASE_EDGES, Z_MAX, Z_MIN, load_nmf_bases

#: Prefix of the arrays in an emulator's ``weights.npz``.
PREFIX = "lines_"


@dataclass(frozen=True, eq=False)
class NebularLines:
    """The emission lines of the NMF part of a galaxy, computed exactly.

    Attributes
    ----------
    wave : ndarray of shape (n_wave,)
        The emulator's rest wavelength grid, Angstrom.
    pixels : ndarray of int, shape (n_pix,)
        Ascending pixels of ``wave`` where some line is nonzero.
    bins : ndarray of int, shape (n_bins,)
        The lookback bins (of :data:`~provabgs_sbi.model.sfh.BASE_EDGES`) that hold lines.
    young : ndarray of bool, shape (n_bins,)
        Which of them get birth-cloud dust.
    log_z : ndarray of shape (n_z,)
        log10 of the table's metallicities (ascending).
    table : ndarray of shape (n_bins, n_z, n_pix)
        Line L_lambda per Msun formed at the bin centres (Lsun/Angstrom).
    ssp_hash : str
        Content hash of the line table it was cut from.
    """

    wave: np.ndarray
    pixels: np.ndarray
    bins: np.ndarray
    young: np.ndarray
    log_z: np.ndarray
    table: np.ndarray
    ssp_hash: str = ""

    def __post_init__(self):
        n_bins, n_z, n_pix = self.table.shape
        if self.pixels.shape != (n_pix,) or self.bins.shape != (n_bins,) \
                or self.young.shape != (n_bins,) or self.log_z.shape != (n_z,):
            raise ValueError(f"inconsistent line arrays: table {self.table.shape}, pixels "
                             f"{self.pixels.shape}, bins {self.bins.shape}, young "
                             f"{self.young.shape}, log_z {self.log_z.shape}")
        if n_pix and (self.pixels.min() < 0 or self.pixels.max() >= len(self.wave)
                      or np.any(np.diff(self.pixels) <= 0)):
            raise ValueError("line pixels must ascend inside the wavelength grid")
        if np.any(self.table < 0) or not np.all(np.isfinite(self.table)):
            raise ValueError("line luminosities must be finite and >= 0")

    # ------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, model) -> "NebularLines":
        """Cut the lines out of a :class:`~provabgs_sbi.model.sed_model.SEDModel` whose table
        holds only lines (backend ``bc03_nebular_lines``), on the emulator's grid.

        Raises
        ------
        ValueError
            If the table has lines in a bin that is not always complete (the oldest bins,
            truncated at the age of the universe, are not handled here).
        """
        fixed = np.asarray(model._fixed, dtype=np.float64)              # (42, n_z, n_wave)
        nonzero = fixed != 0
        bins = np.nonzero(nonzero.any(axis=(1, 2)))[0]
        pixels = np.nonzero(nonzero.any(axis=(0, 1)))[0]
        if len(bins) and BASE_EDGES[bins[-1] + 1] > 1.0:
            raise ValueError("the line table has lines in populations older than 1 Gyr; "
                             "exact lines handle young populations only")
        return cls(wave=np.asarray(model.wave, dtype=np.float64), pixels=pixels, bins=bins,
                   young=np.asarray(model._young)[bins], log_z=np.asarray(model._log_z),
                   table=fixed[bins][:, :, pixels], ssp_hash=model.ssp_hash)

    def to_arrays(self) -> dict:
        """Arrays for an emulator's ``weights.npz`` (keys prefixed ``lines_``)."""
        return {f"{PREFIX}pixels": self.pixels, f"{PREFIX}bins": self.bins,
                f"{PREFIX}young": self.young, f"{PREFIX}log_z": self.log_z,
                f"{PREFIX}table": self.table}

    @classmethod
    def from_arrays(cls, arrays: dict, wave, ssp_hash: str = "") -> "NebularLines | None":
        """The lines saved by :meth:`to_arrays`, or None when ``arrays`` has none."""
        if f"{PREFIX}table" not in arrays:
            return None
        get = lambda k: np.asarray(arrays[PREFIX + k])  # noqa: E731
        return cls(wave=np.asarray(wave, dtype=np.float64), pixels=get("pixels").astype(np.int64),
                   bins=get("bins").astype(np.int64), young=get("young").astype(bool),
                   log_z=get("log_z").astype(np.float64), table=get("table").astype(np.float64),
                   ssp_hash=ssp_hash)

    # ------------------------------------------------------------ evaluation
    def weights(self, theta, t_age, bases=None) -> np.ndarray:
        """Mass formed per Msun of the NMF part, per line bin and metallicity node.

        Parameters
        ----------
        theta : ndarray of shape (N, 12)
        t_age : ndarray of shape (N,)
            Age of the universe at each galaxy's redshift, Gyr (every line bin must be
            younger).
        bases : NMFBases, optional

        Returns
        -------
        ndarray of shape (N, n_bins, n_z), float64
        """
        bases = load_nmf_bases() if bases is None else bases
        theta = np.asarray(theta, dtype=np.float64)
        t_age = np.asarray(t_age, dtype=np.float64)
        n = len(theta)
        out = np.zeros((n, len(self.bins), len(self.log_z)))
        if not len(self.bins):
            return out
        if np.any(t_age < BASE_EDGES[self.bins[-1] + 1]):
            raise ValueError("a galaxy is younger than the populations that make its lines")
        # Mass of each NMF basis in the line bins over the whole history: the full-history
        # normalisation needs the integral up to t_age.
        edges = BASE_EDGES[self.bins[0]:self.bins[-1] + 2]
        cum = bases.sfh_integral(edges)                                  # (4, n_edges)
        basis_mass = np.diff(cum, axis=1)[:, self.bins - self.bins[0]]   # (4, n_bins)
        total = bases.sfh_integral(t_age)                                # (4, N)
        beta = theta[:, 1:5]
        # einsum, not @: a BLAS call would leave threads spinning beside the TF kernels.
        mass = np.einsum("nk,kb->nb", beta, basis_mass) / np.einsum("nk,kn->n", beta, total)[:, None]
        centres = 0.5 * (BASE_EDGES[self.bins] + BASE_EDGES[self.bins + 1])
        zb = bases.zh_at(centres)                                        # (2, n_bins)
        metallicity = theta[:, 7:8] * zb[0] + theta[:, 8:9] * zb[1]      # (N, n_bins)
        # The SED model's clip to the NMF range, then to the table's metallicities.
        logz = np.log10(np.clip(np.clip(metallicity, Z_MIN, Z_MAX),
                                10.0 ** self.log_z[0], 10.0 ** self.log_z[-1]))
        iz, wz = _axis_weights(self.log_z, logz)
        rows = np.arange(n)[:, None]
        cols = np.arange(len(self.bins))[None, :]
        out[rows, cols, iz] += (1 - wz) * mass
        out[rows, cols, iz + 1] += wz * mass
        return out

    def luminosity(self, theta, t_age, dtype=np.float64, bases=None) -> np.ndarray:
        """Line L_lambda of the NMF part per Msun formed at :attr:`pixels`.

        Before the burst fraction, diffuse dust and mass (those are applied to the whole NMF
        part by :func:`~provabgs_sbi.model.assembly.assemble_sed`); after birth-cloud dust.

        Returns
        -------
        ndarray of shape (N, n_pix) in ``dtype``, Lsun/Angstrom per Msun formed.
        """
        theta = np.asarray(theta, dtype=np.float64)
        w = self.weights(theta, t_age, bases)
        n = len(theta)
        young, old = self.young, ~self.young
        n_pix = len(self.pixels)
        lum = w[:, old].reshape(n, -1) @ self.table[old].reshape(-1, n_pix)
        if young.any():
            part = w[:, young].reshape(n, -1) @ self.table[young].reshape(-1, n_pix)
            part *= birth_cloud_transmission(self.wave[self.pixels], theta[:, 9])
            lum += part
        return lum.astype(dtype, copy=False)

    def add_to(self, lum_nmf, theta, t_age, pixels: slice | None = None, bases=None):
        """Add the lines to an NMF-part spectrum in place and return it.

        Parameters
        ----------
        lum_nmf : ndarray of shape (N, n_wave) or (N, n_cut)
            L_lambda per Msun formed without lines; ``n_cut`` pixels when ``pixels`` is a
            slice of the grid.
        theta, t_age : see :meth:`weights`
        pixels : slice, optional
            The part of the grid ``lum_nmf`` covers (default all of it).
        """
        start, stop = (0, len(self.wave)) if pixels is None else (pixels.start, pixels.stop)
        keep = (self.pixels >= start) & (self.pixels < stop)
        if not keep.any():
            return lum_nmf
        lines = self.luminosity(theta, t_age, lum_nmf.dtype, bases)[:, keep]
        lum_nmf[:, self.pixels[keep] - start] += lines
        return lum_nmf

    def gather_index(self) -> np.ndarray:
        """For each pixel of :attr:`wave`: 0 where no line is, 1 + j at ``pixels[j]``.

        ``take(concat([zeros, lines]), gather_index())`` spreads (N, n_pix) lines onto the
        whole grid (the TensorFlow path).
        """
        index = np.zeros(len(self.wave), dtype=np.int32)
        index[self.pixels] = 1 + np.arange(len(self.pixels), dtype=np.int32)
        return index

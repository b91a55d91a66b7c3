"""SSP tables: format round trip, hashing, rebinning, the backends."""
import h5py
import numpy as np
import pytest

from provabgs_sbi.model.sps import BACKENDS, SSPTable, build_ssp_table, read_ssp_table, write_ssp_table
from provabgs_sbi.model.sps.fsps_backend import build_fsps_table

from .conftest import make_fake_ssp_table


def test_roundtrip_and_hash(tmp_path, fake_table):
    path = write_ssp_table(fake_table, tmp_path / "t.h5")
    back = read_ssp_table(path)
    for name in ("log_age", "metallicity", "wavelength", "luminosity", "surviving_mass"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fake_table, name))
    assert back.content_hash == fake_table.content_hash
    assert back.attrs["backend"] == "fake"
    # Tampering is detected.
    with h5py.File(path, "r+") as fh:
        fh["luminosity"][0, 0, 0] *= 1.01
    with pytest.raises(ValueError, match="hash"):
        read_ssp_table(path)


def test_hash_changes_with_content(fake_table):
    other = make_fake_ssp_table(seed=1)
    assert other.content_hash != fake_table.content_hash


def test_table_validation():
    with pytest.raises(ValueError, match="shape"):
        SSPTable(np.arange(3.0), [0.01, 0.02], [1.0, 2.0], np.ones((3, 2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="ascending"):
        SSPTable([3.0, 2.0], [0.01, 0.02], [1.0, 2.0], np.ones((2, 2, 2)), np.ones((2, 2)))


def test_rebinning_conserves_broadband_integrals(fake_table):
    reb = fake_table.rebinned(300.0)
    assert np.all(np.diff(reb.wavelength) > 0)
    # The integral over a wide window is preserved (pixel means x pixel widths).
    from provabgs_sbi.model.photometry import pixel_edges

    edges = pixel_edges(reb.wavelength)
    win = (reb.wavelength > 3000) & (reb.wavelength < 9000)
    lo, hi = edges[:-1][win][0], edges[1:][win][-1]
    coarse = (reb.luminosity[..., win] * np.diff(edges)[win]).sum(-1)
    fine_w = np.linspace(lo, hi, 200001)
    fine = np.trapezoid(np.stack([[np.interp(fine_w, fake_table.wavelength, fake_table.luminosity[i, j])
                                   for j in range(len(fake_table.metallicity))]
                                  for i in (0, 20, 39)]), fine_w, axis=-1)
    np.testing.assert_allclose(coarse[[0, 20, 39]], fine, rtol=2e-3)


def test_unknown_backend():
    assert BACKENDS == ("bc03", "bc03_nebular", "bc03_nebular_continuum", "bc03_nebular_lines",
                        "fsps")
    with pytest.raises(ValueError, match="unknown SPS backend"):
        build_ssp_table("miles")


def test_fsps_without_sps_home_explains_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("SPS_HOME", raising=False)
    with pytest.raises(RuntimeError, match="SPS_HOME is not set") as err:
        build_fsps_table()
    assert "pip install" in str(err.value) and "cconroy20/fsps" in str(err.value)
    monkeypatch.setenv("SPS_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="SPECTRA"):
        build_fsps_table()


@pytest.mark.slow
def test_bc03_table_contents():
    from provabgs_sbi.model.sps import load_ssp_table

    t = load_ssp_table("bc03")
    assert t.luminosity.shape == (220, 7, 13216)
    np.testing.assert_allclose(t.metallicity, 0.02 * np.array([0.005, 0.02, 0.2, 0.4, 1, 2.5, 5]))
    assert t.age_gyr[0] == pytest.approx(1e-4) and t.age_gyr[-1] == pytest.approx(20.0)
    assert np.all((t.surviving_mass > 0.3) & (t.surviving_mass <= 1.0))
    # Surviving mass falls with age.
    assert np.all(np.diff(t.surviving_mass[:, 4])[60:] <= 1e-12)

"""NMF bases, lookback bins and the binned SFH/ZH (model-spec 1.2, 1.3, 5.4)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from provabgs_sbi.model.cosmology import age_gyr
from provabgs_sbi.model.sfh import (BASE_EDGES, NMF_FILES, Z_MAX, Z_MIN, binned_history,
                                    effective_fburst, load_nmf_bases, nmf_data_folder)

SHARED_NMF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "provabgs"


def test_base_edges():
    assert len(BASE_EDGES) == 43
    assert BASE_EDGES[1] == pytest.approx(1.122e-3, rel=1e-3)
    assert BASE_EDGES[-2] == pytest.approx(11.22, rel=1e-3)
    assert BASE_EDGES[-1] == 13.8


def test_bases_peaks_and_integrals():
    b = load_nmf_bases()
    peaks = b.t[np.argmax(b.sfh, axis=1)]
    # model-spec 1.3: peaks near 1.17, 5.60, 8.37, 11.14 Gyr; beta1 youngest.
    np.testing.assert_allclose(peaks, [1.17, 5.60, 8.37, 11.14], atol=0.15)
    np.testing.assert_allclose(b.sfh.sum(axis=1), 1.0, rtol=1e-6)
    # The exact integral over the knot range equals the trapezoid on the 50-point grid.
    integral = b.sfh_integral(np.array([b.t[-1]])) - b.sfh_integral(np.array([b.t[0]]))
    np.testing.assert_allclose(integral[:, 0], np.trapezoid(b.sfh, b.t, axis=1), rtol=1e-10)
    # ZH basis 1 high at recent times, basis 2 peaks ~2.98 at old times.
    assert b.zh[0, 0] == pytest.approx(5.46, abs=0.02)
    assert b.zh[1].max() == pytest.approx(2.98, abs=0.01)
    # Extrapolation: SFH basis 4 slightly negative at 13.8 Gyr (model-spec: -8.8e-4).
    assert b.sfh_at(np.array([13.8]))[3, 0] == pytest.approx(-8.8e-4, abs=2e-4)


def _hist(beta, fburst, tburst, gamma, z):
    n = len(beta)
    return binned_history(np.asarray(beta), np.full(n, fburst), np.full(n, tburst),
                          np.asarray(gamma), age_gyr(np.full(n, z)))


def test_mass_sums_to_one_and_bins():
    rng = np.random.default_rng(0)
    beta = rng.dirichlet(np.ones(4), size=50)
    h = _hist(beta, 0.3, 2.0, np.full((50, 2), 3e-3), 0.1)
    np.testing.assert_allclose(h.mass.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(h.mass_nmf.sum(axis=1), 1.0, rtol=1e-12)
    # z <= 0.2: 42 bins with non-zero width, the last truncated at t_age.
    assert np.all(h.widths > 0)
    np.testing.assert_allclose(h.edges[:, -1], age_gyr(0.1), rtol=1e-12)


def test_burst_rule():
    beta = np.array([[0.25, 0.25, 0.25, 0.25]])
    t_age = float(age_gyr(0.1))
    # Burst inside the galaxy age: all of fburst in the bin that holds tburst.
    h = _hist(beta, 0.4, 2.0, [[3e-3, 3e-3]], 0.1)
    j = np.searchsorted(BASE_EDGES, 2.0) - 1
    assert h.burst_bin[0] == j
    np.testing.assert_allclose(h.mass[0, j] - 0.6 * h.mass_nmf[0, j], 0.4, rtol=1e-12)
    # Burst older than the universe at z: it counts as fburst = 0 everywhere (model-spec 5.4).
    h2 = _hist(beta, 0.4, t_age + 0.5, [[3e-3, 3e-3]], 0.1)
    assert h2.fburst[0] == 0 and h2.burst_bin[0] == -1
    np.testing.assert_allclose(h2.mass, h2.mass_nmf, rtol=0, atol=0)


def test_effective_fburst_is_zero_for_a_burst_before_the_big_bang():
    t_age = np.array([13.0, 13.0, 13.0, 10.0])
    fb = effective_fburst([0.3, 0.3, 0.0, 0.7], [12.9, 13.0, 1.0, 10.5], t_age)
    np.testing.assert_array_equal(fb, [0.3, 0.0, 0.0, 0.0])
    assert fb.dtype == np.float64


def test_nmf_bases_ship_as_package_data_with_their_licence():
    folder = nmf_data_folder()
    for name in NMF_FILES + ("LICENSE.provabgs", "README.md"):
        assert (folder / name).is_file(), name
    assert "MIT License" in (folder / "LICENSE.provabgs").read_text()
    if not SHARED_NMF.is_dir():
        pytest.skip(f"no ../shared beside the repository ({SHARED_NMF}) to compare with")
    for name in NMF_FILES:
        assert (folder / name).read_bytes() == (SHARED_NMF / name).read_bytes(), name
    shared, packaged = load_nmf_bases(str(SHARED_NMF)), load_nmf_bases()
    for attr in ("t", "sfh", "zh"):
        np.testing.assert_array_equal(getattr(packaged, attr), getattr(shared, attr))


def test_nmf_bases_read_from_a_given_folder(tmp_path):
    """``folder=`` is read instead of the package data: a copy with the ZH bases doubled
    gives doubled ZH bases; a missing file is an error."""
    src = nmf_data_folder()
    for name in NMF_FILES:
        shutil.copyfile(src / name, tmp_path / name)
    zh_file = tmp_path / NMF_FILES[2]
    np.savetxt(zh_file, 2.0 * np.loadtxt(zh_file), fmt="%.17g")
    default, doubled = load_nmf_bases(), load_nmf_bases(str(tmp_path))
    np.testing.assert_array_equal(doubled.t, default.t)
    np.testing.assert_array_equal(doubled.sfh, default.sfh)
    np.testing.assert_allclose(doubled.zh, 2.0 * default.zh, rtol=1e-15)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    shutil.copyfile(src / NMF_FILES[0], incomplete / NMF_FILES[0])
    with pytest.raises(FileNotFoundError):
        load_nmf_bases(str(incomplete))


def test_metallicity_clip():
    beta = np.array([[0.25, 0.25, 0.25, 0.25]] * 2)
    h = _hist(beta, 0.0, 1.0, [[1.0, 1.0], [0.0, 0.0]], 0.05)
    assert np.all(h.metallicity[0] == Z_MAX)
    assert np.all(h.metallicity[1] == Z_MIN)

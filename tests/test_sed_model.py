"""The SED model: physics invariants and numbers from independent calculations (issue 2)."""
import numpy as np
import pytest

from provabgs_sbi import Prior, SEDConfig, SEDModel
from provabgs_sbi.model.cosmology import age_gyr, luminosity_distance_cm
from provabgs_sbi.model.assembly import assemble_sed
from provabgs_sbi.model.dust import (DiffuseDust, calzetti_kprime, diffuse_optical_depth,
                                     drude_profile)
from provabgs_sbi.model.photometry import LSUN_ERG_S, flambda_to_nanomaggies, nanomaggies_to_mag
from provabgs_sbi.model.sfh import BASE_EDGES, load_nmf_bases


def theta_of(log_mstar=10.0, beta=(0.1, 0.2, 0.3, 0.4), fburst=0.0, tburst=1.0,
             gamma=(3e-3, 3e-3), tau_bc=0.5, tau_ism=0.3, n_dust=-0.5):
    return np.array([log_mstar, *beta, fburst, tburst, *gamma, tau_bc, tau_ism, n_dust])


def burst_theta(age_gyr_, metallicity, log_mstar=0.0, tau_ism=0.0, n_dust=0.0):
    """A pure burst (fburst = 1) at lookback age_gyr_ with Z(tburst) = metallicity exactly:
    one gamma is 0 and the other is chosen from its ZH basis at that age (independent
    np.interp of the basis file; basis 2 vanishes at young ages, basis 1 at old ones)."""
    b = load_nmf_bases()
    zb = [np.interp(age_gyr_, b.t, b.zh[k]) for k in (0, 1)]
    k = int(np.argmax(zb))
    gamma = [0.0, 0.0]
    gamma[k] = metallicity / zb[k]
    return theta_of(log_mstar=log_mstar, fburst=1.0, tburst=age_gyr_, gamma=tuple(gamma),
                    tau_bc=0.0, tau_ism=tau_ism, n_dust=n_dust)


def test_mass_scaling(bc03_model):
    theta = Prior().sample(20, seed=0)
    z = np.linspace(0.02, 0.2, 20)
    up = theta.copy()
    up[:, 0] += 1.0
    np.testing.assert_allclose(bc03_model.photometry(up, z), 10 * bc03_model.photometry(theta, z),
                               rtol=1e-6)


def test_ssp_limit_burst_only(bc03_model):
    """fburst = 1 gives the table's SSP at (tburst, Z(tburst)) with diffuse dust only."""
    for tb, metal in [(0.5, 0.008), (3.0, 0.02), (9.0, 0.004)]:
        th = burst_theta(tb, metal, log_mstar=9.5, tau_ism=0.8, n_dust=-0.3)
        th[9] = 1.5  # birth-cloud dust must not touch a 0.5-9 Gyr burst
        _, lum = bc03_model.spectrum(th, 0.05)
        ref = 10**9.5 * bc03_model.ssp([tb], [metal])[0] * np.exp(
            -diffuse_optical_depth(bc03_model.wave, np.array([0.8]), np.array([-0.3]))[0])
        np.testing.assert_allclose(lum[0], ref, rtol=1e-6)


def test_ssp_interpolation_hits_grid_points(bc03_model):
    t = bc03_model.table
    i, j = 150, 4
    np.testing.assert_allclose(bc03_model.ssp([t.age_gyr[i]], [t.metallicity[j]])[0],
                               t.luminosity[i, j], rtol=1e-10)


def test_sfh_mass_bookkeeping(bc03_model):
    theta = Prior().sample(200, seed=1)
    z = np.random.default_rng(2).uniform(0.0, 0.2, 200)
    h = bc03_model.history(theta, z)
    mass_msun = (h.mass * 10 ** theta[:, :1]).sum(axis=1)
    np.testing.assert_allclose(mass_msun, 10 ** theta[:, 0], rtol=1e-6)
    # SFR density per bin (Msun/yr) x width integrates to the same.
    sfr = h.mass * 10 ** theta[:, :1] / np.where(h.widths > 0, h.widths * 1e9, 1.0)
    np.testing.assert_allclose((sfr * h.widths * 1e9).sum(axis=1), 10 ** theta[:, 0], rtol=1e-6)


def test_burst_older_than_universe_is_ignored(bc03_model):
    z = 0.1
    th = theta_of(fburst=0.6, tburst=float(age_gyr(z)) + 0.3)
    no_burst = th.copy()
    no_burst[5] = 0.0
    np.testing.assert_array_equal(bc03_model.spectrum(th, z)[1], bc03_model.spectrum(no_burst, z)[1])
    d = bc03_model.derived(np.stack([th, no_burst]), z)
    for v in d.values():
        assert v[0] == pytest.approx(v[1], rel=1e-12)


def _no_dust_reference(model, theta, z):
    """Independent per-galaxy synthesis by explicit loops over bins with model.ssp()."""
    h = model.history(theta, z)
    out = []
    for g in range(len(theta)):
        lum = np.zeros(len(model.wave))
        for i in range(h.mass_nmf.shape[1]):
            if h.widths[g, i] > 0:
                lum += (1 - h.fburst[g]) * h.mass_nmf[g, i] * model.ssp(
                    [h.centres[g, i]], [h.metallicity[g, i]])[0]
        if h.fburst[g] > 0:
            lum += h.fburst[g] * model.ssp([theta[g, 6]], [h.z_burst[g]])[0]
        out.append(lum * 10 ** theta[g, 0])
    return np.array(out)


def test_zero_dust_is_unattenuated_sum(bc03_model):
    theta = Prior().sample(5, seed=4)
    theta[:, 9] = 0.0
    theta[:, 10] = 0.0
    z = np.array([0.01, 0.05, 0.1, 0.15, 0.2])
    _, lum = bc03_model.spectrum(theta, z)
    np.testing.assert_allclose(lum, _no_dust_reference(bc03_model, theta, z), rtol=1e-9)


def test_old_population_attenuated_by_exp_tau_at_5500(bc03_model):
    i55 = np.argmin(np.abs(bc03_model.wave - 5500.0))
    th0 = burst_theta(9.0, 0.02, n_dust=0.0)
    th1 = th0.copy()
    th1[10] = 0.7
    th1[9] = 2.0  # birth clouds do not touch old stars
    ratio = bc03_model.spectrum(th1, 0.05)[1][0, i55] / bc03_model.spectrum(th0, 0.05)[1][0, i55]
    assert ratio == pytest.approx(np.exp(-0.7), rel=2e-3)


def test_diffuse_dust_kernels_agree_with_the_curve_written_out():
    """Kriek & Conroy (2013) from its definition: tau_ism / R_V [k' + E_b D] x^n with
    E_b = 0.85 - 1.9 n and a Lorentzian-like Drude profile of FWHM 350 A at 2175 A. Both
    kernels (the shared one and numpy's in-place transmission) must reproduce it."""
    wave = np.geomspace(1000.0, 20000.0, 301)
    tau, n = np.array([0.0, 0.4, 1.3]), np.array([-1.2, 0.0, 0.6])
    drude = (wave * 350.0) ** 2 / ((wave**2 - 2175.0**2) ** 2 + (wave * 350.0) ** 2)
    want = (tau[:, None] / 4.05 * (calzetti_kprime(wave) + (0.85 - 1.9 * n)[:, None] * drude)
            * (wave / 5500.0) ** n[:, None])
    np.testing.assert_allclose(diffuse_optical_depth(wave, tau, n), want, rtol=1e-13, atol=0)
    for dtype, rtol in ((np.float64, 1e-13), (np.float32, 2e-6)):
        trans = DiffuseDust(wave).transmission(tau, n, dtype)
        assert trans.dtype == dtype
        np.testing.assert_allclose(trans, np.exp(-want), rtol=rtol)
    np.testing.assert_allclose(drude_profile(wave), drude, rtol=1e-14)
    assert drude_profile(2175.0) == pytest.approx(1.0, rel=1e-15)


def test_assemble_sed_mixes_attenuates_and_scales():
    rng = np.random.default_rng(3)
    nmf, burst, trans = rng.uniform(1, 2, (4, 7)), rng.uniform(1, 2, (2, 7)), rng.uniform(0, 1, (4, 7))
    fb = np.array([0.0, 0.25, 0.0, 1.0])
    rows = np.array([1, 3])
    logm = np.array([9.0, 10.0, 0.0, 11.5])
    out = assemble_sed(nmf.copy(), fb, rows, burst, trans, logm)
    mix = (1 - fb)[:, None] * nmf
    mix[rows] += fb[rows, None] * burst
    np.testing.assert_allclose(out, mix * trans * 10 ** logm[:, None], rtol=1e-14)
    np.testing.assert_allclose(out[3], burst[1] * trans[3] * 10**11.5, rtol=1e-14)   # fburst = 1
    # No burst rows, no dust, per Msun: only the NMF part, in the input's dtype, in place.
    lum = nmf.astype(np.float32)
    res = assemble_sed(lum, np.zeros(4), np.array([], dtype=int), None)
    assert res is lum and res.dtype == np.float32
    np.testing.assert_array_equal(res, nmf.astype(np.float32))


def test_birth_cloud_acts_on_young_stars_only(bc03_model):
    young = theta_of(beta=(1, 0, 0, 0), tau_bc=0.0, tau_ism=0.0)
    young_bc = young.copy()
    young_bc[9] = 1.0
    blue = bc03_model.wave < 4000
    l0, l1 = bc03_model.spectrum(np.stack([young, young_bc]), 0.05)[1]
    assert np.all(l1[blue] < l0[blue])
    # a birth-cloud age of zero switches it off
    m0 = SEDModel(bc03_model.table, config=SEDConfig(birth_cloud_age=0.0, resolution=None,
                                                      wave_min=1000, wave_max=20000))
    np.testing.assert_allclose(m0.spectrum(young_bc, 0.05)[1], m0.spectrum(young, 0.05)[1], rtol=1e-12)


def test_g_minus_r_grows_with_tau_ism(bc03_model):
    th = np.tile(theta_of(tau_bc=0.0), (7, 1))
    th[:, 10] = np.linspace(0, 3, 7)
    m = nanomaggies_to_mag(bc03_model.photometry(th, 0.1))
    assert np.all(np.diff(m[:, 1] - m[:, 2]) > 0)


@pytest.mark.parametrize("age,gr,ur", [(10.0, 0.913, 2.711), (1.0152, 0.525, 1.908)])
def test_bc03_solar_ssp_colours(bc03_model, age, gr, ur):
    """Issue 2's independent numbers: 10 Gyr and 1.0152 Gyr solar BC03 SSPs at z = 0.05."""
    z = 0.05
    # 1) Independent: the raw grid spectrum through speclite.
    from provabgs_sbi.model.sps import load_ssp_table

    table = load_ssp_table("bc03")
    i = np.argmin(np.abs(table.age_gyr - age))
    dl = luminosity_distance_cm(z)
    flam = table.luminosity[i, list(table.metallicity).index(0.02)] * LSUN_ERG_S / (4 * np.pi * dl**2) / (1 + z)
    m = nanomaggies_to_mag(flambda_to_nanomaggies(table.wavelength * (1 + z), flam)[0])
    assert m[1] - m[2] == pytest.approx(gr, abs=0.01)
    assert m[0] - m[2] == pytest.approx(ur, abs=0.01)
    # 2) The model: a pure burst at that age and Z = 0.02, no dust.
    mm = nanomaggies_to_mag(bc03_model.photometry(burst_theta(table.age_gyr[i], 0.02), z)[0])
    assert mm[1] - mm[2] == pytest.approx(gr, abs=0.01)
    assert mm[0] - mm[2] == pytest.approx(ur, abs=0.01)


def test_trimming_and_rebinning_change_ugriz_below_1mmag(bc03_model):
    full = SEDModel("bc03", config=SEDConfig(resolution=None, wave_min=1.0, wave_max=1e9))
    theta = Prior().sample(40, seed=5)
    for z in (0.01, 0.2, 0.5):
        a = nanomaggies_to_mag(bc03_model.photometry(theta, z, exact=True))
        b = nanomaggies_to_mag(full.photometry(theta, z, exact=True))
        assert np.max(np.abs(a - b)) < 1e-3


def test_batched_equals_loop_and_float32(bc03_model):
    theta = Prior().sample(12, seed=6)
    z = np.linspace(0.01, 0.3, 12)
    batch = bc03_model.photometry(theta, z)
    loop = np.array([bc03_model.photometry(theta[i], z[i])[0] for i in range(12)])
    np.testing.assert_allclose(batch, loop, rtol=1e-12)
    m32 = SEDModel("bc03", dtype=np.float32)
    d = nanomaggies_to_mag(m32.photometry(theta, z)) - nanomaggies_to_mag(batch)
    assert np.max(np.abs(d)) < 1e-4


def test_provabgs_reference_galaxy_is_sensible(bc03_model):
    """The model-spec 3 reference galaxy (FSPS emulator: ugriz 19.90 18.48 17.79 17.45 17.14):
    BC03 is a different SPS, so agree to SPS-systematics level (0.25 mag), colours closer."""
    m = nanomaggies_to_mag(bc03_model.photometry(theta_of(), 0.05)[0])
    ref = np.array([19.90, 18.48, 17.79, 17.45, 17.14])
    assert np.max(np.abs(m - ref)) < 0.25
    assert abs((m[1] - m[2]) - (ref[1] - ref[2])) < 0.15


def test_derived_properties(bc03_model):
    z = 0.1
    th = burst_theta(0.5, 0.02, log_mstar=10.0)
    d = bc03_model.derived(th, z)
    assert d["sfr_1gyr"][0] == pytest.approx(1e10 / 1e9, rel=1e-12)   # whole mass within 1 Gyr
    assert d["sfr_100myr"][0] == 0.0
    assert d["tage_mw"][0] == pytest.approx(0.5)
    assert d["z_mw"][0] == pytest.approx(0.02, rel=1e-9)
    assert 9.7 < d["log_mstar_surviving"][0] < 10.0
    # Constant-ish young SFH: SFR over 100 Myr and 1 Gyr from the bins directly.
    theta = Prior().sample(50, seed=7)
    d = bc03_model.derived(theta, z)
    h = bc03_model.history(theta, z)
    lo, hi = h.edges[:, :-1], h.edges[:, 1:]
    frac = np.clip((1.0 - lo) / np.where(hi > lo, hi - lo, 1), 0, 1)
    nmf = (1 - h.fburst)[:, None] * h.mass_nmf
    expect = ((nmf * frac).sum(1) + h.fburst * (theta[:, 6] < 1.0)) * 10 ** theta[:, 0] / 1e9
    np.testing.assert_allclose(d["sfr_1gyr"], expect, rtol=1e-10)
    assert np.all(d["log_mstar_surviving"] < theta[:, 0])


def test_derived_draws_equal_derived_of_the_flattened_draws(bc03_model):
    """The per-galaxy path of the catalog fits gives the numbers of ``derived`` row by row,
    bursts before the Big Bang, metallicities at both clips and z up to 1 included."""
    rng = np.random.default_rng(3)
    g, s = 7, 60
    theta = Prior().sample(g * s, seed=11).reshape(g, s, 12)
    z = np.array([0.01, 0.05, 0.1, 0.2, 0.2, 0.6, 1.0])
    theta[6, :20, 6] = 13.0                               # tburst > t_age(z = 1): no burst
    theta[1, :10, 7:9] = 0.0                              # Z clipped at Z_MIN
    theta[2, :10, 7:9] = rng.uniform(5.0, 8.0, (10, 2))   # Z clipped at Z_MAX
    got = bc03_model.derived_draws(theta, z)
    ref = bc03_model.derived(theta.reshape(-1, 12), np.repeat(z, s))
    assert set(got) == set(ref)
    for name, value in ref.items():
        assert got[name].shape == (g, s)
        np.testing.assert_allclose(got[name].ravel(), value, rtol=1e-12, atol=0, err_msg=name)
    with pytest.raises(ValueError, match="shape"):
        bc03_model.derived_draws(theta[0], z[:1])
    with pytest.raises(ValueError, match="redshift"):
        bc03_model.derived_draws(theta, np.r_[z[:-1], np.nan])


@pytest.mark.parametrize("col,value,match", [
    (1, 0.7, "betas sum"), (2, -0.2, "beta"), (5, 1.5, "fburst"), (5, -0.1, "fburst"),
    (9, -0.1, "tau_bc"), (10, -1.0, "tau_ism"), (0, np.nan, "log_mstar"), (6, 0.0, "tburst")])
def test_bad_parameters_raise(bc03_model, col, value, match):
    th = np.tile(theta_of(), (3, 1))
    th[1, col] = value
    if col == 2:
        th[1, 1] += 0.2 + 0.2  # keep the sum at 1 so that the sign test triggers
        th[1, 3] -= 0.2
    with pytest.raises(ValueError, match=match):
        bc03_model.photometry(th, 0.1)


def test_bad_redshift_raises(bc03_model):
    with pytest.raises(ValueError, match="z = -0.1"):
        bc03_model.spectrum(theta_of(), -0.1)
    with pytest.raises(ValueError, match="redshift"):
        bc03_model.photometry(theta_of(), 0.0)
    with pytest.raises(ValueError, match="redshift"):
        bc03_model.photometry(theta_of(), np.nan)


def test_bin_centre_ages_and_birth_cloud_bins(bc03_model):
    centres = 0.5 * (BASE_EDGES[1:] + BASE_EDGES[:-1])
    young = centres < 0.01
    assert young.sum() == 10  # model-spec 1.4: the 10 youngest bins, 0.56 to 8.0 Myr
    np.testing.assert_allclose(centres[young][[0, -1]], [0.56e-3, 8.0e-3], rtol=0.02)

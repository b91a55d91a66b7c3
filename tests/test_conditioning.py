"""The mask-aware conditioning of issue 19: encoding catalog x with a floor, and the
training draws that cover inflated errors, floors and missing bands."""
import numpy as np
import pytest

from provabgs_sbi.inference.conditioning import Conditioning, Regime, floor_array
from provabgs_sbi.inference.noise import default_noise_model
from provabgs_sbi.model.observation import SDSS

MAGS = np.array([[19.0, 17.5, 16.8, 16.4, 16.1]])


@pytest.fixture(scope="module")
def noise():
    return default_noise_model()


def filled(**kw):
    return Conditioning(**kw).with_fill(np.tile(MAGS, (3, 1)), np.full((3, 5), 0.02))


def test_encode_adds_floor_in_quadrature_and_masks_missing_bands():
    cond = filled()
    x = SDSS.assemble(MAGS, [[0.03, 0.004, 0.004, 0.005, 0.01]], [0.1])
    enc = cond.encode(x, floor=[0.04, 0.003, 0.0, 0.0, 0.0])
    assert enc.shape == (1, 16) and cond.size == 16 and len(cond.names) == 16
    np.testing.assert_allclose(enc[0, 5:10], [0.05, 0.005, 0.004, 0.005, 0.01])
    x[0, 1] = np.nan                               # g missing
    enc = cond.encode(x)
    assert enc[0, 1] == cond.mag_fill[1] and enc[0, 6] == cond.sigma_fill[1]
    assert enc[0, 11:].tolist() == [1, 0, 1, 1, 1] and enc[0, 10] == 0.1


@pytest.mark.parametrize("floor, match", [(0.2, "above the largest"), (-0.01, ">= 0"),
                                          ([0.1, 0.1], "one per band"), (np.nan, "finite")])
def test_bad_floors_are_refused(floor, match):
    with pytest.raises(ValueError, match=match):
        filled().encode(SDSS.assemble(MAGS, np.full((1, 5), 0.01), [0.1]), floor=floor)


def test_floor_array_broadcasts_one_value():
    assert floor_array(0.05, 5).tolist() == [0.05] * 5


@pytest.mark.parametrize("kw, match", [(dict(min_bands=0), "min_bands"), (dict(p_mask=1.0), "p_mask"),
                                       (dict(inflate_max=0.5), "inflate_max"),
                                       (dict(floor_max=-1), "floor_max")])
def test_config_is_validated(kw, match):
    with pytest.raises(ValueError, match=match):
        Conditioning(**kw)


def test_round_trip_through_dict():
    cond = filled(min_bands=2)
    assert Conditioning.from_dict(cond.to_dict()) == cond


def test_training_draws_cover_the_mixture(noise):
    cond = filled()
    n = 40_000
    mags = np.tile(MAGS, (n, 1))
    x, floor, ok = cond.draw(mags, np.full(n, 0.1), noise, rng=1)
    missing = SDSS.missing(x)
    n_present = (~missing).sum(axis=1)
    assert n_present.min() == cond.min_bands                 # never fewer bands than allowed
    assert abs(np.mean(n_present < 5) - cond.p_mask) < 0.01
    assert abs(np.mean(floor.any(axis=1)) - cond.p_floor) < 0.01
    assert floor.max() <= cond.floor_max
    # each band is dropped equally often
    frac = missing.mean(axis=0)
    assert np.ptp(frac) < 0.01
    # inflated errors reach several times the noise model's mu + 3 s, never above the limit
    plain = noise.median_sigma(mags) + 3 * noise.scatter_sigma(mags)
    ratio = SDSS.errors(x)[ok] / plain[ok]
    assert np.nanmax(ratio) > 3 and np.nanmax(ratio) <= cond.sigma_limit(noise, MAGS)[0].max() / plain[0].min()
    # the noisy magnitudes scatter by sigma_eff
    pull = (SDSS.mags(x) - mags) / np.sqrt(SDSS.errors(x) ** 2 + floor**2)
    good = ok[:, None] & ~missing
    assert abs(np.std(pull[good]) - 1) < 0.02 and abs(np.mean(pull[good])) < 0.02


def test_regime_draws_are_fixed(noise):
    cond = filled()
    reg = Regime("no u, 3x, floor", missing=("u",), inflate=3.0, floor=0.05)
    x, floor, ok = cond.draw(np.tile(MAGS, (500, 1)), np.full(500, 0.1), noise, rng=2, regime=reg)
    assert SDSS.missing(x)[:, 0].all() and not SDSS.missing(x)[ok, 1:].any()
    assert (floor == 0.05).all()
    with pytest.raises(ValueError, match="unknown bands"):
        cond.draw(MAGS, [0.1], noise, 0, regime=Regime("bad", missing=("y",)))

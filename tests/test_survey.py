"""Survey configurations (issue 20, item 1): the SDSS preset is today's constants, presets
and user surveys validate and round-trip, and a survey's filters give the AB magnitudes of
an independent flat-f_nu source."""
import json

import numpy as np
import pytest

from provabgs_sbi.inference.conditioning import Conditioning
from provabgs_sbi.inference.noise import DEFAULT_NOISE_FILE
from provabgs_sbi.model.cosmology import luminosity_distance_cm
from provabgs_sbi.model.observation import SDSS
from provabgs_sbi.model.photometry import (BANDS, C_ANGSTROM_S, FILTER_NAMES, LSUN_ERG_S,
                                           SDSS_TO_AB_MAG, nanomaggies_to_mag)
from provabgs_sbi.model.survey import GALEX_SDSS_2MASS, SDSS_UGRIZ, SURVEYS, Survey, get_survey


def test_sdss_preset_is_the_packages_constants():
    s = SDSS_UGRIZ
    assert s.bands == BANDS and s.filters == FILTER_NAMES and s.layout == SDSS
    np.testing.assert_array_equal(s.ab_offsets, SDSS_TO_AB_MAG)
    c = Conditioning()
    assert (c.bands, c.floor_max, c.min_bands) == (s.bands, s.floor_max, s.min_bands)
    assert Conditioning.for_survey("sdss_ugriz") == c
    assert DEFAULT_NOISE_FILE.name == s.noise_model and DEFAULT_NOISE_FILE.exists()
    np.testing.assert_allclose(s.to_ab(np.zeros((2, 5))), np.tile(SDSS_TO_AB_MAG, (2, 1)))


def test_ten_band_preset_matches_the_kcorrect_reader():
    from provabgs_sbi.io import kcorrect_bands

    s = GALEX_SDSS_2MASS
    assert s.bands == kcorrect_bands.BANDS and s.filters == kcorrect_bands.FILTERS
    assert s.n_bands == 10 and s.layout.size == 21 and s.ab_offsets == (0.0,) * 10
    c = Conditioning.for_survey(s, p_mask=0.5)
    assert c.bands == s.bands and c.p_mask == 0.5 and c.size == 31
    assert s.optional_bands == c.optional == ("FUV", "NUV")
    assert s.required_bands == ("u", "g", "r", "i", "z", "J", "H", "Ks")
    assert "optional_bands" not in SDSS_UGRIZ.to_dict()        # as recorded before the field
    assert SDSS_UGRIZ.required_bands == SDSS_UGRIZ.bands


@pytest.mark.parametrize("bad, match", [
    (dict(name="a b"), "survey name"),
    (dict(bands=("u", "u")), "distinct"),
    (dict(filters=("sdss2010-u",)), "2 bands but 1 filters"),
    (dict(ab_offsets=(0.0, float("nan"))), "ab_offsets"),
    (dict(ab_offsets=(0.0,)), "ab_offsets"),
    (dict(z_range=(0.2, 0.1)), "z_range"),
    (dict(z_range=(-0.1, 0.1)), "z_range"),
    (dict(floor_max=-0.01), "floor_max"),
    (dict(min_bands=3), "min_bands"),
    (dict(min_bands=1.5), "min_bands"),
    (dict(optional_bands=("y",), min_bands=1), "optional_bands"),
    (dict(optional_bands=("g", "g"), min_bands=1), "optional_bands"),
    (dict(optional_bands=("g",), min_bands=2), "not optional"),
])
def test_invalid_surveys_are_refused(bad, match):
    good = dict(name="two", bands=("g", "r"), filters=("sdss2010-g", "sdss2010-r"))
    with pytest.raises(ValueError, match=match):
        Survey(**{**good, **bad})


def test_surveys_round_trip_through_json(tmp_path):
    for s in SURVEYS.values():
        assert Survey.from_dict(json.loads(json.dumps(s.to_dict()))) == s
        assert get_survey(s.name) is s
    mine = Survey(name="legacy-grz-w12", bands=("g", "r", "z", "W1", "W2"),
                  filters=("decam2014-g", "decam2014-r", "decam2014-z", "wise2010-W1",
                           "wise2010-W2"), ab_offsets=(0, 0, 0, 2.699, 3.339), min_bands=2)
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(mine.to_dict()))
    assert get_survey(str(path)) == mine
    path.write_text(json.dumps({**mine.to_dict(), "colour": "blue"}))
    with pytest.raises(ValueError, match="unknown survey fields"):
        get_survey(path)
    with pytest.raises(ValueError, match="neither a shipped survey"):
        get_survey("sdss")


@pytest.mark.parametrize("survey", [SDSS_UGRIZ, GALEX_SDSS_2MASS], ids=lambda s: s.name)
def test_a_flat_fnu_source_has_the_same_ab_magnitude_in_every_band(survey):
    """AB magnitudes are defined against a flat f_nu of 3631 Jy: a source of flat
    f_nu = 3631 Jy x 10^(-0.4 m) has magnitude m in every filter, whatever its shape. The
    rest-frame L_lambda that gives it at z is built here from the definition."""
    m_true, z = 18.3, 0.05
    wave = np.geomspace(500.0, 40000.0, 20000)                 # rest frame, Angstrom
    f_nu = 3631e-23 * 10 ** (-0.4 * m_true)                    # erg/s/cm^2/Hz
    f_lambda_obs = f_nu * C_ANGSTROM_S / (wave * (1 + z)) ** 2  # at lambda_obs
    d_l = luminosity_distance_cm(z)
    lum = f_lambda_obs * (1 + z) * 4 * np.pi * d_l**2 / LSUN_ERG_S   # Lsun/A, rest frame
    flux = survey.photometer(wave).nanomaggies(lum[None], np.array([z]), exact=True)
    np.testing.assert_allclose(nanomaggies_to_mag(flux)[0], m_true, atol=2e-3)

"""Survey configurations: which bands a posterior is built for, and how they are observed.

A :class:`Survey` names a set of bands and everything about them that does not depend on
one catalog's rows: the filter response of each band (speclite names, or files of user
response curves), the offsets that bring the survey's catalog magnitudes to AB, the
redshift range the posteriors are trained for, the range of systematic floors they cover,
the fewest bands a galaxy must keep, the fitted per-band noise model, and the catalog
reader preset. It is frozen and validated on construction and serialises to a small JSON
dict, so that an artifact can record the survey it was made for.

Two configurations ship:

:data:`SDSS_UGRIZ`
    SDSS ugriz, the configuration of every committed emulator and posterior: its values
    are the package's existing constants (:data:`~provabgs_sbi.model.photometry.BANDS`,
    :data:`~provabgs_sbi.model.photometry.FILTER_NAMES`,
    :data:`~provabgs_sbi.model.photometry.SDSS_TO_AB_MAG`; the mask-aware flows' floor range
    and minimum bands), so nothing about them changes.
:data:`GALEX_SDSS_2MASS`
    FUV, NUV, ugriz, J, H, Ks of the kcorrect sample
    (:func:`provabgs_sbi.io.kcorrect_bands.load_kcorrect_multiband`, which returns AB
    nanomaggies, hence offsets of 0 here: its GALEX count rates and 2MASS Vega magnitudes
    are converted by the reader). Its noise model
    (``data/noise_model_galex_sdss_2mass.ecsv``, ``provabgs-sbi noise fit --survey
    galex_sdss_2mass``) is fitted to the same sample, each band on the galaxies that have it.

A user's survey is a :class:`Survey` built in Python or read from JSON
(:func:`get_survey` with a path).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from provabgs_sbi.model.observation import XLayout
from provabgs_sbi.model.photometry import BANDS, FILTER_NAMES, SDSS_TO_AB_MAG, Photometer


@dataclass(frozen=True)
class Survey:
    """A set of bands and how they are observed (validated on construction).

    Attributes
    ----------
    name : str
        Identifier (letters, digits, ``_`` and ``-``), e.g. ``"sdss_ugriz"``.
    bands : tuple of str
        Band names, in the order of every per-band array (x, fluxes, noise model).
    filters : tuple of str
        Per band, a speclite filter name (``"sdss2010-u"``, ``"galex-nuv"``,
        ``"twomass-Ks"``, ...) or the path of a speclite-readable response-curve file.
    ab_offsets : tuple of float
        Per band, m_AB - m_catalog in mag (0 for catalogs already in AB); default all 0.
    z_range : (float, float)
        Redshifts the survey's training sets and posteriors cover, 0 <= z_lo < z_hi.
    floor_max : float
        Largest systematic floor (mag, per band, added in quadrature to the errors) that
        its mask-aware posteriors are trained to accept.
    min_bands : int
        Fewest bands a galaxy must keep to be fitted by a mask-aware posterior.
    noise_model : str or None
        File of the per-band noise model fitted to a catalog of the survey (a name under
        the repository's ``data/`` folder, or a path); None when none is fitted yet.
    catalog : str or None
        Name of the catalog reader preset for the survey's catalogs (``"sdss"``, ``"nsa"``
        of :func:`provabgs_sbi.io.catalog.read_catalog`; ``"kcorrect_multiband"``).
    optional_bands : tuple of str
        Bands that most of the survey's galaxies lack (not covered, or not detected: GALEX
        in the kcorrect sample holds FUV for 5% and NUV for 8% of the galaxies); default
        none. Training sets cut on the noise model's magnitude range only in the other
        bands (:attr:`required_bands`), so that a prior draw faint in an optional band is
        kept rather than the training set leaning to galaxies bright in it; mask-aware
        training makes them missing where a galaxy is too faint for them or not covered
        (:class:`~provabgs_sbi.inference.conditioning.Conditioning`).
    """

    name: str
    bands: tuple
    filters: tuple
    ab_offsets: tuple = ()
    z_range: tuple = (0.0, 0.2)
    floor_max: float = 0.1
    min_bands: int = 3
    noise_model: str | None = None
    catalog: str | None = None
    optional_bands: tuple = ()

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if not (isinstance(self.name, str) and self.name
                and all(c.isalnum() or c in "_-" for c in self.name)):
            raise ValueError(f"survey name must be letters, digits, '_' or '-', got {self.name!r}")
        set_("bands", tuple(str(b) for b in self.bands))
        layout = XLayout(self.bands)               # distinct names, at least one
        n = layout.n_bands
        set_("filters", tuple(str(f) for f in self.filters))
        if len(self.filters) != n:
            raise ValueError(f"survey {self.name!r}: {n} bands but {len(self.filters)} filters")
        offsets = tuple(float(a) for a in self.ab_offsets) or (0.0,) * n
        if len(offsets) != n or not all(math.isfinite(a) and abs(a) < 5 for a in offsets):
            raise ValueError(f"survey {self.name!r}: ab_offsets must be {n} finite values within "
                             f"5 mag, got {self.ab_offsets}")
        set_("ab_offsets", offsets)
        z = tuple(float(v) for v in self.z_range)
        if len(z) != 2 or not (0.0 <= z[0] < z[1] <= 20.0):
            raise ValueError(f"survey {self.name!r}: z_range must be (lo, hi) with "
                             f"0 <= lo < hi <= 20, got {self.z_range}")
        set_("z_range", z)
        if not (math.isfinite(self.floor_max) and 0.0 <= self.floor_max <= 1.0):
            raise ValueError(f"survey {self.name!r}: floor_max must be in [0, 1] mag, "
                             f"got {self.floor_max}")
        set_("floor_max", float(self.floor_max))
        if isinstance(self.min_bands, bool) or int(self.min_bands) != self.min_bands \
                or not 1 <= self.min_bands <= n:
            raise ValueError(f"survey {self.name!r}: min_bands must be an integer in [1, {n}], "
                             f"got {self.min_bands}")
        set_("min_bands", int(self.min_bands))
        set_("optional_bands", tuple(str(b) for b in self.optional_bands))
        unknown = set(self.optional_bands) - set(self.bands)
        if unknown or len(set(self.optional_bands)) != len(self.optional_bands):
            raise ValueError(f"survey {self.name!r}: optional_bands must be distinct bands of "
                             f"the survey, got {list(self.optional_bands)}")
        if n - len(self.optional_bands) < self.min_bands:
            raise ValueError(f"survey {self.name!r}: {n - len(self.optional_bands)} bands are "
                             f"not optional, fewer than min_bands = {self.min_bands}")

    # ------------------------------------------------------------------ derived
    @property
    def n_bands(self) -> int:
        """Number of bands."""
        return len(self.bands)

    @property
    def layout(self) -> XLayout:
        """The layout of x (magnitudes, errors, z) for these bands."""
        return XLayout(self.bands)

    @property
    def required_bands(self) -> tuple:
        """The bands that are not optional: the ones the training-set range cut uses."""
        return tuple(b for b in self.bands if b not in self.optional_bands)

    def photometer(self, wave, dz: float = 1e-3) -> Photometer:
        """A :class:`~provabgs_sbi.model.photometry.Photometer` of the survey's filters for
        rest-frame spectra on ``wave`` (Angstrom)."""
        return Photometer(wave, self.filters, dz=dz)

    def to_ab(self, mags) -> np.ndarray:
        """Catalog magnitudes (..., n_bands) brought to AB with :attr:`ab_offsets`."""
        return np.asarray(mags, dtype=np.float64) + np.asarray(self.ab_offsets)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        """Plain JSON-able dict (lists for tuples); :meth:`from_dict` inverts it."""
        d = asdict(self)
        for key in ("bands", "filters", "ab_offsets", "z_range", "optional_bands"):
            d[key] = list(d[key])
        if not d["optional_bands"]:   # as the dicts recorded before the field existed
            del d["optional_bands"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Survey":
        """A survey from :meth:`to_dict`'s dict; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown survey fields {sorted(unknown)}")
        return cls(**d)


#: SDSS ugriz: the survey of every committed emulator and posterior.
SDSS_UGRIZ = Survey(name="sdss_ugriz", bands=BANDS, filters=FILTER_NAMES,
                    ab_offsets=tuple(SDSS_TO_AB_MAG), z_range=(0.0, 0.2), floor_max=0.1,
                    min_bands=3, noise_model="noise_model_sdss.ecsv", catalog="sdss")
#: GALEX FUV, NUV + SDSS ugriz + 2MASS J, H, Ks, as the kcorrect sample holds them.
GALEX_SDSS_2MASS = Survey(
    name="galex_sdss_2mass", bands=("FUV", "NUV") + BANDS + ("J", "H", "Ks"),
    filters=("galex-fuv", "galex-nuv") + FILTER_NAMES + ("twomass-J", "twomass-H", "twomass-Ks"),
    z_range=(0.0, 0.2), floor_max=0.1, min_bands=3,
    noise_model="noise_model_galex_sdss_2mass.ecsv", catalog="kcorrect_multiband",
    optional_bands=("FUV", "NUV"))

#: The shipped configurations by name.
SURVEYS = {s.name: s for s in (SDSS_UGRIZ, GALEX_SDSS_2MASS)}


def get_survey(survey) -> Survey:
    """A :class:`Survey` from itself, a :meth:`Survey.to_dict` dict, a shipped name
    (:data:`SURVEYS`) or a JSON file.

    Raises
    ------
    ValueError
        An unknown name, or a file that is not a valid survey.
    """
    if isinstance(survey, Survey):
        return survey
    if isinstance(survey, dict):
        return Survey.from_dict(survey)
    if isinstance(survey, str) and survey in SURVEYS:
        return SURVEYS[survey]
    path = Path(survey)
    if path.suffix == ".json" and path.exists():
        try:
            return Survey.from_dict(json.loads(path.read_text()))
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a survey configuration ({err})") from None
    raise ValueError(f"{survey!r} is neither a shipped survey {sorted(SURVEYS)} nor a .json "
                     "survey file")

"""What a mask-aware flow is conditioned on, and how its training inputs are drawn.

SEDflow conditions on x = (5 AB magnitudes, their 5 errors, z), with errors drawn from a
noise model fitted to one catalog. Real catalogs break that in three ways (issue 19): errors
several times the typical value, a model error that the catalog errors leave out, and
missing bands. :class:`Conditioning` covers all three with one amortized flow, with no
imputation loop:

**The flow's input** (:meth:`Conditioning.encode`), 3 n_bands + 1 numbers per galaxy::

    m_b          AB magnitude of band b (a fixed fill value where b is missing)
    sigma_eff_b  sqrt(sigma_b^2 + f_b^2): the catalog error with a systematic floor f_b
    z            redshift
    present_b    1 where band b is measured, 0 where it is missing

**Why one error per band suffices for the floor.** A model error of f_b magnitudes
(Gaussian, independent of the noise) and a noise of sigma_b add: the observed magnitude is
m_model + N(0, sigma_b^2 + f_b^2), so the likelihood, hence the posterior, depends on sigma_b
and f_b only through sigma_eff_b. A flow trained over sigma_eff values that cover
sqrt(sigma^2 + f^2) for every floor in [0, ``floor_max``] serves any floor in that range,
chosen when fitting; floor 0 is SEDflow's setting.

**Training draws** (:meth:`Conditioning.draw`, from a training set's noiseless magnitudes):

1. sigma_b ~ N(mu(m_b), s(m_b)) from the fitted noise model, as SEDflow;
2. with probability ``p_inflate`` a galaxy's errors are inflated, each band by its own
   factor k_b ~ log-uniform(1, ``inflate_max``), so catalog errors several times the typical
   value lie inside the training distribution;
3. with probability ``p_floor`` a galaxy gets floors f_b ~ U(0, ``floor_max``), independent
   per band (one value for all bands is a special case), else f_b = 0;
4. m_hat_b = m_b + sigma_eff_b eps_b;
5. with probability ``p_mask`` a galaxy loses between 1 and n_bands - ``min_bands`` bands
   (the number uniform, then which bands uniform);
6. a survey's ``optional`` bands (GALEX in ``galex_sdss_2mass``) are missing where a
   galaxy is not covered, all together, with probability ``p_optional``; and each is
   missing where the galaxy is not detected: fainter than the faintest magnitude of the
   noise model's catalog (the other bands are inside that range in every training galaxy,
   by the training set's cut). A galaxy keeps at least ``min_bands`` bands;
7. with probability ``p_optional_each`` each optional band of a covered galaxy is missing on
   its own (a detector off, a source masked in one band: the kcorrect sample has FUV without
   NUV for 34 of its 10,000 galaxies), independently of the other optional bands.

Steps 5-7 are a model of why bands are missing. Random subsets (step 5) are
independent of the galaxy, so for them the flow learns p(theta | the present bands). A
missing optional band also says "not covered, or too faint", and the flow learns that too:
it is the posterior of a catalog whose coverage fraction is 1 - ``p_optional`` and whose
detection limit is the noise model's. The alternatives are worse: leaving undetected
bands present puts magnitudes of 30-130 (quiescent galaxies' FUV) into the inputs that no
catalog has, and dropping them from training keeps only UV-bright galaxies.

The mixture keeps a fraction (1 - p_inflate)(1 - p_floor)(1 - p_mask) of the draws in
SEDflow's own regime (typical errors, no floor, all bands), so robustness does not take the
training density away from it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from provabgs_sbi.model.observation import SDSS, XLayout
from provabgs_sbi.model.survey import get_survey

__all__ = ["Conditioning", "Regime", "floor_array"]


def floor_array(floor, n_bands: int) -> np.ndarray:
    """A floor given as one value or one per band, as an array of shape (n_bands,), mag.

    Raises
    ------
    ValueError
        Wrong length, or a value that is negative or not finite.
    """
    f = np.atleast_1d(np.asarray(floor, dtype=np.float64))
    if f.size == 1:
        f = np.full(n_bands, float(f[0]))
    if f.shape != (n_bands,):
        raise ValueError(f"the floor must be one value or {n_bands} (one per band), got {f.size}")
    if not np.all(np.isfinite(f) & (f >= 0)):
        raise ValueError(f"floor values must be finite and >= 0 mag, got {f.tolist()}")
    return f


@dataclass(frozen=True)
class Regime:
    """One fixed observing regime for validation: which bands, how noisy, which floor.

    Attributes
    ----------
    name : str
    missing : tuple of str
        Bands removed from every galaxy.
    patterns : tuple of (tuple of str, float)
        Instead of ``missing``: (missing bands, weight) pairs, one drawn per galaxy with
        probability proportional to its weight (:meth:`from_catalog`: a catalog's own
        patterns).
    inflate : float
        Every error multiplied by this (1: the noise model's errors; 3: three times typical).
    floor : float or tuple of float
        Systematic floor, mag: one value for every band, or one per band.
    """

    name: str
    missing: tuple = ()
    inflate: float = 1.0
    floor: float | tuple = 0.0
    patterns: tuple = ()

    def __post_init__(self):
        f = np.atleast_1d(np.asarray(self.floor, dtype=np.float64))
        object.__setattr__(self, "floor", float(f[0]) if f.size == 1 else tuple(f.tolist()))
        pats = tuple((tuple(str(b) for b in bands), float(w)) for bands, w in self.patterns)
        if pats and (self.missing or not all(np.isfinite(w) and w > 0 for _, w in pats)):
            raise ValueError(f"regime {self.name!r}: patterns need positive weights and no "
                             "fixed missing bands")
        object.__setattr__(self, "missing", tuple(self.missing))
        object.__setattr__(self, "patterns", pats)

    @classmethod
    def from_catalog(cls, name: str, x, layout, **settings) -> "Regime":
        """A regime whose galaxies have the band patterns of a catalog, in its proportions.

        Parameters
        ----------
        name : str
        x : array_like of shape (N, 2 n_bands + 1)
            The catalog's x (NaN, or an error <= 0, where a band is missing).
        layout : XLayout
        **settings
            ``inflate``, ``floor``.
        """
        missing = layout.missing(layout.check(x))
        keys, counts = np.unique(missing, axis=0, return_counts=True)
        pats = tuple((tuple(b for b, m in zip(layout.bands, key) if m), int(c))
                     for key, c in zip(keys, counts))
        return cls(name, patterns=pats, **settings)


@dataclass(frozen=True)
class Conditioning:
    """How catalog x (NaN where a band is missing) and a floor become the flow's input, and
    how training inputs are drawn to cover them (see the module docstring).

    Attributes
    ----------
    bands : tuple of str
        Band names, in x's order.
    inflate_max : float
        Largest error inflation factor drawn (>= 1).
    p_inflate : float
        Fraction of training galaxies with inflated errors.
    floor_max : float
        Largest systematic floor drawn, mag; a fit may ask for any floor in [0, floor_max].
    p_floor : float
        Fraction of training galaxies with a floor.
    min_bands : int
        Fewest bands a galaxy keeps in training, hence the fewest a fit accepts.
    p_mask : float
        Fraction of training galaxies with missing bands.
    optional : tuple of str
        The survey's optional bands (:attr:`~provabgs_sbi.model.survey.Survey.optional_bands`):
        missing where fainter than the noise model's range, or not covered.
    p_optional : float
        Probability that a training galaxy is not covered: lacks all optional bands.
    p_optional_each : float
        Probability that one optional band of a covered galaxy is missing on its own,
        independently per band. 0 (the default) draws exactly as before the option existed.
    mag_fill : tuple of float
        Magnitude put in place of a missing band (per band; set from the training data by
        :meth:`with_fill`); its error is filled with ``sigma_fill``.
    sigma_fill : tuple of float
        Error put in place of a missing band's error, mag.
    """

    bands: tuple = SDSS.bands
    inflate_max: float = 5.0
    p_inflate: float = 0.3
    floor_max: float = 0.1
    p_floor: float = 0.5
    min_bands: int = 3
    p_mask: float = 0.3
    optional: tuple = ()
    p_optional: float = 0.5
    p_optional_each: float = 0.0
    mag_fill: tuple = field(default=())
    sigma_fill: tuple = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "bands", tuple(self.bands))
        n = len(self.bands)
        XLayout(self.bands)
        if not (np.isfinite(self.inflate_max) and self.inflate_max >= 1):
            raise ValueError(f"inflate_max must be >= 1, got {self.inflate_max}")
        if not (np.isfinite(self.floor_max) and 0 <= self.floor_max <= 1):
            raise ValueError(f"floor_max must be in [0, 1] mag, got {self.floor_max}")
        object.__setattr__(self, "optional", tuple(str(b) for b in self.optional))
        if set(self.optional) - set(self.bands):
            raise ValueError(f"optional bands {list(self.optional)} must be among {list(self.bands)}")
        if n - len(set(self.optional)) < int(self.min_bands):
            raise ValueError(f"{n - len(set(self.optional))} bands are not optional, fewer than "
                             f"min_bands = {self.min_bands}")
        for name in ("p_inflate", "p_floor", "p_mask", "p_optional", "p_optional_each"):
            p = getattr(self, name)
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if not 1 <= int(self.min_bands) <= n:
            raise ValueError(f"min_bands must be in [1, {n}], got {self.min_bands}")
        for name in ("mag_fill", "sigma_fill"):
            v = tuple(float(a) for a in getattr(self, name))
            if v and (len(v) != n or not np.all(np.isfinite(v))):
                raise ValueError(f"{name} must hold {n} finite values, got {v}")
            object.__setattr__(self, name, v)

    # ------------------------------------------------------------------ layout
    @property
    def layout(self) -> XLayout:
        """The catalog-side layout of x (magnitudes, errors, z)."""
        return XLayout(self.bands)

    @property
    def size(self) -> int:
        """Length of the flow's input: 3 n_bands + 1."""
        return 3 * len(self.bands) + 1

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the flow's input columns."""
        return (tuple(f"mag_{b}" for b in self.bands) + tuple(f"sigma_eff_{b}" for b in self.bands)
                + ("redshift",) + tuple(f"present_{b}" for b in self.bands))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bands"], d["optional"] = list(self.bands), list(self.optional)
        if not self.optional:   # as conditionings recorded before optional bands existed
            del d["optional"], d["p_optional"]
        if not self.p_optional_each:   # as conditionings recorded before the option
            del d["p_optional_each"]
        d["mag_fill"], d["sigma_fill"] = list(self.mag_fill), list(self.sigma_fill)
        return d

    @classmethod
    def for_survey(cls, survey, **settings) -> "Conditioning":
        """The conditioning of a :class:`~provabgs_sbi.model.survey.Survey` (or its name):
        its bands, floor range and minimum bands, with other ``settings`` as given."""
        s = get_survey(survey)
        return cls(**{"bands": s.bands, "floor_max": s.floor_max, "min_bands": s.min_bands,
                      "optional": s.optional_bands, **settings})

    @classmethod
    def from_dict(cls, d: dict) -> "Conditioning":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def with_fill(self, mags, sigma) -> "Conditioning":
        """This conditioning with fill values from training data: the median magnitude and
        error of each band over the rows where it is present ((N, n_bands) arrays, NaN where
        missing)."""
        with np.errstate(all="ignore"):
            mf = np.nanmedian(np.asarray(mags, dtype=np.float64), axis=0)
            sf = np.nanmedian(np.asarray(sigma, dtype=np.float64), axis=0)
        return type(self)(**{**self.to_dict(), "mag_fill": tuple(mf), "sigma_fill": tuple(sf)})

    # ------------------------------------------------------------------ fitting side
    def check_floor(self, floor) -> np.ndarray:
        """The floor as an (n_bands,) array, refused outside [0, ``floor_max``]."""
        f = floor_array(floor, len(self.bands))
        if np.any(f > self.floor_max + 1e-12):
            raise ValueError(f"floor {f.tolist()} mag is above the largest this posterior was "
                             f"trained for ({self.floor_max} mag)")
        return f

    def encode(self, x, floor=0.0) -> np.ndarray:
        """The flow's input for catalog vectors ``x`` and a systematic floor.

        Parameters
        ----------
        x : array_like of shape (N, 2 n_bands + 1)
            Magnitudes, errors (the catalog's, without the floor) and z; a band whose
            magnitude or error is NaN or whose error is <= 0 is missing.
        floor : float or array_like of shape (n_bands,) or (N, n_bands)
            Systematic floor per band, mag, in [0, ``floor_max``].

        Returns
        -------
        ndarray of shape (N, 3 n_bands + 1)
            See the module docstring; missing bands carry the fill values.
        """
        if not self.mag_fill:
            raise ValueError("fill values are not set; build with Conditioning.with_fill")
        lay = self.layout
        x = lay.check(x)
        f = np.asarray(floor, dtype=np.float64)
        if f.ndim < 2:
            f = self.check_floor(f)[None]
        elif f.shape != (len(x), len(self.bands)) or np.any(~np.isfinite(f) | (f < 0)):
            raise ValueError(f"a per-galaxy floor must be finite, >= 0, of shape "
                             f"({len(x)}, {len(self.bands)})")
        missing = lay.missing(x)
        with np.errstate(invalid="ignore"):
            sigma_eff = np.sqrt(lay.errors(x) ** 2 + f ** 2)
        mags = np.where(missing, np.asarray(self.mag_fill), lay.mags(x))
        sigma_eff = np.where(missing, np.asarray(self.sigma_fill), sigma_eff)
        return np.concatenate([mags, sigma_eff, lay.redshift(x)[:, None],
                               (~missing).astype(np.float64)], axis=1)

    def sigma_limit(self, noise, mags) -> np.ndarray:
        """Largest catalog error inside the training distribution at magnitudes ``mags``
        (..., n_bands): ``inflate_max`` x (mu + 3 s) of the noise model (mu + 3 s without
        inflation)."""
        k = self.inflate_max if self.p_inflate > 0 else 1.0
        return k * (noise.median_sigma(mags) + 3 * noise.scatter_sigma(mags))

    # ------------------------------------------------------------------ training side
    def draw(self, mag_true, z, noise, rng, regime: Regime | None = None):
        """Training (or validation) inputs from noiseless magnitudes.

        Parameters
        ----------
        mag_true : ndarray of shape (N, n_bands)
            Noiseless AB magnitudes (a training set's ``mag_true``).
        z : ndarray of shape (N,)
        noise : NoiseModel
        rng : numpy.random.Generator or int
        regime : Regime, optional
            Fixed bands, inflation and floor for every galaxy (validation) instead of the
            training mixture.

        Returns
        -------
        x : ndarray of shape (N, 2 n_bands + 1)
            Catalog-like vectors: noisy magnitudes, errors before the floor, z; NaN in
            missing bands.
        floor : ndarray of shape (N, n_bands)
            The floor of each galaxy and band, mag.
        ok : ndarray of shape (N,), bool
            False where the noise model drew an error <= 0 in a detected band (SEDflow drops
            such rows).
        """
        rng = np.random.default_rng(rng)
        mag_true = np.asarray(mag_true, dtype=np.float64)
        n, nb = mag_true.shape
        if nb != len(self.bands):
            raise ValueError(f"mag_true must have {len(self.bands)} bands, got {nb}")
        sigma, _ = noise.sample_sigma(mag_true, rng)
        undetected = self.undetected(mag_true, noise)
        with np.errstate(invalid="ignore"):   # an undetected band's error does not count
            ok = np.all((np.isfinite(sigma) & (sigma > 0)) | undetected, axis=1)
        eps = rng.standard_normal((n, nb))
        if regime is None:
            inflated = rng.random(n) < self.p_inflate
            k = np.exp(rng.uniform(0.0, np.log(self.inflate_max), (n, nb)))
            k = np.where(inflated[:, None], k, 1.0)
            floored = rng.random(n) < self.p_floor
            floor = np.where(floored[:, None], rng.uniform(0.0, self.floor_max, (n, nb)), 0.0)
            missing = self._draw_masks(n, rng, undetected)
        else:
            k = np.full((n, nb), float(regime.inflate))
            floor = np.tile(self.check_floor(regime.floor), (n, 1))
            pats = regime.patterns or ((regime.missing, 1.0),)
            unknown = set().union(*(set(p) for p, _ in pats)) - set(self.bands)
            if unknown:
                raise ValueError(f"regime {regime.name!r}: unknown bands {sorted(unknown)}")
            table = np.array([[b in p for b in self.bands] for p, _ in pats])
            if np.any(table.sum(axis=1) > len(self.bands) - self.min_bands):
                raise ValueError(f"regime {regime.name!r} leaves fewer than {self.min_bands} bands")
            if len(pats) == 1:
                missing = np.tile(table[0], (n, 1))
            else:
                w = np.array([w for _, w in pats])
                missing = table[rng.choice(len(pats), n, p=w / w.sum())]
            missing = missing | undetected
        sigma = sigma * k
        with np.errstate(invalid="ignore"):
            noisy = mag_true + np.sqrt(sigma**2 + floor**2) * eps
        noisy[missing] = np.nan
        sigma = np.where(missing, np.nan, sigma)
        x = np.column_stack([noisy, sigma, np.asarray(z, dtype=np.float64)])
        return x, floor, ok

    def undetected(self, mag_true, noise) -> np.ndarray:
        """Where an optional band is not detected: its noiseless magnitude (N, n_bands) is
        fainter than the noise model's range (or not finite: a flux of 0); all False in the
        other bands."""
        out = np.zeros(np.shape(mag_true), dtype=bool)
        if self.optional:
            cols = np.isin(self.bands, self.optional)
            with np.errstate(invalid="ignore"):
                out[:, cols] = ~(np.asarray(mag_true)[:, cols] <= noise.mag_range[cols, 1])
        return out

    def _draw_masks(self, n: int, rng, undetected) -> np.ndarray:
        nb = len(self.bands)
        missing = np.zeros((n, nb), dtype=bool)
        most = nb - int(self.min_bands)
        if most >= 1 and self.p_mask > 0:
            rows = np.flatnonzero(rng.random(n) < self.p_mask)
            n_missing = rng.integers(1, most + 1, len(rows))
            order = np.argsort(rng.random((len(rows), nb)), axis=1)   # a permutation per row
            ranks = np.argsort(order, axis=1)
            missing[rows] = ranks < n_missing[:, None]
        if self.optional:   # drawn after the above: the same draws as before the option
            cols = np.isin(self.bands, self.optional)
            uncovered = rng.random(n) < self.p_optional
            drop = undetected | (cols & uncovered[:, None])
            if self.p_optional_each > 0:   # no draw at 0: the same draws as before the option
                drop |= cols & (rng.random((n, nb)) < self.p_optional_each)
            # a random subset and an optional band together may leave too few: then the
            # subset gives way (the optional band's absence is the galaxy's, not chance)
            short = (~(missing | drop)).sum(axis=1) < self.min_bands
            missing[short] = False
            for i in np.flatnonzero(short):
                free = np.flatnonzero(~drop[i])
                extra = len(free) - self.min_bands     # bands the subset may still take
                if extra > 0:
                    pick = rng.permutation(free)[:rng.integers(1, extra + 1)]
                    missing[i, pick] = True
            missing |= drop
        return missing

    def __str__(self) -> str:
        return "Conditioning(" + json.dumps(self.to_dict(), sort_keys=True) + ")"

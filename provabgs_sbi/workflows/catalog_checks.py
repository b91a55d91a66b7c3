"""How a posterior holds on a real catalog: the three checks of issue 19 on real galaxies.

1. **Noise inside the training range**: the fraction of catalog galaxies flagged
   ``sigma_above_noise_model`` (an error above what the posterior was trained on).
2. **Model error**: the fraction of fitted galaxies whose best-draw chi^2 (the posterior
   predictive check of catalog fits, :func:`~provabgs_sbi.inference.ppc.best_draw_chi2`,
   with the floor in sigma_eff) exceeds the poor-fit threshold of their number of bands.
3. **Missing bands**: the same galaxies with one band removed at random (magnitude and error
   set to NaN), which a mask-aware posterior must still fit: the fraction that keeps samples
   (and whose draws are finite).
4. **Blue galaxies**: where the bands include u and r, the poor-fit fraction of the bluest 5%
   in u - r against the rest (blue compact and starburst galaxies fit worst without nebular
   emission).

Any survey's bands: ``x`` is in the posterior's layout, ``model`` photometers in its filters
(an emulator is brought to them, :meth:`~provabgs_sbi.emulator.Emulator.with_filters`).

The numbers are computed as :func:`~provabgs_sbi.workflows.fit.fit_catalog` computes them
(the same flags, draws and thresholds), without writing a catalog file.
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.flags import FLAG_SIGMA_HIGH, has_samples
from provabgs_sbi.inference.ppc import best_draw_chi2, chi2_poor_fit
from provabgs_sbi.workflows.fit import fit_floor

__all__ = ["catalog_checks"]


def catalog_checks(post, model, x, ivar=None, floor=None, n_draws: int = 32,
                   seed: int = 0) -> dict:
    """Noise-flag, poor-fit and one-band-removed fractions of a real catalog.

    Parameters
    ----------
    post : Posterior
    model : object
        ``photometry(theta, z)`` in AB nanomaggies (the posterior's emulator).
    x : ndarray of shape (N, 2 n_bands + 1)
        The catalog's vectors (magnitudes, errors, z) in the posterior's bands, e.g.
        ``PhotometryCatalog.to_x()``.
    ivar : ndarray of shape (N, n_bands), optional
        Flux inverse variances for the chi^2 (default from the magnitude errors).
    floor : float or array_like of shape (n_bands,), optional
        Systematic floor, mag (default: the posterior's default floor); as in
        :func:`~provabgs_sbi.workflows.fit.fit_floor`, a posterior without floors is checked
        with SEDflow's inputs and a 0.02 mag floor in the chi^2.
    n_draws : int
        Posterior draws per galaxy for the best-draw chi^2.
    seed : int
        Seeds the draws and which band is removed.

    Returns
    -------
    dict
        ``n_catalog``; ``n_fitted`` (galaxies with samples); ``frac_sigma_flagged`` (of all
        rows); ``floor``; ``frac_poor_fit`` (of fitted rows); ``one_band_removed``:
        ``n``, ``frac_fitted`` (of the rows fitted with all bands) and ``frac_finite`` (of
        those, with finite draws), and the chi^2 poor-fit fraction of those;
        ``bluest_5pct_u_r`` (with u and r): ``n``, ``u_r_max``, ``frac_poor_fit`` of the
        bluest 5% and ``frac_poor_fit_rest``.
    """
    lay = post.layout
    x = lay.check(x)
    if hasattr(model, "with_filters"):
        model = model.with_filters(post.survey)
    floor, floor_kw, sigma_sys = fit_floor(post, floor)
    flags = post.flags(x)
    fitted = has_samples(flags)
    out = {"n_catalog": int(len(x)), "n_fitted": int(fitted.sum()),
           "frac_sigma_flagged": round(float(np.mean((flags & FLAG_SIGMA_HIGH) != 0)), 5),
           "floor": np.atleast_1d(np.asarray(floor, dtype=float)).tolist()}

    def poor_fraction(xs, iv, s):
        samples = post.sample(xs, n_draws, seed=s, strict=False, **floor_kw)
        chi2, _ = best_draw_chi2(samples, xs, model, iv, n_draws=n_draws, sigma_sys=sigma_sys)
        limit = chi2_poor_fit((~lay.missing(xs)).sum(axis=1))
        finite = np.all(np.isfinite(samples), axis=(1, 2))
        with np.errstate(invalid="ignore"):
            return chi2 > limit, finite

    iv = None if ivar is None else np.asarray(ivar)[fitted]
    poor, _ = poor_fraction(x[fitted], iv, seed)
    out["frac_poor_fit"] = round(float(np.mean(poor)), 5)
    if {"u", "r"} <= set(lay.bands):
        mags = lay.mags(x[fitted])
        ur = mags[:, lay.bands.index("u")] - mags[:, lay.bands.index("r")]
        ok = np.isfinite(ur)
        blue = ok & (ur <= np.percentile(ur[ok], 5)) if ok.any() else ok
        out["bluest_5pct_u_r"] = {
            "u_r_max": round(float(np.max(ur[blue])), 4) if blue.any() else None,
            "n": int(blue.sum()),
            "frac_poor_fit": round(float(np.mean(poor[blue])), 5) if blue.any() else None,
            "frac_poor_fit_rest": round(float(np.mean(poor[ok & ~blue])), 5)}

    # one band removed at random from every galaxy fitted with all its bands
    rng = np.random.default_rng([seed, 19])
    rows = np.flatnonzero(fitted)
    x1 = x[rows].copy()
    nb = lay.n_bands
    # one of each galaxy's present bands: uniform over all bands, then, where that band is
    # already missing (GALEX for most galaxies of galex_sdss_2mass), over the present ones
    band = rng.integers(0, nb, len(rows))
    present = ~lay.missing(x1)
    redo = ~present[np.arange(len(rows)), band]
    key = np.where(present[redo], rng.random((int(redo.sum()), nb)), -1.0)
    band[redo] = np.argmax(key, axis=1)
    x1[np.arange(len(rows)), band] = np.nan
    x1[np.arange(len(rows)), nb + band] = np.nan
    fitted1 = has_samples(post.flags(x1))
    removed = {"n": int(len(rows)), "frac_fitted": round(float(np.mean(fitted1)), 5)}
    if fitted1.any():
        iv1 = None if ivar is None else np.asarray(ivar)[rows][fitted1]
        poor1, finite = poor_fraction(x1[fitted1], iv1, seed + 1)
        removed.update(frac_finite=round(float(np.mean(finite)), 5),
                       frac_poor_fit=round(float(np.mean(poor1)), 5))
    out["one_band_removed"] = removed
    return out

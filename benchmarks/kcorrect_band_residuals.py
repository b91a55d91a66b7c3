"""Which bands the ten-band posterior fits worst on the kcorrect sample: per-band residuals of
the best posterior draw and each band's share of the poor fits' chi^2 (issue 20).

For every fittable galaxy the posterior is sampled at the given floor, the best of the draws
is found as catalog fits find it (:func:`~provabgs_sbi.inference.ppc.best_draw_chi2`), and
per band (where present) its chi^2 term and the residual data - model in magnitudes are
kept. Poor fits are those above the 99.9th percentile of chi^2 for their number of bands.

Usage::

    python benchmarks/kcorrect_band_residuals.py --flow flows/galex_sdss_2mass \\
        --emulator emulator/bc03_nebular_wide [--floor 0.06 | --floor 0.1,0.1,0.04,...] \\
        [--n-draws 100] [--out out/residuals.json]

Prints, for all galaxies, the bluest 5% in u - r and the poor fits: the poor-fit fraction,
per band the fraction of galaxies that have it, the median chi^2 term, the mean share of
each galaxy's chi^2 and the median residual (mag, data - model).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from provabgs_sbi.emulator import Emulator
from provabgs_sbi.flags import has_samples
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.inference.ppc import best_draw_chi2, chi2_poor_fit
from provabgs_sbi.io.kcorrect_bands import load_kcorrect_multiband
from provabgs_sbi.model.observation import flux_and_ivar, flux_chi2


def band_residuals(post, emulator, x, ivar, floor, n_draws: int = 100, seed: int = 0) -> dict:
    """Best-draw chi^2 terms and residuals per band.

    Parameters
    ----------
    post : Posterior
    emulator : Emulator
        Photometers in the posterior's bands (``with_filters``).
    x : ndarray of shape (N, 2 n_bands + 1)
        Fittable galaxies.
    ivar : ndarray of shape (N, n_bands)
        Flux inverse variances, nanomaggies^-2.
    floor : float or ndarray of shape (n_bands,)
        Systematic floor, mag.
    n_draws : int
    seed : int

    Returns
    -------
    dict
        ``chi2`` (N,), ``terms`` and ``resid_mag`` (N, n_bands; NaN where a band is
        missing), ``poor`` (N,) bool.
    """
    f = post.check_floor(floor)
    samples = post.sample(x, n_draws, seed=seed, strict=False, floor=f)
    chi2, best = best_draw_chi2(samples, x, emulator, ivar, n_draws=n_draws, sigma_sys=f)
    flux, iv = flux_and_ivar(x, ivar)
    missing = post.layout.missing(x)
    terms = np.where(missing, np.nan, flux_chi2(best, flux, iv, sigma_sys=f, per_band=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.where(missing, np.nan, -2.5 * np.log10(flux / best))
    limit = chi2_poor_fit((~missing).sum(axis=1))
    with np.errstate(invalid="ignore"):
        poor = chi2 > limit
    return {"chi2": chi2, "terms": terms, "resid_mag": resid, "poor": poor}


def summarise(res: dict, bands, select) -> dict:
    """Per-band numbers over the galaxies ``select`` (N,) bool."""
    terms, resid, chi2 = res["terms"][select], res["resid_mag"][select], res["chi2"][select]
    out = {"n": int(select.sum()), "frac_poor_fit": round(float(np.mean(res["poor"][select])), 5),
           "bands": {}}
    with np.errstate(invalid="ignore", divide="ignore"):
        share = terms / chi2[:, None]
    for j, b in enumerate(bands):
        has = np.isfinite(terms[:, j])
        out["bands"][b] = {
            "frac_present": round(float(np.mean(has)), 4),
            "median_chi2_term": round(float(np.median(terms[has, j])), 3) if has.any() else None,
            "mean_share_of_chi2": round(float(np.mean(share[has, j])), 3) if has.any() else None,
            "median_resid_mag": round(float(np.median(resid[has, j])), 4) if has.any() else None}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", required=True, help="a posterior of survey galex_sdss_2mass")
    ap.add_argument("--emulator", required=True, help="its emulator folder")
    ap.add_argument("--floor", default=None,
                    help="one value or one per band, comma-separated (default: the posterior's)")
    ap.add_argument("--n-draws", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON file for the numbers")
    args = ap.parse_args(argv)

    post = Posterior.load(args.flow)
    emulator = Emulator.load(args.emulator).with_filters(post.survey)
    cat = load_kcorrect_multiband().to_catalog(z_range=tuple(post.z_range))
    x, ivar = cat.to_x(), cat.ivar
    fitted = has_samples(post.flags(x))
    x, ivar = x[fitted], ivar[fitted]
    floor = (post.default_floor if args.floor is None
             else [float(v) for v in args.floor.split(",")])
    res = band_residuals(post, emulator, x, ivar, floor, args.n_draws, args.seed)
    bands = post.layout.bands
    mags = post.layout.mags(x)
    ur = mags[:, bands.index("u")] - mags[:, bands.index("r")]
    ok = np.isfinite(ur)
    blue = ok & (ur <= np.percentile(ur[ok], 5))
    report = {"flow": args.flow, "floor": np.atleast_1d(post.check_floor(floor)).tolist(),
              "n_draws": args.n_draws, "n_fitted": int(len(x)),
              "all": summarise(res, bands, np.ones(len(x), bool)),
              "bluest_5pct_u_r": summarise(res, bands, blue),
              "rest": summarise(res, bands, ok & ~blue),
              "poor_fits": summarise(res, bands, res["poor"])}
    for name in ("all", "bluest_5pct_u_r", "rest", "poor_fits"):
        r = report[name]
        print(f"\n{name}: {r['n']} galaxies, poor fits {100 * r['frac_poor_fit']:.2f}%")
        print(f"{'band':<5} {'present':>8} {'med chi2':>9} {'share':>6} {'resid mag':>10}")
        for b, v in r["bands"].items():
            if v["median_chi2_term"] is None:
                continue
            print(f"{b:<5} {v['frac_present']:>8.3f} {v['median_chi2_term']:>9.3f} "
                  f"{v['mean_share_of_chi2']:>6.3f} {v['median_resid_mag']:>+10.4f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

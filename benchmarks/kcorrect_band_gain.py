"""What GALEX and 2MASS add to SDSS ugriz: the kcorrect sample fitted with all ten bands and
with ugriz only, galaxy by galaxy (issue 20, item 5).

Both fits use the same ten-band mask-aware posterior (for ugriz only, the other bands are
masked: :meth:`PhotometryCatalog.only_bands`), so the difference is what the extra bands
add; with ``--sdss-flow`` the SDSS ugriz posterior's fit of the same galaxies is compared
too (another emulator and training set: agreement across models).

Usage::

    python benchmarks/kcorrect_band_gain.py --flow flows/galex_sdss_2mass \\
        --out-dir out/band_gain --figure docs/figures/kcorrect_band_gain.png \\
        [--sdss-flow flows/bc03_logbeta1]

Prints, per quantity (log M*, log SFR, diffuse and birth-cloud dust) and group of galaxies
(which extra bands they have), the median ratio of the 68% widths (all bands / ugriz) and
the median |pull| between the two fits; writes ``comparison.json`` into ``--out-dir``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provabgs_sbi.emulator import Emulator
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.catalog import load_sdss_sample
from provabgs_sbi.io.kcorrect_bands import load_kcorrect_multiband
from provabgs_sbi.workflows.compare_fits import compare_fits, plot_fit_comparison
from provabgs_sbi.workflows.fit import fit_catalog


def print_table(res: dict) -> None:
    la, lb = res["labels"]
    print(f"\n{lb} against {la}: {res['n_matched']:,} galaxies; groups {res['groups']}")
    print(f"{'quantity':<22} {'group':<28} {'n':>6} {'w_b/w_a':>8} {'|pull|':>7} "
          f"{'<1':>6} {'offset':>8}")
    for q, per in res["quantities"].items():
        for g, r in per.items():
            print(f"{q:<22} {g:<28} {r['n']:>6} {r['median_width_ratio']:>8.3f} "
                  f"{r['median_abs_pull']:>7.3f} {r['frac_abs_pull_lt_1']:>6.3f} "
                  f"{r['median_offset']:>8.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", required=True, help="the ten-band posterior folder")
    ap.add_argument("--emulator", help="emulator folder for the predictive check "
                                       "(default: none, no check)")
    ap.add_argument("--sdss-flow", help="also compare with this SDSS ugriz posterior's fit")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--n-samples", type=int, default=1000)
    args = ap.parse_args(argv)

    post = Posterior.load(args.flow)
    model = Emulator.load(args.emulator) if args.emulator else None
    cat = load_kcorrect_multiband().to_catalog(z_range=tuple(post.z_range))
    ugriz = ("u", "g", "r", "i", "z")
    fits = {}
    for name, c in (("all", cat), ("ugriz", cat.only_bands(ugriz))):
        fits[name] = fit_catalog(post, c, args.out_dir / f"{name}.h5", n_samples=args.n_samples,
                                 model=model, progress=True)
    res = compare_fits(fits["ugriz"], fits["all"], label_a="ugriz only", label_b="all bands")
    results = {"same_posterior": res}
    if args.sdss_flow:
        sdss_post = Posterior.load(args.sdss_flow)
        fits["sdss"] = fit_catalog(sdss_post, load_sdss_sample(z_range=tuple(sdss_post.z_range)),
                                   args.out_dir / "sdss_posterior.h5",
                                   n_samples=args.n_samples, progress=True)
        results["sdss_posterior"] = compare_fits(
            fits["sdss"], fits["all"], label_a=f"{Path(args.sdss_flow).name} (ugriz)",
            label_b="all bands")
    for r in results.values():
        print_table(r)
    if args.figure is not None:
        plot_fit_comparison(res, args.figure)
        print(f"wrote {args.figure}")
    out = {k: {kk: vv for kk, vv in r.items() if kk != "arrays"} for k, r in results.items()}
    (args.out_dir / "comparison.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out_dir / 'comparison.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

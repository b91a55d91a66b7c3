"""Per-pixel accuracy of emulators against the direct SED model, line pixels apart.

Usage:
    python benchmarks/emulator_pixel_errors.py emulator/bc03_nebular_wide \\
        emulator/bc03_nebular_wide_exactlines [--n 1000] [--seed 11]

Every emulator is evaluated on the same prior draws (default prior, bursts included,
0 < z <= 0.2) against the direct model of its SPS configuration (they must share one).
For each pixel the 99th percentile of |dL/L| over the draws is taken; the pixels are split
into emission-line pixels (where the ``<sps>_lines`` table is nonzero, when there is one)
and the rest, and per wavelength range the script prints the worst pixel, the median over
pixels, and how many pixels exceed 1%.
"""
import argparse

import numpy as np

from provabgs_sbi import Prior
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.emulator.lines import NebularLines
from provabgs_sbi.model.sed_model import SEDConfig, SEDModel
from provabgs_sbi.model.sps import LINE_SPLITS

RANGES = ((1000.0, 2500.0), (2500.0, 11000.0), (11000.0, 25000.0))


def pixel_p99(emu, model, theta, z, chunk=500):
    errs = []
    for s in range(0, len(theta), chunk):
        le = emu.spectrum(theta[s:s + chunk], z[s:s + chunk])[1]
        lm = model.spectrum(theta[s:s + chunk], z[s:s + chunk])[1]
        errs.append(np.abs(le / lm - 1.0))
    return np.percentile(np.concatenate(errs), 99, axis=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("emulators", nargs="+")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    emus = [Emulator.load(p) for p in args.emulators]
    sps = {e.info["sps"] for e in emus}
    if len(sps) != 1:
        raise SystemExit(f"the emulators model different SPS configurations: {sorted(sps)}")
    model = emus[0].burst_model
    (sps,) = sps
    is_line = np.zeros(len(model.wave), dtype=bool)
    if sps in LINE_SPLITS:
        cfg = SEDConfig(**emus[0].info["sed_config"])
        lines = NebularLines.from_model(SEDModel(LINE_SPLITS[sps][1], config=cfg))
        is_line[lines.pixels] = True
    rng = np.random.default_rng(args.seed)
    theta = Prior().sample(args.n, seed=rng)
    z = rng.uniform(0.0, 0.2, args.n)
    print(f"{args.n} prior draws (seed {args.seed}), 99th percentile of |dL/L| per pixel; "
          f"{is_line.sum()} emission-line pixels on the {len(model.wave)}-pixel grid")
    print(f"{'emulator':>40} {'range (A)':>13} {'pixels':>14} {'worst':>7} {'median':>7} "
          f"{'> 1%':>5}")
    for path, emu in zip(args.emulators, emus):
        p99 = pixel_p99(emu, model, theta, z)
        for lo, hi in RANGES:
            inside = (model.wave >= lo) & (model.wave <= hi)
            for name, sel in (("continuum", inside & ~is_line), ("lines", inside & is_line)):
                if not sel.any():
                    continue
                v = p99[sel]
                print(f"{path:>40} {f'{lo:.0f}-{hi:.0f}':>13} {f'{name} ({sel.sum()})':>14} "
                      f"{100 * v.max():6.2f}% {100 * np.median(v):6.2f}% "
                      f"{int(np.sum(v > 0.01)):5d}")
        worst = np.argsort(p99 * ((model.wave >= 2500) & (model.wave <= 11000)))[::-1][:5]
        print(f"{'':>40} worst pixels of 2500-11000 A: "
              + ", ".join(f"{model.wave[k]:.0f} A {100 * p99[k]:.2f}%"
                          + (" (line)" if is_line[k] else "") for k in worst))


if __name__ == "__main__":
    main()

"""Emulator versus the direct SED model: SEDs per second at batch 10^4, side by side.

Usage: python benchmarks/bench_emulator.py [--emulator emulator/bc03] [--n 10000] [--repeats 5]

Times, in one run on the same inputs (prior draws, 0.01 < z < 0.2): rest-frame spectra and
ugriz photometry of the direct model (float64 numpy) and of the emulator (numpy float64 and
TensorFlow float32 paths), plus the emulator with every burst switched off (the cost of
reading the burst from the SSP table) and, for an emulator with exact emission lines, the
lines alone. Prints medians, spreads and ratios; names the GPU when TensorFlow sees one.
"""
import argparse

import numpy as np

from _timing import timed
from provabgs_sbi import Prior
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.io.paths import EMULATOR_ROOT
from provabgs_sbi.model import cosmology



def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--emulator", default=str(EMULATOR_ROOT / "bc03"))
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                       for g in gpus) or "CPU only"
    emu = Emulator.load(args.emulator)
    model = emu.burst_model
    theta = Prior().sample(args.n, seed=0)
    z = np.random.default_rng(0).uniform(0.01, 0.2, args.n)
    no_burst = theta.copy()
    no_burst[:, 5] = 0.0
    cases = [
        ("direct model, spectra", lambda: model.spectrum(theta, z)),
        ("emulator numpy, spectra", lambda: emu.spectrum(theta, z)),
        ("emulator TF, spectra", lambda: emu.spectrum(theta, z, backend="tf")),
        ("direct model, ugriz", lambda: model.photometry(theta, z)),
        ("emulator numpy, ugriz", lambda: emu.photometry(theta, z)),
        ("emulator TF, ugriz", lambda: emu.photometry(theta, z, backend="tf")),
        ("emulator numpy, ugriz, no bursts", lambda: emu.photometry(no_burst, z)),
    ]
    if emu.lines is not None:          # an emulator with exact emission lines
        t_age = cosmology.age_gyr(z)
        cases.append(("exact lines alone (numpy)", lambda: emu.lines.luminosity(theta, t_age)))
    print(f"batch {args.n}, {args.repeats} timed runs after a warm-up; device: {device}; "
          f"{len(emu.wave)} wavelengths")
    rates = {}
    for name, fn in cases:
        t = timed(fn, args.repeats)
        r = args.n / t
        rates[name] = np.median(r)
        print(f"{name:>34}: median {np.median(r):9.0f} SEDs/s  (min {r.min():.0f}, max {r.max():.0f})")
    for kind in ("spectra", "ugriz"):
        base = rates[f"direct model, {kind}"]
        for path in ("numpy", "TF"):
            print(f"speed-up {kind:>7}, emulator {path:>5} / direct: "
                  f"{rates[f'emulator {path}, {kind}'] / base:5.1f}x")


if __name__ == "__main__":
    main()

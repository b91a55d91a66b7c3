"""ugriz SEDs per second of the direct SED model, batch of 10^4 (after the table is loaded).

Usage: python benchmarks/bench_sed.py [--n 10000] [--repeats 5]
Prints the median and spread of the throughput for float64 (the default) and float32.
"""
import argparse
import time

import numpy as np

from provabgs_sbi import Prior, SEDModel


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    theta = Prior().sample(args.n, seed=0)
    z = np.random.default_rng(0).uniform(0.01, 0.2, args.n)
    print(f"batch {args.n}, {args.repeats} timed runs after a warm-up, 0.01 < z < 0.2")
    for dtype in (np.float64, np.float32):
        model = SEDModel("bc03", dtype=dtype)
        model.photometry(theta, z)  # warm-up: redshift-node weights, caches
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model.photometry(theta, z)
            times.append(time.perf_counter() - t0)
        rates = args.n / np.array(times)
        print(f"{np.dtype(dtype).name:>8}: median {np.median(rates):8.0f} ugriz SEDs/s "
              f"(min {rates.min():.0f}, max {rates.max():.0f}; {len(model.wave)} wavelengths)")


if __name__ == "__main__":
    main()

"""Time to draw 10^4 posterior samples for one observation with ConditionalFlow presets.

Untrained weights (timing does not depend on them): a flow over 11 parameters (the
warped PROVABGS parameters) conditioned on 11 data (SEDflow's ugriz fluxes, their
uncertainties and the redshift). Each preset is warmed up once (XLA compilation), then
timed 5 times; the median is printed.

Usage::

    PYTHONPATH=. python benchmarks/bench_flow_sampling.py [--presets default sedflow-paper]
        [--n 10000] [--repeats 5] [--d-theta 11] [--d-x 11]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig


def time_preset(name: str, n: int, repeats: int, d_theta: int, d_x: int) -> dict:
    config = FlowConfig.preset(name)
    flow = ConditionalFlow(config, low=np.zeros(d_theta), high=np.ones(d_theta),
                           y_mean=np.zeros(d_theta), y_std=np.ones(d_theta),
                           x_mean=np.zeros(d_x), x_std=np.ones(d_x))
    x_obs = np.random.default_rng(0).normal(size=(1, d_x))
    t0 = time.perf_counter()
    flow.sample(x_obs, n, seed=0)
    warmup = time.perf_counter() - t0
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        flow.sample(x_obs, n, seed=k + 1)
        times.append(time.perf_counter() - t0)
    return dict(preset=name, warmup=warmup, median=float(np.median(times)),
                min=float(np.min(times)), max=float(np.max(times)),
                n_params=int(sum(w.size for w in flow.get_weights())), config=config)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["default", "sedflow-paper"],
                    choices=FlowConfig.PRESETS)
    ap.add_argument("--n", type=int, default=10_000, help="samples per observation")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--d-theta", type=int, default=11)
    ap.add_argument("--d-x", type=int, default=11)
    args = ap.parse_args(argv)

    print(f"{args.n} samples for one observation, d_theta={args.d_theta}, d_x={args.d_x}, "
          f"{os.cpu_count()} CPUs; median of {args.repeats} after one warm-up")
    print(f"{'preset':<15} {'blocks':>6} {'hidden':>11} {'weights':>9} {'warm-up s':>10} "
          f"{'median s':>9} {'min s':>7} {'max s':>7}")
    for name in args.presets:
        r = time_preset(name, args.n, args.repeats, args.d_theta, args.d_x)
        c = r["config"]
        hidden = "x".join(str(h) for h in c.hidden_units)
        print(f"{name:<15} {c.n_transforms:>6} {hidden:>11} {r['n_params']:>9} "
              f"{r['warmup']:>10.2f} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Posterior sampling speed: the committed default flow against a sedflow-paper MAF.

Usage: python benchmarks/bench_posterior.py [--flow FOLDER] [--repeats 5]   (default: the default posterior)
       [--n-gal 1000] [--n-gal-paper 100]

Side by side in one run, on real x vectors (the first valid galaxies of the SDSS sample):

1. 10^4 posterior samples of the 12 physical parameters for one galaxy
   (``Posterior.sample``: flags, flow, inverse warp), median of ``--repeats`` runs after a
   warm-up (XLA compilation);
2. throughput for ``--n-gal`` galaxies x 1,000 samples (median of 3 runs).

The sedflow-paper MAF (15 blocks of 2 x 500 tanh units) is built with the default flow's
box and normalisation but untrained weights: the time of a flow pass does not depend on
the weight values. It draws ~1,000 samples/s on this CPU, so its throughput is measured on
``--n-gal-paper`` galaxies (default 100; ``--n-gal-paper 1000`` for the full set, ~20 min).
When the default is a mixture of flows, its first member alone is timed too. The default
is timed again with TFP's own MAF forward maps (``sequential_sampling = False``: d MADE
passes per block, as before the sequential sampler), and ``--compare FOLDER ...`` times
other posteriors (e.g. the previous default) in the same run.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from _timing import timed
from provabgs_sbi import Posterior
from provabgs_sbi.io.catalog import load_sdss_sample
from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
from provabgs_sbi.io.paths import DEFAULT_FLOW


def first_member(post: Posterior):
    """The flow itself, or an ensemble's first member."""
    return getattr(post.flow, "members", [post.flow])[0]


def paper_posterior(post: Posterior) -> Posterior:
    f = first_member(post)
    flow = ConditionalFlow(FlowConfig.preset("sedflow-paper"), low=f.low, high=f.high,
                           y_mean=f._y_mean, y_std=f._y_std, x_mean=f._x_mean, x_std=f._x_std)
    return Posterior(flow, post.prior, post.z_range, post.mag_range, post.noise, post.info)



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", default=str(DEFAULT_FLOW))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-gal", type=int, default=1000)
    ap.add_argument("--n-gal-paper", type=int, default=100)
    ap.add_argument("--compare", nargs="*", default=[], metavar="FOLDER",
                    help="other posterior folders timed in the same run (e.g. the previous default)")
    args = ap.parse_args(argv)

    post = Posterior.load(args.flow)
    cat = load_sdss_sample(z_range=tuple(post.z_range))
    x = cat.to_x()[cat.valid]
    x = x[post.flags(x) == 0][:max(args.n_gal, args.n_gal_paper)]
    flows = {"default (committed)": (post, args.n_gal), "sedflow-paper": (paper_posterior(post),
                                                                          args.n_gal_paper)}
    if hasattr(post.flow, "members"):
        one = Posterior(first_member(post), post.prior, post.z_range, post.mag_range,
                        post.noise, post.info)
        flows["its member 0 alone"] = (one, args.n_gal)
    # The same flow drawn with TFP's MAF forward maps (d MADE passes per block), as every
    # release before the sequential sampler did.
    before = Posterior.load(args.flow)
    for member in getattr(before.flow, "members", [before.flow]):
        if hasattr(member._net, "sequential_sampling"):
            member._net.sequential_sampling = False
    flows["default, TFP forward"] = (before, args.n_gal)
    if args.compare:
        for folder in args.compare:
            flows[Path(folder).name] = (Posterior.load(folder), args.n_gal)
    print(f"{os.cpu_count()} CPUs; one galaxy: median of {args.repeats} after a warm-up; "
          "many galaxies: median of 3")
    print(f"{'flow':<22} {'1e4 samples, 1 gal [s]':>24} {'(min-max)':>13} "
          f"{'galaxies x 1000':>16} {'gal/s':>8} {'ms/gal':>8}")
    single = {}
    for name, (p, n_gal) in flows.items():
        t1 = timed(lambda: p.sample(x[:1], 10_000, seed=0), args.repeats)
        tn = timed(lambda: p.sample(x[:n_gal], 1000, seed=0), 3)
        single[name] = np.median(t1)
        print(f"{name:<22} {np.median(t1):24.3f} {f'({t1.min():.2f}-{t1.max():.2f})':>13} "
              f"{n_gal:16d} {n_gal / np.median(tn):8.1f} {np.median(tn) / n_gal * 1e3:8.1f}")
    a, b = single["default (committed)"], single["sedflow-paper"]
    print(f"ratio sedflow-paper / default, 1e4 samples of one galaxy: {b / a:.1f}x")
    print("ratio TFP forward / sequential sampler, same flow, 1e4 samples of one galaxy: "
          f"{single['default, TFP forward'] / a:.2f}x")
    for folder in args.compare:
        print(f"ratio {Path(folder).name} / default, 1e4 samples of one galaxy: "
              f"{single[Path(folder).name] / a:.2f}x")
    if "its member 0 alone" in single:
        print("ratio default / its member 0 alone, 1e4 samples of one galaxy: "
              f"{a / single['its member 0 alone']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Posterior sampling speed by flow family: the committed default MAF against coupling flows.

Usage: python benchmarks/bench_flow_family.py [--flow FOLDER] [--repeats 5] [--n-gal 1000]
       [--blocks 6 8 10] [--widths 128 256] [--transforms affine spline]

Side by side in one run, on real x vectors (the first valid galaxies of the SDSS sample),
through ``Posterior.sample`` (flags, flow, inverse warp), as ``bench_posterior.py``:

1. 10^4 posterior samples for one galaxy, median of ``--repeats`` runs after a warm-up
   (XLA compilation);
2. ``--n-gal`` galaxies x 1,000 samples, median of 3 runs without a warm-up (the
   1-galaxy runs compiled the full 16,384-row chunks; a first run that compiles the last
   partial chunk's shape is the one the median drops; a warm-up would cost a MAF mixture
   minutes).

Flows: the committed default (``--flow``, a mixture of MAFs; also its member 0 alone) and
coupling flows (``FlowConfig.family="coupling"``) of ``--blocks`` blocks with MLPs of 2 x
``--widths`` ReLU units, affine (RealNVP) and spline (coupling NSF, 8 bins), built with the
default flow's box and normalisation but untrained weights: the time of a flow pass does
not depend on the weight values. The target of issue 19 is 10^4 samples of one galaxy in
<= 0.1 s. The load average is printed before and after: on a shared machine the times of
one run are comparable with each other, less so with another run's.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from _timing import timed
from provabgs_sbi import Posterior
from provabgs_sbi.io.catalog import load_sdss_sample
from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
from provabgs_sbi.io.paths import DEFAULT_FLOW


def first_member(post: Posterior):
    """The flow itself, or an ensemble's first member."""
    return getattr(post.flow, "members", [post.flow])[0]


def with_flow(post: Posterior, flow) -> Posterior:
    """``post`` with another flow (same prior, ranges, noise model)."""
    return Posterior(flow, post.prior, post.z_range, post.mag_range, post.noise, post.info)


def coupling_posterior(post: Posterior, n_blocks: int, width: int, transform: str) -> Posterior:
    """An untrained coupling flow of the given size with ``post``'s box and normalisation."""
    f = first_member(post)
    config = FlowConfig.preset("default", family="coupling", n_transforms=n_blocks,
                               hidden_units=(width, width), transform=transform)
    flow = ConditionalFlow(config, low=f.low, high=f.high, y_mean=f._y_mean, y_std=f._y_std,
                           x_mean=f._x_mean, x_std=f._x_std)
    return with_flow(post, flow)


def n_weights(flow) -> int:
    """Trainable weights of a flow or of all members of a mixture."""
    return sum(w.size for m in getattr(flow, "members", [flow]) for w in m.get_weights())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", default=str(DEFAULT_FLOW))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-gal", type=int, default=1000)
    ap.add_argument("--blocks", type=int, nargs="+", default=[6, 8, 10])
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--transforms", nargs="+", default=["affine", "spline"],
                    choices=["affine", "spline"])
    args = ap.parse_args(argv)

    post = Posterior.load(args.flow)
    cat = load_sdss_sample(z_range=tuple(post.z_range))
    x = cat.to_x()[cat.valid]
    x = x[post.flags(x) == 0][:args.n_gal]
    flows = {"default MAF (committed)": post}
    if hasattr(post.flow, "members"):
        flows["its member 0 alone"] = with_flow(post, first_member(post))
    for transform in args.transforms:
        for width in args.widths:
            for n_blocks in args.blocks:
                name = f"coupling {transform} {n_blocks}x(2x{width})"
                flows[name] = coupling_posterior(post, n_blocks, width, transform)

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; one galaxy: median "
          f"of {args.repeats} after a warm-up; {len(x)} galaxies x 1000: median of 3 "
          "(no warm-up)")
    print(f"{'flow':<30} {'weights':>8} {'1e4 samples, 1 gal [s]':>23} {'(min-max)':>13} "
          f"{'gal/s':>8} {'ms/gal':>7} {'vs default':>10}")
    single = {}
    for name, p in flows.items():
        t1 = timed(lambda: p.sample(x[:1], 10_000, seed=0), args.repeats)
        tn = timed(lambda: p.sample(x, 1000, seed=0), 3, warmup=False)
        single[name] = float(np.median(t1))
        ratio = single["default MAF (committed)"] / single[name]
        print(f"{name:<30} {n_weights(p.flow):8d} {single[name]:23.3f} "
              f"{f'({t1.min():.2f}-{t1.max():.2f})':>13} {len(x) / np.median(tn):8.1f} "
              f"{np.median(tn) / len(x) * 1e3:7.2f} {ratio:9.1f}x", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

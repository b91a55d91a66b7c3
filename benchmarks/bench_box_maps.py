"""How far the flow is from an exact posterior, for each map from the prior box.

On sbibm's ``gaussian_linear_uniform`` the posterior is known in closed form (a product of
normals cut to the box), so the expected KL divergence of the trained flow from it is the
held-out negative log likelihood of the flow minus that of the exact posterior, both
averaged over 20,000 fresh (theta, x) pairs from the prior and simulator. This needs no
classifier (unlike C2ST) and its Monte Carlo error is ~0.01 nats. The same difference on
the first 20,000 training simulations ("KL train") shows overfitting: it is negative when
the flow fits its own simulations better than the exact posterior does.

Usage::

    PYTHONPATH=. python benchmarks/bench_box_maps.py
    PYTHONPATH=. python benchmarks/bench_box_maps.py --sims 10000 --maps plateau probit --seeds 0 1 2
    PYTHONPATH=. python benchmarks/bench_box_maps.py --sims 100000 --maps plateau \
        --preset sbibm-nsf --set lr_patience=3 batch_size=256 learning_rate=0.001 weight_decay=3

Trains one flow per (simulations, map, seed) with the ``--preset`` (default ``sbibm-npe``)
and any other FlowConfig fields (``--set``): about a minute each at 10^4 simulations and
several at 10^5 on a 2-core CPU (spline flows with strong weight decay: up to half an hour).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from provabgs_sbi.inference.flows import BOX_TRANSFORMS, ConditionalFlow, FlowConfig
from sbibm_tasks import (PRESETS, flow_config, gaussian_linear_uniform_log_posterior,
                         get_task)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", nargs="+", type=int, default=[10_000, 100_000])
    ap.add_argument("--maps", nargs="+", default=list(BOX_TRANSFORMS), choices=BOX_TRANSFORMS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--n-test", type=int, default=20_000)
    ap.add_argument("--preset", default="sbibm-npe", choices=PRESETS)
    ap.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="other FlowConfig fields, e.g. weight_decay=0.3 lr_patience=3")
    args = ap.parse_args(argv)
    extra = FlowConfig.parse_overrides(args.set)

    task = get_task("gaussian_linear_uniform")
    theta_test = task.sample_prior(args.n_test, seed=1_000)
    x_test = task.simulate(theta_test, seed=1_001)
    exact_nll = -float(gaussian_linear_uniform_log_posterior(theta_test, x_test).mean())
    print(f"exact posterior: held-out NLL {exact_nll:.4f} nats ({args.n_test} pairs)")
    print(f"{args.preset} {extra}")
    print(f"{'sims':>8} {'map':>8} {'seed':>4} {'NLL':>8} {'KL':>7} {'KL train':>8} "
          f"{'epochs':>6} {'best':>4} {'s':>6}")
    kl = {}
    for n in args.sims:
        theta = task.sample_prior(n, seed=0)
        x = task.simulate(theta, seed=1)
        for kind in args.maps:
            for seed in args.seeds:
                t0 = time.perf_counter()
                cfg = flow_config(args.preset, **{**extra, "seed": seed,
                                                        "box_transform": kind})
                flow = ConditionalFlow.fit(theta, x, task.low, task.high, config=cfg,
                                           progress=False)
                nll = -float(flow.log_prob(theta_test, x_test).mean())
                m = min(n, args.n_test)
                kl_train = float((gaussian_linear_uniform_log_posterior(theta[:m], x[:m])
                                  - flow.log_prob(theta[:m], x[:m])).mean())
                kl.setdefault((n, kind), []).append(nll - exact_nll)
                print(f"{n:>8} {kind:>8} {seed:>4} {nll:8.4f} {nll - exact_nll:7.4f} "
                      f"{kl_train:8.4f} {len(flow.history):>6} {flow.best_epoch or 0:>4} "
                      f"{time.perf_counter() - t0:6.0f}", flush=True)
    if len(args.seeds) > 1:
        print("median KL over seeds (min-max):")
        for (n, kind), v in kl.items():
            print(f"{n:>8} {kind:>8} {np.median(v):.4f} ({min(v):.4f}-{max(v):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

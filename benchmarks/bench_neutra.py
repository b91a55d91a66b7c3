"""Plain zeus against flow-preconditioned zeus (NeuTra), side by side on the same galaxies.

Usage: python benchmarks/bench_neutra.py [--rows 0,3] [--steps 2000] [--burn-in 500]
       python benchmarks/bench_neutra.py --map-only

First, the flow's noise-to-parameter map per 15-point call (what zeus evaluates with 30
walkers): :class:`provabgs_sbi.experimental.neutra.FlowMap` (numpy float64) against
:meth:`ConditionalFlow.push_forward` (XLA-compiled TensorFlow), median of ``--repeats``.

For each test galaxy of the validation set (``<cache>/validation/test_default_1000_s0.h5``,
written by ``provabgs-sbi validate``; magnitude likelihood, as the galaxies were simulated)
both samplers run the same number of iterations with the committed emulator, and the script
prints per sampler: milliseconds per iteration, calls of the target per iteration (the
flow's share of the time), the largest integrated autocorrelation time tau and split-R-hat
over the 11 warped parameters, and the CPU minutes that ``50 x max tau`` post-burn-in
iterations (the convergence criterion of :func:`provabgs_sbi.baselines.mcmc.convergence_report`)
would take at that speed. tau estimated from a short chain is a lower bound (it grows with
the chain until the chain is many tau long), so the estimate of the time is one as well.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _timing import timed
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.inference.ensemble import load_flow
from provabgs_sbi.baselines.mcmc import convergence_report, run_mcmc
from provabgs_sbi.baselines.zeus_state import blas_limit
from provabgs_sbi.experimental.neutra import FlowMap, preconditioning_flow
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.io.paths import EMULATOR_ROOT, FLOW_ROOT
from provabgs_sbi.workflows.validate import test_set
from provabgs_sbi.inference.training_set import load_training_set


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", default=str(FLOW_ROOT / "bc03" / "flow"))
    ap.add_argument("--emulator", default=str(EMULATOR_ROOT / "bc03"))
    ap.add_argument("--test-set", help="training-set file of test galaxies (default: the 1,000 "
                                       "that 'provabgs-sbi validate' draws for the flow's "
                                       "posterior, made and cached if missing)")
    ap.add_argument("--rows", default="0,3")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--burn-in", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--map-only", action="store_true", help="only time the flow's map")
    ap.add_argument("--windows", default="",
                    help="also print max tau and R-hat of iterations burn-in+1 .. m for each "
                         "m of this comma-separated list (e.g. 4000,6000,8000)")
    ap.add_argument("--samplers", default="plain,neutra")
    args = ap.parse_args(argv)

    emu = Emulator.load(args.emulator)
    flow = load_flow(args.flow)
    test_path = args.test_set
    if test_path is None:
        test_path, _ = test_set(Posterior.load(Path(args.flow).parent), emu, n_test=1000, seed=0)
    _, _, x, _ = load_training_set(test_path)
    rows = [int(r) for r in args.rows.split(",")]
    member = preconditioning_flow(flow)
    eps = np.random.default_rng(0).standard_normal((15, member.d_theta))
    fmap = FlowMap(member, x[rows[0]])
    with blas_limit(1):                                    # as inside run_mcmc
        t_np = np.median(timed(lambda: fmap.forward(eps), args.repeats))
        t_tf = np.median(timed(lambda: member.push_forward(eps, x[rows[0]]), args.repeats))
    print(f"flow map, 15 points: numpy FlowMap {1e3 * t_np:.2f} ms, TF push_forward "
          f"{1e3 * t_tf:.2f} ms (median of {args.repeats})", flush=True)
    if args.map_only:
        return 0
    print(f"{'row':>4} {'sampler':<8} {'ms/iter':>8} {'calls/iter':>10} {'flow %':>7} "
          f"{'max tau':>8} {'max R-hat':>9} {'min to 50 tau':>13}")
    for r in rows:
        for name in args.samplers.split(","):
            pre = {"plain": None, "neutra": flow}[name]
            res = run_mcmc(x[r], emu, n_steps=args.steps, burn_in=args.burn_in, seed=r,
                           likelihood="mag", progress=False, precondition=pre,
                           compute_derived=False)
            t = res.timing
            per_iter = t["sampling_s"] / args.steps
            tau = float(np.max(res.convergence["tau"]))
            rhat = float(np.max(res.convergence["rhat"]))
            minutes = (args.burn_in + 50 * tau) * per_iter / 60
            print(f"{r:>4} {name:<8} {1e3 * per_iter:>8.1f} "
                  f"{t['n_model_calls'] / args.steps:>10.1f} "
                  f"{100 * t['flow_s'] / t['sampling_s']:>7.0f} {tau:>8.0f} {rhat:>9.2f} "
                  f"{minutes:>13.1f}", flush=True)
            for m in [int(v) for v in args.windows.split(",") if v]:
                rep = convergence_report(res.chain[args.burn_in:m])
                print(f"{'':>4} {'':<8} iterations {args.burn_in + 1}-{m}: max tau "
                      f"{np.max(rep['tau']):.0f}, max R-hat {np.max(rep['rhat']):.3f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

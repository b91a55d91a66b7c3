"""SEDflow's timing table, measured in one run: direct SED model, emulator, MCMC, ANPE.

Usage: python benchmarks/bench_timing.py [--mcmc-steps 10000] [--repeats 5]

Rows (one SDSS-like galaxy: the first test galaxy of the validation set, or a prior draw):

- direct SED model, one call of 15 parameter sets (what zeus evaluates per call with 30
  walkers) and of 1 set;
- emulator, the same calls (``Emulator.photometry``, and the fixed-redshift evaluator in
  float32 and in float64, the one the MCMC uses: :func:`provabgs_sbi.baselines.mcmc.sampling_model`);
- MCMC per galaxy: zeus with 30 walkers, ``--mcmc-steps`` iterations (default 10,000 as the
  paper), the emulator as the model; one run (it takes minutes);
- ANPE per galaxy: 10^4 posterior samples from the committed flow, median of ``--repeats``;
- importance-sampled reference per galaxy (:mod:`provabgs_sbi.baselines.importance`): 10^5 flow
  proposals weighted by the emulator's posterior density (one run).

Prints the table and the ratios MCMC / ANPE and direct / emulator.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _timing import timed
from provabgs_sbi import Posterior, Prior
from provabgs_sbi.emulator import Emulator
from provabgs_sbi.baselines.importance import importance_sample
from provabgs_sbi.baselines.mcmc import run_mcmc, sampling_model
from provabgs_sbi.io.paths import DEFAULT_FLOW
from provabgs_sbi.model.photometry import nanomaggies_to_mag
from provabgs_sbi.inference.posterior import emulator_of


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flow", default=str(DEFAULT_FLOW))
    ap.add_argument("--emulator", help="default: the flow's own emulator")
    ap.add_argument("--mcmc-steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    emu = Emulator.load(args.emulator or emulator_of(args.flow))
    post = Posterior.load(args.flow)
    model = emu.burst_model.__class__(emu.info["sps"])      # the direct model, default grid
    theta = Prior().sample(15, seed=1)
    z = 0.08
    flux = emu.photometry(theta[:1], z)[0]
    x = np.concatenate([nanomaggies_to_mag(flux), [0.08, 0.02, 0.02, 0.02, 0.03], [z]])
    fixed32 = emu.at_redshift(z)
    fixed = sampling_model(emu, z)
    zz = np.full(15, z)
    rows = []
    n_calls = 200
    for name, fn in (("direct SED model, 1 galaxy", lambda: model.photometry(theta[:1], z)),
                     ("direct SED model, 15 galaxies", lambda: model.photometry(theta, zz)),
                     ("emulator, 1 galaxy", lambda: emu.photometry(theta[:1], z)),
                     ("emulator, 15 galaxies", lambda: emu.photometry(theta, zz)),
                     ("emulator fixed-z float32, 15", lambda: fixed32.photometry(theta)),
                     ("emulator fixed-z float64 (MCMC), 15", lambda: fixed.photometry(theta))):
        ten = timed(lambda: [fn() for _ in range(10)], max(3, n_calls // 40))
        rows.append((name, float(np.median(ten)) / 10))
    t_anpe = float(np.median(timed(lambda: post.sample(x[None], 10_000, seed=0), args.repeats)))
    t0 = time.perf_counter()
    res = run_mcmc(x, emu, n_steps=args.mcmc_steps, burn_in=args.mcmc_steps // 5, seed=0,
                   progress=False, compute_derived=False)
    t_mcmc = time.perf_counter() - t0
    imp = importance_sample(x, post, emu, target_ess=1e12, batch=100_000,
                            max_proposals=100_000, seed=0)
    print(f"{os.cpu_count()} CPUs; z = {z}; per-call rows: median of repeated calls")
    print(f"{'what':<38} {'seconds':>12}")
    for name, t in rows:
        print(f"{name + ' (per call)':<38} {t:12.5f}")
    print(f"{f'MCMC per galaxy ({args.mcmc_steps} steps, 30 walkers)':<38} {t_mcmc:12.1f}   "
          f"({res.timing['n_model_calls']} model calls, {res.timing['s_per_call'] * 1e3:.2f} ms "
          f"each; converged: {res.convergence['converged']})")
    print(f"{'ANPE per galaxy (10^4 samples)':<38} {t_anpe:12.3f}")
    print(f"{'importance sampling (10^5 proposals)':<38} {imp.timing['total_s']:12.1f}   "
          f"(ESS {imp.ess:.0f}, Pareto k {imp.pareto_k:.2f}; emulator "
          f"{imp.timing['model_s']:.1f} s, flow {imp.timing['flow_s']:.1f} s)")
    print(f"ratio MCMC / ANPE: {t_mcmc / t_anpe:,.0f}x")
    print(f"ratio direct / emulator, 15 galaxies per call: {rows[1][1] / rows[3][1]:.1f}x "
          f"(fixed-z evaluator: {rows[1][1] / rows[4][1]:.1f}x float32, "
          f"{rows[1][1] / rows[5][1]:.1f}x float64 as the MCMC uses)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

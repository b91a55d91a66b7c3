"""Peer check: C2ST of ConditionalFlow (amortized NPE) on sbibm tasks vs published NPE.

For each task and simulation budget, one flow is trained on prior draws and simulations,
then 10,000 posterior samples per sbibm observation are scored against sbibm's reference
posterior samples with sbibm's C2ST (0.5 is perfect). The table lists the mean over the
scored observations next to the NPE numbers of Lueckmann et al. (2021).

Usage::

    PYTHONPATH=. python benchmarks/bench_sbibm.py       # the default fit, every task
    PYTHONPATH=. python benchmarks/bench_sbibm.py --tasks two_moons --sims 1000 10000 \\
        --observations 1 2 3 --preset sbibm-npe --json out/sbibm.json
    PYTHONPATH=. python benchmarks/bench_sbibm.py --tasks two_moons --preset sbibm-nsf \\
        --box-transform plateau --set lr_patience=3 --members 3
    PYTHONPATH=. python benchmarks/bench_sbibm.py --tasks gaussian_linear_uniform \\
        --box-transform plateau --members 5 --set lr_patience=3 weight_decay=0.3

Takes hours for the full grid on a 2-core CPU (C2ST's MLP classifiers dominate below
10^5 simulations); ``--observations`` scores fewer observations.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from provabgs_sbi.inference.flows import BOX_TRANSFORMS, FlowConfig
from sbibm_tasks import PRESETS, PUBLISHED_NPE_C2ST, TASKS, flow_config, run_task


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--sims", nargs="+", type=int, default=[1_000, 10_000, 100_000],
                    help="simulation budgets")
    ap.add_argument("--observations", nargs="+", type=int, default=list(range(1, 11)),
                    help="sbibm observation numbers to score (1..10)")
    ap.add_argument("--preset", default="auto", choices=("auto",) + PRESETS,
                    help="'auto' (default): ConditionalFlow.fit's default procedure, as a "
                         "user calls it; or a FlowConfig preset, e.g. sbibm-npe (sbibm's MAF)")
    ap.add_argument("--box-transform", default=None, choices=BOX_TRANSFORMS,
                    help="map from the prior box to the flow's space (default: the preset's)")
    ap.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="other FlowConfig fields, e.g. lr_patience=3 transform=spline "
                         "(values read as JSON, else as text)")
    ap.add_argument("--members", type=int, default=1,
                    help="train this many flows and score their equal-weight mixture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="C2ST folds fitted in parallel")
    ap.add_argument("--json", type=Path, default=None, help="also write results here")
    ap.add_argument("--save-dir", type=Path, default=None,
                    help="save each trained flow to SAVE_DIR/<task>_<n_sim>")
    ap.add_argument("--progress", action="store_true", help="show training progress bars")
    args = ap.parse_args(argv)

    extra = {} if args.box_transform is None else {"box_transform": args.box_transform}
    try:
        extra.update(FlowConfig.parse_overrides(args.set))
        if args.preset == "auto":
            if extra:
                ap.error("--set/--box-transform need a preset: 'auto' takes no settings")
            config = "auto"
        else:
            config = flow_config(args.preset, seed=args.seed, **extra)  # before training
    except ValueError as err:
        ap.error(str(err))

    rows = []
    for n_sim in args.sims:
        for task in args.tasks:
            print(f"[{time.strftime('%H:%M:%S')}] {task} n={n_sim}: training {args.preset} ...",
                  flush=True)

            def report(i, score, task=task, n_sim=n_sim):
                print(f"    {task} n={n_sim} observation {i}: C2ST {score:.3f}", flush=True)

            res = run_task(task, n_sim, config, seed=args.seed, observations=args.observations,
                           progress=args.progress, n_jobs=args.jobs, on_score=report,
                           n_members=args.members)
            row = dict(task=task, n_simulations=n_sim, observations=list(res.observations),
                       c2st=[round(float(v), 4) for v in res.c2st], c2st_mean=res.c2st_mean,
                       published_npe=PUBLISHED_NPE_C2ST.get(task, {}).get(n_sim),
                       epochs=res.epochs, best_val_loss=getattr(res.flow, "best_val_loss", None),
                       train_seconds=res.train_seconds, score_seconds=res.score_seconds,
                       preset=args.preset, members=args.members,
                       config=(res.flow.config.to_dict() if args.members == 1
                               else [f.config.to_dict() for f in res.flow.members]))
            rows.append(row)
            if args.save_dir is not None:
                res.flow.save(args.save_dir / f"{task}_{n_sim}")
            print(f"    -> mean C2ST {res.c2st_mean:.3f} over {len(res.observations)} obs "
                  f"(published NPE {row['published_npe']}); {res.epochs} epochs, "
                  f"train {res.train_seconds:.0f} s, sample+score {res.score_seconds:.0f} s",
                  flush=True)
            if args.json is not None:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(rows, indent=1))

    print()
    print(f"{'task':<25} {'n_sim':>7} {'n_obs':>5} {'C2ST':>6} {'NPE (paper)':>11} "
          f"{'epochs':>6} {'train s':>8} {'score s':>8}")
    for r in rows:
        pub = "-" if r["published_npe"] is None else f"{r['published_npe']:.3f}"
        print(f"{r['task']:<25} {r['n_simulations']:>7} {len(r['observations']):>5} "
              f"{r['c2st_mean']:>6.3f} {pub:>11} {r['epochs']:>6} {r['train_seconds']:>8.0f} "
              f"{r['score_seconds']:>8.0f}")
    worse = [r for r in rows if r["published_npe"] is not None
             and r["c2st_mean"] > r["published_npe"] + 0.02]
    if worse:
        print("\nworse than published NPE by > 0.02:", ", ".join(
            f"{r['task']}@{r['n_simulations']}" for r in worse))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Input whitening against plain standardisation: one flow architecture, trained from scratch
on the same mask-aware draws for the same epochs, side by side, then scored on held-out
galaxies per regime.

Usage::

    python benchmarks/compare_whitening.py TRAIN.h5 --flow flows/galex_sdss_2mass \\
        --test TEST.h5 [--n-train 400000] [--epochs 15] [--n-test 1500] [--out DIR]

``TRAIN.h5`` is a training set of the posterior's survey (``provabgs-sbi trainset make``;
the first ``--n-train`` rows are used), ``--test`` a held-out file of the same survey and
emulator (``validate`` caches one in ``<cache>/validation``). ``--flow`` gives the survey,
conditioning, noise model and prior (its weights are not used). Both variants get the
posterior's :class:`~provabgs_sbi.inference.conditioning.Conditioning` draws with one seed
and the ten-band flow's architecture (5 spline MAF blocks of 2 x 156, plateau box map, lr
1e-3 halved after 3 epochs without progress, batch 1024); "whitened" adds
``whiten_columns`` = the magnitude columns. The two trainings run at once, one core each
(``TF_NUM_INTRAOP_THREADS=1``), so their times are comparable.

Prints, per variant: training time, best validation loss, and per regime (all bands at floor
0; no GALEX or no u and z; all bands at floor 0.1) the held-out mean log q at the true
warped parameters and the largest 68% / 95% coverage miss over the 12 parameters (300
draws per galaxy).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def _train_and_score(args) -> dict:
    import time

    from provabgs_sbi.inference.conditioning import Regime
    from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
    from provabgs_sbi.inference.noise import survey_noise_model
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.inference.training_set import load_mag_true, load_training_set
    from provabgs_sbi.model.parameters import PARAM_NAMES, from_warped, to_warped
    from provabgs_sbi.workflows.validate import _held_out_set, observe_first

    post = Posterior.load(args.flow)
    cond, lay, prior = post.conditioning, post.layout, post.prior
    if cond is None:
        raise SystemExit(f"{args.flow} is not mask-aware")
    noise = post.noise or survey_noise_model(post.survey)
    _, warped, x, _ = load_training_set(args.trainset)
    n = args.n_train
    mag_true = load_mag_true(args.trainset)[:n]
    x_cat, floor, ok = cond.draw(mag_true, lay.redshift(x[:n]), noise,
                                 rng=np.random.default_rng([0, 19]))
    c = cond.encode(x_cat[ok], floor[ok])
    cfg = FlowConfig(n_transforms=5, hidden_units=(156, 156), transform="spline",
                     spline_bins=10, spline_bound=3.0, box_transform="plateau",
                     learning_rate=1e-3, batch_size=1024, max_epochs=args.epochs,
                     patience=args.epochs, lr_patience=3, seed=0,
                     whiten_columns=tuple(range(lay.n_bands)) if args.variant == "whitened"
                     else ())
    t0 = time.perf_counter()
    flow = ConditionalFlow.fit(warped[:n][ok], c, prior.low, prior.high, config=cfg,
                               progress=False)
    out = {"variant": args.variant, "n_train": int(ok.sum()), "epochs": args.epochs,
           "train_s": round(time.perf_counter() - t0, 1),
           "best_val_loss": flow.best_val_loss, "regimes": {}}
    theta, _, x_t, _, mt = _held_out_set(post, args.test, None, allow_other_emulator=True)
    optional = list(post.survey.optional_bands) or ["u", "z"]
    for name, regime in (("all bands, floor 0", Regime("all")),
                         (f"no {', '.join(optional)}", Regime("some", missing=tuple(optional))),
                         ("all bands, floor 0.1", Regime("floor", floor=0.1))):
        th, xr, fl = observe_first(post, theta, x_t, mt, regime, 0, args.n_test)
        inputs = cond.encode(xr, fl)
        log_q = flow.log_prob(to_warped(th), inputs)
        draws = flow.sample(inputs, 300, seed=5)
        phys = from_warped(draws.reshape(-1, draws.shape[-1])).reshape(len(th), 300, -1)
        rank = np.mean(phys < th[:, None, :], axis=1)
        miss = {lev: np.abs(np.mean(np.abs(rank - 0.5) <= lev / 2, axis=0) - lev)
                for lev in (0.68, 0.95)}
        out["regimes"][name] = {
            "n": int(len(th)), "mean_log_q": float(np.mean(log_q[np.isfinite(log_q)])),
            "max_miss_68": float(miss[0.68].max()),
            "worst_68": PARAM_NAMES[int(np.argmax(miss[0.68]))],
            "max_miss_95": float(miss[0.95].max())}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("trainset")
    p.add_argument("--flow", default="flows/galex_sdss_2mass")
    p.add_argument("--test", required=True)
    p.add_argument("--n-train", type=int, default=400_000)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--n-test", type=int, default=1500)
    p.add_argument("--out", default="compare_whitening")
    p.add_argument("--variant", choices=("standardised", "whitened"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.variant:                                       # one side, in its own process
        (out / f"{args.variant}.json").write_text(json.dumps(_train_and_score(args), indent=1))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, __file__, *(argv or sys.argv[1:]),
                               "--variant", v], env=env)
             for v in ("standardised", "whitened")]
    if any(proc.wait() for proc in procs):
        return 1
    for v in ("standardised", "whitened"):
        r = json.loads((out / f"{v}.json").read_text())
        print(f"{v}: {r['n_train']:,} galaxies, {r['epochs']} epochs in {r['train_s']:.0f} s, "
              f"best validation loss {r['best_val_loss']:.3f}")
        for name, s in r["regimes"].items():
            print(f"  {name:22s} ({s['n']} galaxies): mean log q {s['mean_log_q']:+.3f}, "
                  f"largest coverage miss 68% {s['max_miss_68']:.3f} ({s['worst_68']}), "
                  f"95% {s['max_miss_95']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

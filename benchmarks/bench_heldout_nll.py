"""Rank flow settings by held-out NLL on fresh simulations (= E_x KL(p || q) + a constant
of the task; for gaussian_linear also the exact KL, its posterior being known).

The measurements behind the default procedure's candidates (docs/results/sbibm.md, "One
default for every task"): each TASK:N:SETTINGS trains one flow on N simulations (seed 0)
and prints one JSON line: held-out NLL on 2 x 10^4 fresh pairs, epochs, best epoch, best
validation loss, training loss at the best epoch, seconds.

Usage::

    PYTHONPATH=.:benchmarks python benchmarks/bench_heldout_nll.py \
        gaussian_linear:10000:default gaussian_linear:10000:npe_wd0.3 gaussian_mixture:10000:nsf
"""
import dataclasses
import json
import sys
import time

import numpy as np
from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig
from sbibm_tasks import get_task, gaussian_linear_log_posterior

CANDS = {
 "default": lambda n, d: FlowConfig.preset("default"),
 "nsf": lambda n, d: FlowConfig(n_transforms=5, hidden_units=(50, 50), activation="relu", learning_rate=5e-4,
                         batch_size=50, transform="spline", spline_bins=10, spline_bound=3.0,
                         box_transform="plateau", lr_patience=3),
 "npe": lambda n, d: FlowConfig(n_transforms=5, hidden_units=(50, 50), activation="tanh", learning_rate=5e-4,
                         batch_size=50, box_transform="plateau", lr_patience=3),
}


def wd(base, w):
    """Settings ``base`` with decoupled weight decay ``w``."""
    return lambda n, d: dataclasses.replace(CANDS[base](n, d), weight_decay=w)


for b in ("nsf", "npe"):
    for w in (0.1, 0.3, 1.0, 3.0):
        CANDS[f"{b}_wd{w}"] = wd(b, w)



def run(task, n, cand, seed=0, n_test=20000):
    """Train settings ``cand`` on ``n`` simulations of ``task``; print one JSON line."""
    task = get_task(task)
    rng = np.random.default_rng([seed, 12345])
    th = task.sample_prior(n, rng); x = task.simulate(th, rng)
    trng = np.random.default_rng([seed, 999])
    tt = task.sample_prior(n_test, trng); tx = task.simulate(tt, trng)
    cfg = CANDS[cand](n, task.dim_theta)
    t0 = time.perf_counter()
    f = ConditionalFlow.fit(th, x, task.low, task.high, config=cfg, progress=False)
    dt = time.perf_counter() - t0
    nll = -float(np.mean(f.log_prob(tt, tx)))
    out = dict(task=task.name, n=n, cand=cand, nll=round(nll, 4), epochs=len(f.history), best=f.best_epoch,
               val=round(f.best_val_loss, 4), train=round(f.history[f.best_epoch - 1]["train_loss"], 4), sec=round(dt, 1))
    if task.name == "gaussian_linear":
        out["kl"] = round(nll + float(np.mean(gaussian_linear_log_posterior(tt, tx))), 4)
    print(json.dumps(out), flush=True)



if __name__ == "__main__":
    for spec in sys.argv[1:]:
        t, n, c = spec.split(":")
        run(t, int(n), c)

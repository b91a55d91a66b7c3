"""Training and testing the SED posterior (ANPE) from a training-set file."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .posterior import Posterior
from .priors import Prior
from .training_set import load_training_set


def train_posterior(trainset_path, out_dir, flow_config=None, checkpoint_dir=None,
                    test_path=None, n_test_samples: int = 1000, progress: bool = True,
                    inputs=None, recipe=None, log=print) -> tuple[Posterior, dict]:
    """Fit the conditional flow on a training set and save ``flows/<configuration>``.

    Parameters
    ----------
    trainset_path : path-like
        File from :func:`provabgs_sbi.training_set.make_training_set`.
    flow_config : FlowConfig, optional
        Default ``FlowConfig.preset("default")``.
    checkpoint_dir : path-like, optional
        Checkpoints for resuming an interrupted training (default: beside the training set).
    test_path : path-like, optional
        A held-out training-set file (other seed): coverage of the central 68% and 95%
        intervals per parameter goes into the manifest's metrics.
    """
    from .flows import ConditionalFlow, FlowConfig

    theta, warped, x, settings = load_training_set(trainset_path)
    cfg = settings["config"]
    prior = Prior(cfg["prior"])
    flow_config = flow_config or FlowConfig.preset("default")
    ckpt = Path(checkpoint_dir) if checkpoint_dir else Path(str(trainset_path) + ".checkpoints")
    log(f"training the flow on {len(x):,} galaxies ({flow_config.n_transforms} x "
        f"{flow_config.hidden_units}), checkpoints in {ckpt}")
    flow = ConditionalFlow.fit(warped, x, prior.low, prior.high, config=flow_config,
                               checkpoint_dir=ckpt, progress=progress)
    mags = x[:, :5]
    from .noise import default_noise_model

    post = Posterior(flow, prior, cfg["z_range"], np.column_stack([mags.min(0), mags.max(0)]),
                     noise=default_noise_model(),
                     info={"training_set": settings, "n_train": int(len(x))})
    metrics = {"best_val_loss": float(flow.best_val_loss), "best_epoch": int(flow.best_epoch),
               "epochs": len(flow.history)}
    if test_path is not None:
        metrics["test"] = test_coverage(post, test_path, n_samples=n_test_samples)
        log("coverage on held-out galaxies: " + json.dumps(metrics["test"]["coverage"]))
    post.save(out_dir, metrics=metrics, inputs=inputs or {}, recipe=recipe)
    return post, metrics


def test_coverage(post: Posterior, test_path, n_samples: int = 1000, n_test: int = 2000,
                  seed: int = 0) -> dict:
    """Empirical coverage of central 68% / 95% intervals on held-out galaxies, per parameter."""
    from .parameters import PARAM_NAMES

    theta, _, x, _ = load_training_set(test_path)
    theta, x = theta[:n_test], x[:n_test]
    samples = post.sample(x, n_samples, seed=seed)
    out = {}
    for level in (0.68, 0.95):
        lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)], axis=1)
        inside = (theta >= lo) & (theta <= hi)
        out[f"{level:.2f}"] = dict(zip(PARAM_NAMES, inside.mean(axis=0).round(4).tolist()))
    return {"n_test": int(len(x)), "n_samples": int(n_samples), "coverage": out}

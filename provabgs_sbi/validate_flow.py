"""``provabgs-sbi validate``: calibration of a trained posterior on test galaxies drawn
exactly like its training set (new seed, never used in training).

For the 12 parameters and the derived properties it writes a JSON of the numbers of
:func:`provabgs_sbi.validation.summary` (coverage, SBC ranks against the 99% binomial
band, p-p curves against the simultaneous ECDF band, TARP with its p-value) and PNGs of
the p-p curves, SBC histograms and TARP.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .parameters import PARAM_NAMES

DERIVED = ("log_mstar_surviving", "log_sfr_1gyr", "z_mw", "tage_mw")


def _derived(model, theta, z):
    d = model.derived(theta, z)
    with np.errstate(divide="ignore"):
        sfr = np.log10(np.maximum(d["sfr_1gyr"], 1e-12))
    return np.column_stack([d["log_mstar_surviving"], sfr, d["z_mw"], d["tage_mw"]])


def validate_posterior(post, emulator, out_dir, n_test: int = 1000, n_samples: int = 1000,
                       seed: int = 0, work_dir=None, progress: bool = True) -> dict:
    """Run the calibration checks and write ``validation.json`` and PNGs into ``out_dir``."""
    from .fetch import sha256_file  # noqa: F401  (kept for provenance helpers)
    from .paths import cache_dir
    from .training_set import TrainingSetConfig, load_training_set, make_training_set
    from .validation import summary
    from .validation_plots import plot_pp, plot_sbc, plot_tarp
    from .validation import pp_curve, sbc_histogram, sbc_ranks, binomial_band, tarp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir else cache_dir() / "validation"
    cfg = TrainingSetConfig(n=n_test, seed=10_000 + seed, prior=post.prior.kind,
                            z_range=tuple(post.z_range), chunk=max(5000, 3 * n_test))
    path = make_training_set(work / f"test_{post.prior.kind}_{n_test}_s{seed}.h5", cfg, emulator,
                             progress=progress)
    theta, warped, x, _ = load_training_set(path)
    samples = post.sample(x, n_samples, seed=seed)
    model = emulator.burst_model
    z = x[:, 10]
    truth_d = _derived(model, theta, z)
    samp_d = _derived(model, samples.reshape(-1, 12), np.repeat(z, n_samples)).reshape(
        len(x), n_samples, len(DERIVED))
    all_s = np.concatenate([samples, samp_d], axis=-1)
    all_t = np.concatenate([theta, truth_d], axis=-1)
    names = list(PARAM_NAMES) + list(DERIVED)
    res = summary(all_s, all_t, names=names)
    res["test_set"] = {"file": str(path), "config": cfg.to_dict()}
    (out_dir / "validation.json").write_text(json.dumps(res, indent=1) + "\n")
    ranks = sbc_ranks(all_s, all_t)
    pp = pp_curve(ranks, n_samples)
    plot_pp(pp, out_dir / "pp.png", names=names, title=f"p-p, {len(x)} test galaxies")
    counts = sbc_histogram(ranks, n_samples, 20)
    band = binomial_band(len(x), 20, 0.99)
    plot_sbc(counts, band, out_dir / "sbc.png", names=names, title=f"SBC, {len(x)} test galaxies")
    plot_tarp(tarp(samples, theta), out_dir / "tarp.png")
    return res

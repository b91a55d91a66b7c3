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


def test_set(post, emulator, n_test: int = 1000, seed: int = 0, work_dir=None,
             progress: bool = True):
    """Test galaxies drawn exactly like the posterior's training set, with a seed no
    training set uses (10,000 + ``seed``); cached in ``work_dir`` (default
    ``<cache>/validation``).

    Returns
    -------
    path : Path
        The HDF5 file (:func:`~provabgs_sbi.training_set.load_training_set` reads it).
    config : TrainingSetConfig
    """
    from .paths import cache_dir
    from .training_set import TrainingSetConfig, make_training_set

    work = Path(work_dir) if work_dir else cache_dir() / "validation"
    cfg = TrainingSetConfig(n=n_test, seed=10_000 + seed, prior=post.prior.kind,
                            z_range=tuple(post.z_range), chunk=max(5000, 3 * n_test))
    path = make_training_set(work / f"test_{post.prior.kind}_{n_test}_s{seed}.h5", cfg, emulator,
                             progress=progress)
    return path, cfg


def validate_posterior(post, emulator, out_dir, n_test: int = 1000, n_samples: int = 1000,
                       seed: int = 0, work_dir=None, progress: bool = True,
                       n_mcmc_test: int = 0, n_mcmc_real: int = 0, real_catalog=None,
                       mcmc_kwargs: dict | None = None) -> dict:
    """Run the calibration checks and write ``validation.json`` and PNGs into ``out_dir``.

    Parameters
    ----------
    post : Posterior
    emulator : Emulator
        Draws the test galaxies (as the training set) and is the MCMC's model.
    out_dir : path-like
        ``validation.json``, ``fig3_pp.png`` (p-p with the 99% simultaneous band),
        ``fig4_sbc.png`` (SBC with the 99% binomial band), ``tarp.png``; with MCMC also
        ``anpe_vs_mcmc.png`` and ``mcmc_pp.png``.
    n_test, n_samples : int
        Test galaxies and posterior draws per galaxy.
    seed : int
    work_dir : path-like, optional
        Cache of the test set and the MCMC files (default ``<cache>/validation``).
    n_mcmc_test, n_mcmc_real : int
        MCMC (:mod:`provabgs_sbi.compare_mcmc`) of the first ``n_mcmc_test`` test galaxies
        and of ``n_mcmc_real`` galaxies of ``real_catalog``, compared with ANPE; resumable.
    mcmc_kwargs : dict, optional
        ``n_walkers``, ``n_steps``, ``burn_in`` (default
        :data:`provabgs_sbi.compare_mcmc.MCMC_DEFAULTS`).

    Returns
    -------
    dict
        What ``validation.json`` holds.
    """
    from .paths import cache_dir
    from .training_set import load_training_set
    from .validation import (ValidationConfig, binomial_band, pp_curve, sbc_histogram,
                             sbc_ranks, summary, tarp)
    from .validation_plots import plot_pp, plot_sbc, plot_tarp

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path, cfg = test_set(post, emulator, n_test, seed, work_dir, progress)
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
    vcfg = ValidationConfig(pp_level=0.99, seed=seed)
    res = summary(all_s, all_t, names=names, config=vcfg)
    res["test_set"] = {"file": str(path), "config": cfg.to_dict()}
    ranks = sbc_ranks(all_s, all_t)
    pp = pp_curve(ranks, n_samples, level=vcfg.pp_level)
    plot_pp(pp, out_dir / "fig3_pp.png", names=names,
            title=f"p-p, {len(x)} test galaxies (99% simultaneous band)")
    counts = sbc_histogram(ranks, n_samples, vcfg.n_bins)
    band = binomial_band(len(x), vcfg.n_bins, vcfg.sbc_level)
    plot_sbc(counts, band, out_dir / "fig4_sbc.png", names=names,
             title=f"SBC, {len(x)} test galaxies (99% binomial band)")
    plot_tarp(tarp(samples, theta), out_dir / "tarp.png")

    if n_mcmc_test > 0 or n_mcmc_real > 0:
        work = Path(work_dir) if work_dir else cache_dir() / "validation"
        res["mcmc"] = _mcmc_comparison(post, emulator, x, theta, out_dir,
                                       work / f"mcmc_s{seed}", n_mcmc_test, n_mcmc_real,
                                       real_catalog, seed, progress, mcmc_kwargs or {})
    (out_dir / "validation.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def _mcmc_comparison(post, emulator, x, theta, out_dir, mcmc_dir, n_test, n_real, real_catalog,
                     seed, progress, mcmc_kwargs) -> dict:
    """MCMC of the subsets, ANPE against it, and its figures; returns the JSON part."""
    from .compare_mcmc import (MCMC_DEFAULTS, compare_with_mcmc, read_mcmc_results,
                               run_mcmc_subsets, to_json)
    from .paper_figures import plot_anpe_vs_mcmc
    from .validation import pp_curve, sbc_ranks
    from .validation_plots import plot_pp

    files = run_mcmc_subsets(emulator, x, mcmc_dir, n_test=n_test, real_catalog=real_catalog,
                             n_real=n_real, seed=seed, progress=progress, **mcmc_kwargs)
    out = {"settings": {**MCMC_DEFAULTS, **mcmc_kwargs}, "files": {k: str(v) for k, v in
                                                                    files.items() if k != "real_rows"}}
    comps = {}
    if files["test"] is not None:
        comps["test"] = compare_with_mcmc(post, read_mcmc_results(files["test"]), truth=theta,
                                          seed=seed)
        c = comps["test"]
        mc = np.stack([m[np.random.default_rng(seed).choice(len(m), 1000, replace=False)]
                       for m in c["mcmc"]])
        pp = pp_curve(sbc_ranks(mc, c["truth"]), mc.shape[1], level=0.99)
        plot_pp(pp, out_dir / "mcmc_pp.png", names=list(PARAM_NAMES),
                title=f"p-p of the MCMC posteriors, {len(mc)} test galaxies (99% band)")
    if files["real"] is not None:
        comps["real"] = compare_with_mcmc(post, read_mcmc_results(files["real"]), seed=seed)
        c = comps["real"]
        plot_anpe_vs_mcmc(c["anpe"][0], c["mcmc"][0], c["per_galaxy_x"][0], emulator,
                          out_dir / "fig2_anpe_vs_mcmc.png",
                          title=f"SDSS galaxy {c['per_galaxy'][0]['id']}")
    _plot_offsets(comps, out_dir / "anpe_vs_mcmc.png")
    for k, c in comps.items():
        out[k] = to_json(c)
    return out


def _plot_offsets(comps: dict, path) -> None:
    """Mean |median(ANPE) - median(MCMC)| / std(MCMC) per parameter for each subset."""
    from .parameters import WARPED_NAMES
    from .plots import _plt

    if not comps:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    pos = np.arange(len(WARPED_NAMES))
    width = 0.8 / len(comps)
    for k, (name, c) in enumerate(comps.items()):
        vals = [c["median_offset_mean"][p] for p in WARPED_NAMES]
        ax.bar(pos + (k - (len(comps) - 1) / 2) * width, vals, width,
               label=f"{name} galaxies ({c['n_galaxies']}, {c['converged']} converged)")
    ax.axhline(0.3, color="k", ls="--", lw=1, label="0.3 (SEDflow)")
    ax.set_xticks(pos)
    ax.set_xticklabels(WARPED_NAMES, rotation=30, ha="right")
    ax.set_ylabel("mean |Δ median| / σ$_{MCMC}$")
    ax.set_title("ANPE against MCMC: offsets of the marginal medians")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

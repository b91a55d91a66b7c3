"""Where in redshift a posterior can be trusted: z-scores of held-out galaxies per redshift bin.

A flow can fail in one corner of its input space while its overall calibration looks fine.
The ten-band posterior's log M* posteriors collapse (widths of 0.001 dex, far from the
truth) for galaxies at z < 0.005, 2.5% of its test galaxies, which a coverage bar of 0.03
does not see. The SDSS ugriz posteriors, on the same redshift prior, do not.

:func:`redshift_calibration` observes held-out galaxies (all bands, floor 0) in redshift bins
and, per bin, computes each parameter's z-score ``(truth - posterior mean) / posterior sd``;
a galaxy is an outlier where any parameter has ``|z| > z_limit`` (a calibrated posterior
puts ~0.1% of them there, for heavy-tailed marginals), and a bin fails where its outliers
are significantly more than a fraction ``max_outliers`` (one-sided binomial test at level
``alpha``: with 60 galaxies a bin, one outlier is 1.7% and proves nothing; with 300, nine
fail a 1% bar).
:func:`lowest_trusted_redshift` takes the upper edge of the highest failing bin of the run of
failures that starts at the lowest bin, and :func:`restrict_redshift` records it as the
posterior's ``z_range[0]``: fits flag galaxies below it ``FLAG_Z_RANGE`` (no samples, or an
error with ``strict=True``) and ``validate`` uses test galaxies inside it only. A failure
that does not start at the lowest bin is reported and not acted on: it is not an edge.

Below z ~ 0.005 (about 20 Mpc) peculiar velocities of ~300 km/s change a redshift distance
by 20% or more, so such galaxies need a redshift-independent distance in any case.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import binom

from provabgs_sbi.inference.conditioning import Regime
from provabgs_sbi.inference.training_set import check_held_out, load_mag_true, load_training_set

__all__ = ["REDSHIFT_EDGES", "lowest_trusted_redshift", "outlier_p_value",
           "redshift_calibration", "restrict_redshift"]

#: Default redshift bin edges: fine near z = 0, where a flow's inputs change fastest.
REDSHIFT_EDGES = (0.0, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def redshift_calibration(post, test_path, edges=REDSHIFT_EDGES, n_per_bin: int = 300,
                         n_samples: int = 300, seed: int = 0, z_limit: float = 5.0,
                         max_outliers: float = 0.01, alpha: float = 0.01) -> dict:
    """Z-scores of held-out galaxies per redshift bin (all bands, floor 0).

    Parameters
    ----------
    post : Posterior
    test_path : path-like
        A training-set file held out from ``post`` (checked: no seed in common with its
        training sets); its rows are read bin by bin.
    edges : sequence of float
        Redshift bin edges, increasing.
    n_per_bin : int
        Galaxies per bin: the first in the file that are observed with all bands (fewer
        where the file has fewer).
    n_samples : int
        Posterior draws per galaxy.
    seed : int
    z_limit, max_outliers, alpha : float
        A galaxy is an outlier where any parameter has ``|z-score| > z_limit``; a bin fails
        where the binomial probability of at least its number of outliers, at a rate
        ``max_outliers``, is below ``alpha``.

    Returns
    -------
    dict
        ``edges``, and per bin (lists): ``n``, ``outlier_fraction``, ``p_value`` (of the
        binomial test), ``zscore_sd`` (per parameter, over the bin's galaxies),
        ``median_sd_log_mstar`` (dex), ``passes``; ``z_limit``, ``max_outliers``,
        ``alpha``, ``n_samples``, ``test_set``; ``z_min`` (:func:`lowest_trusted_redshift`).
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must increase, got {edges}")
    theta, _, x, settings = load_training_set(test_path)
    check_held_out(test_path, settings, post.seen_training_set_settings())
    mag = load_mag_true(test_path)
    z = post.layout.redshift(x)
    out = {"edges": edges, "n": [], "outlier_fraction": [], "p_value": [], "zscore_sd": [],
           "median_sd_log_mstar": [], "passes": [], "z_limit": float(z_limit),
           "max_outliers": float(max_outliers), "alpha": float(alpha),
           "n_samples": int(n_samples), "test_set": str(test_path)}
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = np.flatnonzero((z >= lo) & (z < hi) & (z > 0))
        if post.conditioning is not None:     # all bands present (GALEX detected), floor 0
            xs, _, ok = post.conditioning.draw(mag[rows], z[rows], post.noise,
                                               rng=np.random.default_rng([seed, 37]),
                                               regime=Regime("all bands"))
            ok &= ~post.layout.missing(xs).any(axis=1)
            xs, truth = xs[ok][:n_per_bin], theta[rows][ok][:n_per_bin]
        else:
            xs, truth = x[rows][:n_per_bin], theta[rows][:n_per_bin]
        if len(xs) == 0:
            for k in ("outlier_fraction", "p_value", "median_sd_log_mstar", "zscore_sd"):
                out[k].append(None)
            out["n"].append(0)
            out["passes"].append(True)
            continue
        s = post.sample(xs, n_samples, seed=seed, strict=False)
        sd = s.std(axis=1, ddof=1)
        zs = (truth - s.mean(axis=1)) / np.maximum(sd, 1e-300)
        outlier = np.any(np.abs(zs) > z_limit, axis=1)
        frac = float(np.mean(outlier))
        p_value = outlier_p_value(int(outlier.sum()), len(xs), max_outliers)
        out["n"].append(int(len(xs)))
        out["outlier_fraction"].append(round(frac, 4))
        out["p_value"].append(round(p_value, 5))
        out["zscore_sd"].append([round(float(v), 3) for v in zs.std(axis=0, ddof=1)])
        out["median_sd_log_mstar"].append(round(float(np.median(sd[:, 0])), 4))
        out["passes"].append(bool(p_value >= alpha))
    out["z_min"] = lowest_trusted_redshift(out)
    return out


def outlier_p_value(n_outliers: int, n: int, rate: float) -> float:
    """Probability of at least ``n_outliers`` outliers among ``n`` galaxies if each is one
    with probability ``rate`` (one-sided binomial test)."""
    return float(binom.sf(int(n_outliers) - 1, int(n), float(rate)))


def lowest_trusted_redshift(stats: dict) -> float:
    """The upper edge of the last failing bin of the run of failing bins that starts at the
    lowest bin; the lowest edge when the lowest bin passes."""
    edges, passes = stats["edges"], stats["passes"]
    k = 0
    while k < len(passes) and not passes[k]:
        k += 1
    return float(edges[k])


def restrict_redshift(folder, z_min: float, evidence: dict | None = None, command: str = "") -> None:
    """Record ``z_min`` as the lowest redshift the posterior in ``folder`` fits.

    ``posterior.json`` keeps the training sets' range as ``trained_z_range`` and gets
    ``z_range = [z_min, z_max]`` (and ``z_range_evidence``); ``RECIPE.md`` the command; the
    manifest is rewritten over the new files (its metrics and inputs kept).
    """
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.artifacts import read_manifest

    folder = Path(folder)
    post = Posterior.load(folder)
    trained = tuple(post.info.get("trained_z_range", post.z_range))
    if not trained[0] <= float(z_min) < trained[1]:
        raise ValueError(f"z_min must lie in the trained range {list(trained)}, got {z_min}")
    manifest = read_manifest(folder)
    post.info["trained_z_range"] = [float(v) for v in trained]
    post.z_range = (float(z_min), float(trained[1]))
    if evidence is not None:
        post.info["z_range_evidence"] = {k: evidence[k] for k in (
            "edges", "n", "outlier_fraction", "p_value", "median_sd_log_mstar", "passes",
            "z_limit", "max_outliers", "alpha", "n_samples", "test_set") if k in evidence}
    recipe_path = folder / "RECIPE.md"
    recipe = recipe_path.read_text() if recipe_path.exists() else "# Recipe\n"
    if command:
        recipe += ("\nIts lowest redshift was then set from held-out galaxies' z-scores per "
                   f"redshift bin (`provabgs_sbi.workflows.zrange`):\n\n```\n{command}\n```\n")
    post.save(folder, metrics=manifest.get("metrics", {}), inputs=manifest.get("inputs", {}),
              recipe=recipe)


def write_report(stats: dict, out_dir) -> Path:
    """``redshift_calibration.json`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "redshift_calibration.json"
    path.write_text(json.dumps(stats, indent=1) + "\n")
    return path

"""Choosing a mask-aware posterior's default systematic floor from a real catalog.

A floor f adds model error to the catalog errors, sigma_eff = sqrt(sigma^2 + f^2). The
right floor is the one at which the model fits real galaxies as well as it fits galaxies it
made itself. The statistic is the posterior predictive check of catalog fits
(:func:`provabgs_sbi.inference.ppc.best_draw_chi2`): the smallest chi^2 among ``n_draws``
posterior draws, with sigma_eff in the denominator.

For each floor on a grid:

- **real**: the statistic for every fittable galaxy of the real catalog;
- **expected**: the same statistic for held-out simulated galaxies observed with the
  same floor (:meth:`Conditioning.draw`: magnitudes scattered by sigma_eff). These galaxies
  follow the model by construction, so their statistic is what the real one should be.

Too small a floor leaves real chi^2 above the expected distribution; at the right floor
they agree, in the bulk and in the tail (:func:`pick_floor`):

- **tail**: the fraction of real galaxies above the expected distribution's 99th
  percentile, which should be 1%, is at most ``target`` (default 2%, allowing for the
  simulated percentile's own noise and for a few genuinely odd galaxies);
- **bulk**: the real median is at most the expected median.

The tail alone is not enough. At small floors a posterior may fit some of its own
simulated galaxies poorly (errors of 0.005 mag leave 32 draws far from the best fit), and
their 99th percentile then lies so high that real galaxies pass under it while their bulk
fits worse than the simulations' (the ten-band posterior at floor 0: 0.7% of the kcorrect
galaxies above an expected 99th percentile of 749, real median 15.1 against 12.5).
The default floor is the smallest grid value meeting both.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.flags import has_samples
from provabgs_sbi.inference.ppc import best_draw_chi2
from provabgs_sbi.inference.training_set import load_mag_true, load_training_set
from provabgs_sbi.inference.conditioning import Regime

#: Floors tried by default, mag.
FLOOR_GRID = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1)


def floor_statistics(post, model, x_real, ivar_real, theta_test, x_test, mag_test, floors=FLOOR_GRID,
                     n_draws: int = 32, seed: int = 0, target: float = 0.02) -> dict:
    """Best-draw chi^2 of real and simulated galaxies per floor, and the chosen floor.

    Parameters
    ----------
    post : Posterior
        Mask-aware.
    model : object
        ``photometry(theta, z)`` in AB nanomaggies (the posterior's emulator).
    x_real : ndarray of shape (N, 2 n_bands + 1)
        Real galaxies in the posterior's bands (rows it cannot fit are left out).
    ivar_real : ndarray of shape (N, n_bands) or None
        Their flux inverse variances (default from the magnitude errors).
    theta_test, x_test, mag_test : ndarrays of shapes (M, 12), (M, 2 n_bands + 1), (M, n_bands)
        Held-out simulated galaxies: parameters, x (for z) and noiseless magnitudes.
    floors : sequence of float
    n_draws : int
    seed : int
    target : float
        Largest acceptable fraction of real galaxies above the expected 99th percentile.

    Returns
    -------
    dict
        ``floors``, and per floor (lists in the same order): ``real_median``,
        ``expected_median``, ``expected_p99``, ``frac_real_above_p99``; ``chosen`` and
        ``met`` (:func:`pick_floor`), ``n_real``, ``n_test``, ``target``.
    """
    if post.conditioning is None:
        raise ValueError("choosing a floor needs a mask-aware posterior")
    if hasattr(model, "with_filters"):
        model = model.with_filters(post.survey)
    keep = has_samples(post.flags(x_real))
    x_real = x_real[keep]
    ivar_real = None if ivar_real is None else np.asarray(ivar_real)[keep]
    out = {"floors": [float(f) for f in floors], "real_median": [], "expected_median": [],
           "expected_p99": [], "frac_real_above_p99": [], "n_real": int(len(x_real)),
           "target": float(target), "n_draws": int(n_draws)}
    for f in floors:
        s = post.sample(x_real, n_draws, seed=seed, floor=f, strict=False)
        real, _ = best_draw_chi2(s, x_real, model, ivar_real, n_draws=n_draws, sigma_sys=f)
        # a survey with optional bands: the simulated galaxies get the real ones' band
        # patterns, since the statistic's distribution depends on the number of bands
        regime = (Regime.from_catalog("floor", x_real, post.layout, floor=f)
                  if post.conditioning.optional else Regime("floor", floor=f))
        xs, fl, ok = post.conditioning.draw(mag_test, post.layout.redshift(x_test), post.noise,
                                            rng=np.random.default_rng([seed, 31]), regime=regime)
        ss = post.sample(xs[ok], n_draws, seed=seed, floor=f, strict=False)
        sim, _ = best_draw_chi2(ss, xs[ok], model, None, n_draws=n_draws, sigma_sys=f)
        real, sim = real[np.isfinite(real)], sim[np.isfinite(sim)]
        p99 = float(np.percentile(sim, 99))
        out["real_median"].append(round(float(np.median(real)), 4))
        out["expected_median"].append(round(float(np.median(sim)), 4))
        out["expected_p99"].append(round(p99, 4))
        out["frac_real_above_p99"].append(round(float(np.mean(real > p99)), 5))
        out["n_test"] = int(len(sim))
    out["chosen"], out["met"] = pick_floor(out, target)
    return out


def pick_floor(stats: dict, target: float = 0.02) -> tuple[float, bool]:
    """The smallest floor at which real galaxies follow the expected distribution.

    Parameters
    ----------
    stats : dict
        :func:`floor_statistics`' lists ``floors``, ``frac_real_above_p99``,
        ``real_median`` and ``expected_median`` (same order).
    target : float
        Largest acceptable fraction of real galaxies above the expected 99th percentile.

    Returns
    -------
    chosen : float
        The smallest floor where that fraction is at most ``target`` and the real median
        at most the expected one; the largest floor tried if none is.
    met : bool
        Whether any floor met both.
    """
    met = [f for f, frac, real, expected in zip(stats["floors"], stats["frac_real_above_p99"],
                                                stats["real_median"], stats["expected_median"])
           if frac <= target and real <= expected]
    return (min(met), True) if met else (max(stats["floors"]), False)


def choose_floor(post, model, catalog, test_path, out_dir=None, floors=FLOOR_GRID,
                 n_test: int = 2000, n_draws: int = 32, seed: int = 0, target: float = 0.02) -> dict:
    """:func:`floor_statistics` for a catalog and a held-out training-set file; with
    ``out_dir``, writes ``floor_choice.json`` and draws ``floor_choice.png``.

    Parameters
    ----------
    post : Posterior
    model : object
        The posterior's emulator.
    catalog : PhotometryCatalog
        Real galaxies (e.g. :func:`provabgs_sbi.io.catalog.load_sdss_sample`).
    test_path : path-like
        Held-out training-set file (its first ``n_test`` galaxies).
    """
    theta, _, x, _ = load_training_set(test_path)
    mag = load_mag_true(test_path)
    res = floor_statistics(post, model, catalog.to_x(), catalog.ivar, theta[:n_test], x[:n_test],
                           mag[:n_test], floors, n_draws, seed, target)
    res["catalog"] = str(catalog.source)
    res["test_set"] = str(test_path)
    if out_dir is not None:
        from provabgs_sbi.plots.validation import plot_floor_choice

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "floor_choice.json").write_text(json.dumps(res, indent=1) + "\n")
        plot_floor_choice(res, out_dir / "floor_choice.png")
    return res


def set_default_floor(folder, floor: float, evidence: dict | None = None, command: str = "") -> None:
    """Record ``floor`` as the default floor of the mask-aware posterior in ``folder``.

    ``posterior.json`` gets ``default_floor`` (and ``default_floor_evidence``: the grid,
    the fractions and the target of :func:`floor_statistics`), ``RECIPE.md`` the command
    that chose it, and the manifest is rewritten over the new files (its metrics and inputs
    are kept).
    """
    from provabgs_sbi.inference.posterior import Posterior
    from provabgs_sbi.io.artifacts import read_manifest

    folder = Path(folder)
    post = Posterior.load(folder)
    post.check_floor(floor)
    if post.conditioning is None:
        raise ValueError(f"{folder} was trained without floors: its default stays 0")
    manifest = read_manifest(folder)
    post.info["default_floor"] = float(floor)
    if evidence is not None:
        post.info["default_floor_evidence"] = {k: evidence[k] for k in (
            "floors", "frac_real_above_p99", "real_median", "expected_median", "target",
            "n_real", "n_test", "catalog") if k in evidence}
    recipe_path = folder / "RECIPE.md"
    recipe = recipe_path.read_text() if recipe_path.exists() else "# Recipe\n"
    if command:
        catalog = (evidence or {}).get("catalog", "")
        recipe += ("\nThe default floor was then chosen from the real "
                   + ("SDSS sample" if post.survey.name == "sdss_ugriz" else f"catalog {catalog}")
                   + f" (`provabgs_sbi.workflows.floor`):\n\n```\n{command}\n```\n")
    post.save(folder, metrics=manifest.get("metrics", {}), inputs=manifest.get("inputs", {}),
              recipe=recipe)

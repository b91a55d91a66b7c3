"""ANPE against MCMC on a subset of galaxies (SEDflow's section 4, figures 3 and 4).

Two subsets, each fitted with :func:`~provabgs_sbi.baselines.mcmc.run_mcmc_catalog` (resumable HDF5,
one group per galaxy) with the emulator as the model:

- **test galaxies** drawn exactly like the training set (the first ``n`` rows of the
  validation test set). Their noise was added in magnitudes, so the MCMC uses the
  magnitude likelihood (``likelihood="mag"``): ANPE and MCMC then target the same
  posterior, and the truth is known, so the MCMC posteriors get the same coverage and
  rank checks as the flow;
- **real galaxies** from the SDSS sample (a seeded random choice among the valid rows),
  fitted with the flux likelihood and the catalog's inverse variances, as the paper's MCMC.

:func:`compare_with_reference` draws ANPE samples for the same galaxies and reports, per
parameter, the offset of the marginal medians in MCMC standard deviations (the paper: "within
0.3 posterior standard deviations on average"), the two-sample KS statistic of the marginals
(MCMC draws thinned by their autocorrelation time), the MCMC convergence report, and the
timings.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.baselines.mcmc import run_mcmc_catalog
from provabgs_sbi.diagnostics import coverage_by_name, ks_per_parameter, marginal_agreement
from provabgs_sbi.io.catalog import PhotometryCatalog
from provabgs_sbi.model.parameters import PARAM_NAMES, WARPED_NAMES, to_warped
from provabgs_sbi.model.observation import SDSS as XL, flux_and_ivar

#: Default MCMC settings of the comparison: the paper's walkers, shorter chains. With the
#: emulator a 10,000-step chain costs ~4-8 CPU minutes here; 4,000 steps with 1,000 of
#: burn-in keep 25 galaxies within an hour on two cores, and the convergence report
#: (n_post >= 50 tau, split-R-hat < 1.05) says whether that was enough.
MCMC_DEFAULTS = {"n_walkers": 30, "n_steps": 4000, "burn_in": 1000}
#: Default of the validation's MCMC coordinates: "none" samples the warped parameters as
#: the paper; "flow" the validated flow's base noise (:mod:`provabgs_sbi.experimental.neutra`), which on
#: on two bc03 test galaxies was no faster per CPU second (README; bench_neutra.py).
PRECONDITION_DEFAULT = "none"


def catalog_from_x(x, ids=None, z_range=None):
    """A :class:`~provabgs_sbi.io.catalog.PhotometryCatalog` from x = (5 mags, 5 errors, z).

    The fluxes are 10^(-0.4 (m - 22.5)) and the inverse variances those of the magnitude
    errors to first order, so ``catalog.to_x()`` gives back ``x``.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    flux, ivar = flux_and_ivar(x)
    return PhotometryCatalog.from_arrays(flux, ivar, XL.redshift(x), ids=ids,
                                         z_range=z_range, source="x vectors")


def real_rows(catalog, n: int, seed: int = 0) -> np.ndarray:
    """``n`` valid rows of a catalog, a seeded random choice, sorted."""
    valid = np.nonzero(catalog.valid)[0]
    if len(valid) < n:
        raise ValueError(f"the catalog has only {len(valid)} valid rows, {n} requested")
    rng = np.random.default_rng([seed, 5])
    return np.sort(rng.choice(valid, size=n, replace=False))


def read_mcmc_results(path) -> list[dict]:
    """The rows of a :func:`run_mcmc_catalog` file that finished, as dicts.

    Each has ``row``, ``id``, ``x`` (11,), ``samples`` (n, 12), ``converged``, ``tau``
    (11,), ``rhat`` (11,) and ``timing`` (dict).
    """
    import h5py

    out = []
    with h5py.File(path, "r") as fh:
        for name in sorted((k for k in fh if k.startswith("row_")), key=lambda k: int(k[4:])):
            g = fh[name]
            if g.attrs["status"] != "ok":
                continue
            out.append({"row": int(g.attrs["row"]), "id": str(g.attrs["id"]),
                        "x": np.asarray(g.attrs["x"], dtype=np.float64),
                        "samples": g["samples"][:],
                        "converged": bool(g.attrs["converged"]),
                        "tau": np.asarray(g.attrs["tau"], dtype=np.float64),
                        "rhat": np.asarray(g.attrs["rhat"], dtype=np.float64),
                        "timing": json.loads(g.attrs["timing"])})
    return out


def _reference_kind(results) -> str:
    kinds = {"mcmc" if "tau" in r else "importance" for r in results}
    if len(kinds) != 1:
        raise ValueError("results mix MCMC and importance-sampling rows")
    return kinds.pop()


def compare_with_reference(post, results, truth=None, n_samples: int = 10000, seed: int = 0,
                           n_walkers: int = 30, anpe=None) -> dict:
    """ANPE against a reference posterior for the galaxies of ``results``.

    Parameters
    ----------
    post : Posterior
    results : list of dict
        MCMC rows (:func:`read_mcmc_results`) or importance-sampling rows
        (:func:`~provabgs_sbi.baselines.importance.read_importance_results`), not mixed.
    truth : ndarray of shape (n_rows_total, 12), optional
        True parameters indexed by the results' ``row`` (test galaxies).
    n_samples : int
        ANPE draws per galaxy.
    seed : int
    n_walkers : int
        Walkers of the chains (to thin the MCMC draws by tau for the KS test).
    anpe : ndarray of shape (len(results), n, 12), optional
        ANPE draws for these galaxies, in the order of ``results`` (e.g. the ``anpe`` of
        another comparison of the same rows); drawn here if not given.

    Returns
    -------
    dict
        ``kind`` ("mcmc" or "importance"), ``n_galaxies``, ``converged`` (MCMC rows whose
        chains converged) or ``reliable`` (importance rows with Pareto k < 0.7),
        ``per_galaxy`` (row, id, median offsets in reference sigma, KS statistics, the
        reference's diagnostics and seconds); ``median_offset_mean`` {parameter: mean over
        galaxies (for importance rows, the reliable ones; their number is
        ``n_averaged``)} of |median(ANPE) - median(ref)| / std(ref), in the 11 warped
        coordinates (the flow's and the sampler's own); ``ks_mean``; with ``truth``,
        ``mcmc_coverage`` (the reference's) and ``anpe_coverage`` (68% and 95%) of the truth
        over these galaxies; and the arrays ``anpe`` (n_gal, n_samples, 12) and ``mcmc``
        (list of the reference samples) for figures (not JSON-serialisable; removed by
        :func:`to_json`).
    """
    if not results:
        raise ValueError("no finished reference rows to compare")
    kind = _reference_kind(results)
    x = np.array([r["x"] for r in results])
    if anpe is None:
        anpe = post.sample(x, n_samples, seed=seed)
    elif len(anpe) != len(results):
        raise ValueError(f"anpe holds {len(anpe)} galaxies, results {len(results)}")
    n_samples = anpe.shape[1]
    per, offsets, ks_all = [], [], []
    for i, r in enumerate(results):
        ref = r["samples"]
        a_w, m_w = to_warped(anpe[i]), to_warped(ref)
        off = marginal_agreement(a_w, m_w)
        if kind == "mcmc":
            # Decorrelate the chain before the KS test: every ceil(tau)-th iteration.
            tau = np.nanmax(r["tau"]) if np.all(np.isfinite(r["tau"])) else 1.0
            step = max(1, int(np.ceil(tau)))
            m_w = m_w.reshape(-1, n_walkers, m_w.shape[1])[::step].reshape(-1, m_w.shape[1])
            diag = {"converged": r["converged"], "tau_max": float(np.nanmax(r["tau"])),
                    "rhat_max": float(np.nanmax(r["rhat"]))}
        else:
            diag = {"reliable": r["reliable"], "ess": r["ess"], "pareto_k": r["pareto_k"],
                    "n_proposals": r["n_proposals"]}
        ks, _ = ks_per_parameter(a_w, m_w)
        offsets.append(off)
        ks_all.append(ks)
        per.append({"row": r["row"], "id": r["id"], **diag,
                    "seconds": float(r["timing"].get("total_s", np.nan)),
                    "median_offset": dict(zip(WARPED_NAMES, map(float, off))),
                    "ks": dict(zip(WARPED_NAMES, map(float, ks)))})
    offsets = np.array(offsets)
    ks_all = np.array(ks_all)
    flag = "converged" if kind == "mcmc" else "reliable"
    # An unreliable importance-sampled posterior is no reference: averages leave it out
    # (unless none is reliable). Unconverged chains are kept: that is the MCMC baseline.
    use = np.array([p[flag] for p in per]) if kind == "importance" else np.ones(len(per), bool)
    if not use.any():
        use[:] = True
    res = {"kind": kind, "n_galaxies": len(results), "n_samples_anpe": int(n_samples),
           flag: int(sum(p[flag] for p in per)), "n_averaged": int(use.sum()),
           "median_offset_mean": dict(zip(WARPED_NAMES, map(float, offsets[use].mean(0)))),
           "median_offset_max": dict(zip(WARPED_NAMES, map(float, offsets[use].max(0)))),
           "ks_mean": dict(zip(WARPED_NAMES, map(float, ks_all[use].mean(0)))),
           "seconds_median": float(np.median([p["seconds"] for p in per])),
           "per_galaxy": per, "anpe": anpe, "mcmc": [r["samples"] for r in results],
           "per_galaxy_x": x}
    if truth is not None:
        t = np.asarray(truth)[[r["row"] for r in results]]
        n_min = min(len(r["samples"]) for r in results)
        rng = np.random.default_rng(seed)
        mc = np.stack([r["samples"][rng.choice(len(r["samples"]), n_min, replace=False)]
                       for r in results])
        res["mcmc_coverage"] = coverage_by_name(mc, t, PARAM_NAMES, (0.68, 0.95))
        res["anpe_coverage"] = coverage_by_name(anpe, t, PARAM_NAMES, (0.68, 0.95))
        res["truth"] = t
    return res


def compare_references(results, reference) -> dict:
    """How far one set of reference posteriors (e.g. MCMC) is from another (e.g. importance
    sampling) for the galaxies both hold (and ``reference`` holds reliably, where its rows
    say).

    Returns
    -------
    dict
        ``n_galaxies``, ``rows`` and ``median_offset_mean`` / ``median_offset_max``
        {warped parameter: |median(results) - median(reference)| / std(reference)}.
    """
    by_row = {r["row"]: r for r in reference if r.get("reliable", True)}
    common = [r for r in results if r["row"] in by_row]
    if not common:
        raise ValueError("no galaxy is in both sets")
    off = np.array([marginal_agreement(to_warped(r["samples"]),
                                       to_warped(by_row[r["row"]]["samples"])) for r in common])
    return {"n_galaxies": len(common), "rows": [r["row"] for r in common],
            "median_offset_mean": dict(zip(WARPED_NAMES, map(float, off.mean(0)))),
            "median_offset_max": dict(zip(WARPED_NAMES, map(float, off.max(0))))}


def to_json(res: dict) -> dict:
    """The JSON-serialisable part of :func:`compare_with_reference`'s result."""
    return {k: v for k, v in res.items() if k not in ("anpe", "mcmc", "truth", "per_galaxy_x")}


def run_mcmc_subsets(emulator, test_x, out_dir, n_test: int = 20, real_catalog=None,
                     n_real: int = 5, seed: int = 0, progress: bool = True,
                     **mcmc_kwargs) -> dict:
    """MCMC of the first ``n_test`` test galaxies and ``n_real`` real ones (resumable).

    Parameters
    ----------
    emulator : Emulator
    test_x : ndarray of shape (N, 11)
        Test galaxies drawn like the training set.
    out_dir : path-like
        ``mcmc_test.h5`` and ``mcmc_real.h5`` are written (and resumed) here.
    real_catalog : PhotometryCatalog, optional
    **mcmc_kwargs
        ``n_walkers``, ``n_steps``, ``burn_in`` (default :data:`MCMC_DEFAULTS`) and
        ``precondition`` (a flow, see :func:`~provabgs_sbi.baselines.mcmc.run_mcmc`; the files are
        then ``mcmc_test_flow.h5`` and ``mcmc_real_flow.h5``).

    Returns
    -------
    dict
        ``test`` and ``real``: the result file paths (None where nothing was asked), and
        ``real_rows``.
    """
    kw = {**MCMC_DEFAULTS, **mcmc_kwargs}
    suffix = "" if kw.get("precondition") is None else "_flow"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_path = None
    if n_test > 0:
        test_cat = catalog_from_x(np.asarray(test_x)[:n_test], z_range=emulator.z_range)
        test_path = out_dir / f"mcmc_test{suffix}.h5"
        run_mcmc_catalog(test_cat, list(range(len(test_cat))), emulator, test_path, seed=seed,
                         progress=progress, likelihood="mag", **kw)
    real_path, rows = None, None
    if real_catalog is not None and n_real > 0:
        rows = real_rows(real_catalog, n_real, seed)
        real_path = out_dir / f"mcmc_real{suffix}.h5"
        run_mcmc_catalog(real_catalog, rows, emulator, real_path, seed=seed, progress=progress,
                         likelihood="flux", **kw)
    return {"test": test_path, "real": real_path, "real_rows": rows}

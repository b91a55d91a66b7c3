"""Fit a catalog with a trained posterior and write samples, derived properties and
per-galaxy summaries to HDF5 (resumable; the final file appears atomically).

Output file layout::

    samples           (n_gal, n_samples, 12) float32  physical parameters (PARAM_NAMES)
    derived/<name>    (n_gal, n_samples) float32      derived properties (SEDModel.derived)
    summary           table: id, z, flags, chi2_best (posterior predictive check, NaN
                      without a model), and <name>_p16/_p50/_p84 per parameter and property
    model_flux_best   (n_gal, 5) AB nanomaggies of the best-fitting of the checked draws
    x                 (n_gal, 11) the conditioning vectors
    attrs: settings (JSON), flag_names, param_names

Galaxies flagged invalid or outside the trained redshift range have NaN samples.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.io.h5store import commit, finish, open_store
from provabgs_sbi.model.observation import SDSS as XL

from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.flags import FIT_FLAG_NAMES, FLAG_FLOW_FAILED, FLAG_POOR_FIT, NO_SAMPLES
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.inference.ppc import CHI2_POOR_FIT, best_draw_chi2

DERIVED = ("log_mstar_surviving", "sfr_100myr", "sfr_1gyr", "log_ssfr_1gyr", "z_mw", "tage_mw")


def summary_percentiles(values: np.ndarray) -> np.ndarray:
    """16th, 50th and 84th percentiles over axis 1, NaN ignored, infinities respected.

    A derived quantity can be infinite in some draws: log sSFR is -inf when no star formed
    in the last Gyr. Where the linear interpolation of ``numpy.nanpercentile`` would fall
    between two infinities (undefined, NaN), the sample value at that rank is taken instead
    (``method="inverted_cdf"``), so such a percentile is -inf rather than missing.

    Parameters
    ----------
    values : ndarray of shape (n_gal, n_samples, n_quantities)

    Returns
    -------
    ndarray of shape (3, n_gal, n_quantities)
    """
    with np.errstate(invalid="ignore"):
        q = np.nanpercentile(values, [16, 50, 84], axis=1)
    undefined = np.isnan(q) & np.any(np.isinf(values), axis=1)[None]
    if np.any(undefined):
        q[undefined] = np.nanpercentile(values, [16, 50, 84], axis=1,
                                        method="inverted_cdf")[undefined]
    return q


def fit_catalog(post: Posterior, catalog, out, n_samples: int = 1000, seed: int = 0,
                chunk: int = 200, derived_model=None, progress: bool = True,
                model=None) -> Path:
    """Posterior samples for every galaxy of ``catalog``; see the module docstring.

    Parameters
    ----------
    post : Posterior
    catalog : PhotometryCatalog
    out : path-like
        Output HDF5. While running, rows go to ``<out>.part`` (resumed if present with the
        same settings); it is renamed to ``out`` when complete.
    n_samples : int
        Posterior draws per galaxy.
    seed, chunk : int
        Galaxies are sampled ``chunk`` at a time with the seed ``[seed, first row of the
        chunk]``: a galaxy's draws depend on the chunk it falls in, so the first ``k *
        chunk`` rows of a catalog get the same draws as in any longer catalog.
    derived_model : SEDModel, optional
        For derived properties; default the SED model of the posterior's SPS configuration.
    model : object, optional
        ``photometry(theta, z)`` in AB nanomaggies (the emulator) for the posterior
        predictive check: the smallest chi^2 among 32 posterior draws against the catalog's
        fluxes and inverse variances with a 0.02 mag systematic floor
        (:func:`provabgs_sbi.inference.ppc.best_draw_chi2`), one model call per chunk; above
        :data:`~provabgs_sbi.inference.ppc.CHI2_POOR_FIT` the galaxy is flagged ``poor_fit_chi2``.
    """
    from provabgs_sbi.model.sed_model import SEDModel

    out = Path(out)
    part = out.with_name(out.name + ".part")
    x = catalog.to_x()
    n_gal = len(x)
    flags = post.flags(x)
    ids = np.asarray(catalog.ids)
    if ids.dtype.kind in "UO":
        ids = ids.astype("S")
    derived_model = derived_model or SEDModel(post.info.get("sps", "bc03"))
    settings = json.dumps({"n_samples": int(n_samples), "seed": int(seed), "n_gal": n_gal,
                           "catalog": getattr(catalog, "source", ""),
                           "posterior": post.manifest.get("files", {}) if hasattr(post, "manifest") else {},
                           "ppc_model": type(model).__name__ if model is not None else None},
                          sort_keys=True)
    names = list(PARAM_NAMES) + list(DERIVED)
    def create(fh):
        fh.create_dataset("samples", shape=(n_gal, n_samples, 12), dtype="f4",
                          chunks=(max(1, min(chunk, n_gal)), n_samples, 12))
        for name in DERIVED:
            fh.create_dataset(f"derived/{name}", shape=(n_gal, n_samples), dtype="f4",
                              chunks=(max(1, min(chunk, n_gal)), n_samples))
        fh.create_dataset("stats", shape=(n_gal, len(names), 3), dtype="f8")
        fh.create_dataset("chi2_best", data=np.full(n_gal, np.nan))
        fh.create_dataset("model_flux_best", data=np.full((n_gal, XL.n_bands), np.nan))
        fh.create_dataset("x", data=x)
        fh.attrs["n_done"] = 0

    with open_store(part, settings, create, on_mismatch="restart") as fh:
        start = int(fh.attrs["n_done"])
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=n_gal, initial=start, desc="posteriors", unit="gal")
        for s in range(start, n_gal, chunk):
            sl = slice(s, min(s + chunk, n_gal))
            samp = post.sample(x[sl], n_samples, seed=[seed, s], strict=False)
            m = samp.shape[0]
            der = {k: np.full((m, n_samples), np.nan) for k in DERIVED}
            ok = np.all(np.isfinite(samp[:, 0, :]), axis=1)
            if np.any(ok):
                flat = samp[ok].reshape(-1, 12)
                zz = np.repeat(XL.redshift(x[sl])[ok], n_samples)
                d = derived_model.derived(flat, zz)
                for k in DERIVED:
                    der[k][ok] = d[k].reshape(-1, n_samples)
            fh["samples"][sl] = samp.astype(np.float32)
            if model is not None and np.any(ok):
                ivar = getattr(catalog, "ivar", None)
                chi2, mflux = best_draw_chi2(samp, x[sl], model, None if ivar is None else ivar[sl])
                fh["chi2_best"][sl] = chi2
                fh["model_flux_best"][sl] = mflux
            allv = np.concatenate([samp, np.stack([der[k] for k in DERIVED], axis=-1)], axis=-1)
            stats = np.full((3, m, len(names)), np.nan)    # rows with no samples stay NaN
            if np.any(ok):
                stats[:, ok] = summary_percentiles(allv[ok])
            fh["stats"][sl] = np.moveaxis(stats, 0, -1)
            for k in DERIVED:
                fh[f"derived/{k}"][sl] = der[k].astype(np.float32)
            commit(fh, n_done=sl.stop)
            if bar is not None and sl.stop < n_gal:
                bar.update(m)
        if bar is not None:
            bar.n = n_gal           # the last step is drawn once, by close() (an update
            bar.close()             # would draw it too: twice in a log file)
        stats = fh["stats"][:]
        no_draws = ~np.isfinite(stats[:, 0, 1]) & ((flags & NO_SAMPLES) == 0)
        flags[no_draws] |= FLAG_FLOW_FAILED
        chi2 = fh["chi2_best"][:]
        with np.errstate(invalid="ignore"):
            flags[chi2 > CHI2_POOR_FIT] |= FLAG_POOR_FIT
        cols = {"id": ids, "z": XL.redshift(x), "flags": flags, "chi2_best": chi2}
        for j, name in enumerate(names):
            for q, tag in enumerate(("p16", "p50", "p84")):
                cols[f"{name}_{tag}"] = stats[:, j, q]
        arr = np.rec.fromarrays(list(cols.values()), names=list(cols))
        if "summary" in fh:
            del fh["summary"]
        fh.create_dataset("summary", data=arr)
        fh.attrs["flag_names"] = json.dumps({str(k): v for k, v in FIT_FLAG_NAMES.items()})
        fh.attrs["param_names"] = json.dumps(list(PARAM_NAMES))
        fh.attrs["derived_names"] = json.dumps(list(DERIVED))
    return finish(part, out)

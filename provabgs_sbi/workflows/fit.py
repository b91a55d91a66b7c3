"""Fit a catalog with a trained posterior and write samples, derived properties and
per-galaxy summaries to HDF5 (resumable; the final file appears atomically).

Output file layout (``n_store`` = ``n_samples`` unless fewer draws are stored; with
``n_store`` = 0 there are no ``samples`` or ``derived/`` datasets)::

    samples           (n_gal, n_store, 12) float32    physical parameters (PARAM_NAMES)
    derived/<name>    (n_gal, n_store) float32        derived properties (SEDModel.derived)
    summary           table: id, z, flags, bad_bands (bit 2**b per band with a problem),
                      bands_used (bit 2**b per band the posterior was conditioned on),
                      reason (UTF-8 text: which band or value; "" when unflagged),
                      chi2_best (posterior predictive check, NaN without a model), and
                      <name>_p16/_p50/_p84 per parameter and property
    model_flux_best   (n_gal, 5) AB nanomaggies of the best-fitting of the checked draws
    x                 (n_gal, 11) the conditioning vectors (NaN only where a band or the
                      redshift is missing: flagged rows keep their valid values)
    attrs: settings (JSON), flag_names, param_names, derived_names, bands, floor (the
           systematic floor per band, mag), ppc_sigma_sys (the check's floor)

Every dataset says what it holds in attributes (JSON lists): ``columns`` or ``quantities``
and ``units`` (``unit`` for one), ``axes``; ``summary.attrs["units"]`` maps each summary
column to its unit (:func:`summary_units`).

Galaxies with a missing band or redshift, or a redshift outside the trained range (or at
or below ``Z_MIN``), have NaN samples. Stored
samples lie inside the prior's support: float32 values that rounding would put outside
the box are moved to the nearest float32 inside (:func:`stored_samples`).

Chunks: galaxies are fitted ``chunk`` at a time by :func:`fit_chunk`, which depends only on
the job and the chunk's rows (its draws are seeded with ``[seed, first row]``); each chunk's
results and a mark that it is done are written to ``<out>.part``, whose ``work/`` group
keeps the per-row summary columns until ``summary`` is assembled at the end (in blocks, so
memory does not grow with the catalog). A catalog may be a
:class:`~provabgs_sbi.io.catalog_stream.CatalogFile`, read a chunk at a time, and the
chunks may run on Dask workers (``client=``, :mod:`provabgs_sbi.workflows.fit_dask`).

Resuming: the ``.part`` file is keyed to the exact work (:func:`fit_settings`: the rows'
ids and x, or the catalog file's SHA-256 and read options, which rows, the posterior's
manifest, seed, n_samples, chunk and the predictive check) and resumed from the chunks
marked done. A ``.part`` made for other work is never merged: the fit is refused
(:class:`~provabgs_sbi.io.h5store.SettingsMismatch`) until it is deleted or
``overwrite=True`` starts afresh. An existing output is never replaced without
``overwrite=True``; rerunning a finished fit with the same work returns its file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from provabgs_sbi.progress import progress_bar
from provabgs_sbi.io.h5store import finish, settings_json
from provabgs_sbi.io.catalog_stream import CatalogFile
from provabgs_sbi.io.hashing import hash_arrays, sha256_bytes
from provabgs_sbi.model.observation import Z_MIN
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.flags import (FIT_FLAG_NAMES, FLAG_CHECK_FAILED, FLAG_FLOW_FAILED,
                                FLAG_POOR_FIT, FLAG_Z_RANGE, NO_SAMPLES, has_samples)
from provabgs_sbi.inference.posterior import Posterior
from provabgs_sbi.inference.ppc import CHI2_POOR_FIT, best_draw_chi2, chi2_poor_fit
from provabgs_sbi.inference.reasons import bad_band_mask, row_reasons
from provabgs_sbi.workflows.fit_output import (DERIVED, check_output_path, create_part,
                                               describe_datasets, finished_for, open_part,
                                               stored_ids, stored_samples, write_chunk,
                                               write_summary)
# re-exported: what users of a fit's output import from here
from provabgs_sbi.workflows.fit_output import OutputExistsError, summary_units  # noqa: F401


def summary_percentiles(values: np.ndarray) -> np.ndarray:
    """16th, 50th and 84th percentiles over axis 1, NaN ignored, infinities respected.

    The numbers of ``numpy.nanpercentile(values, [16, 50, 84], axis=1)`` (linear
    interpolation between order statistics, NaN dropped per galaxy and quantity), computed
    with one sort of the draws instead of numpy's loop over every (galaxy, quantity) pair.
    A derived quantity can be infinite in some draws: log sSFR is -inf when no star formed
    in the last Gyr. Where the interpolation would fall between two infinities (undefined,
    NaN), the sample value at that rank is taken instead (``method="inverted_cdf"``), so
    such a percentile is -inf rather than missing.

    Parameters
    ----------
    values : ndarray of shape (n_gal, n_samples, n_quantities)

    Returns
    -------
    ndarray of shape (3, n_gal, n_quantities)
    """
    values = np.asarray(values, dtype=np.float64)
    ranked = np.sort(np.moveaxis(values, 1, -1), axis=-1)       # NaN sort last
    n_valid = (~np.isnan(ranked)).sum(axis=-1)                     # (n_gal, n_q)
    last = np.maximum(n_valid - 1, 0)

    def at_rank(rank):
        return np.take_along_axis(ranked, rank[..., None], axis=-1)[..., 0]

    q = np.full((3,) + n_valid.shape, np.nan)
    with np.errstate(invalid="ignore"):
        for j, p in enumerate(np.array([16.0, 50.0, 84.0]) / 100.0):
            virtual = (n_valid - 1) * p
            lo = np.floor(virtual)
            gamma = virtual - lo
            lo = np.maximum(lo.astype(np.intp), 0)
            a, b = at_rank(lo), at_rank(np.minimum(lo + 1, last))
            diff = b - a                                    # numpy's _lerp, term by term
            q[j] = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
            undefined = np.isnan(q[j]) & (n_valid > 0)
            if np.any(undefined):                           # between two infinities:
                index = n_valid * p - 1                     # numpy's "inverted_cdf" rank
                rank = np.where(index == np.floor(index), np.floor(index), np.floor(index) + 1)
                rank = np.clip(rank, 0, last).astype(np.intp)
                q[j][undefined] = at_rank(rank)[undefined]
    q[:, n_valid == 0] = np.nan
    return q


def derived_of_draws(derived_model, samples: np.ndarray, z: np.ndarray) -> dict:
    """Derived properties of the draws of each galaxy.

    Parameters
    ----------
    derived_model : object
        Has ``derived(theta (N, 12), z (N,))``; its ``derived_draws(theta (G, S, 12), z
        (G,))`` is used when it has one (:meth:`SEDModel.derived_draws`, which shares the
        per-galaxy work among the draws).
    samples : ndarray of shape (G, S, 12)
    z : ndarray of shape (G,)

    Returns
    -------
    dict of ndarray of shape (G, S)
    """
    grouped = getattr(derived_model, "derived_draws", None)
    if callable(grouped):
        return grouped(samples, z)
    g, s = samples.shape[:2]
    flat = derived_model.derived(samples.reshape(-1, samples.shape[-1]), np.repeat(z, s))
    return {k: np.asarray(v).reshape(g, s) for k, v in flat.items()}


def catalog_rows_hash(ids, x) -> str:
    """SHA-256 of a catalog's ids and conditioning vectors: what the fit's rows contain."""
    ids = np.asarray(ids)
    id_bytes = ids.astype("<i8" if ids.dtype.kind in "iub" else "S").tobytes()
    return sha256_bytes(f"{ids.shape}".encode() + id_bytes + hash_arrays(x).encode())


def fit_settings(post: Posterior, ids, x, rows, n_samples: int, seed: int, chunk: int,
                 model, floor=None, catalog_key: dict | None = None) -> dict:
    """What a catalog fit is, to key its resumable ``.part`` file.

    Parameters
    ----------
    post : Posterior
    ids, x : ndarray
        The catalog rows' ids and conditioning vectors (hashed with ``rows``).
    rows : array-like of int or None
        Which rows of the input table these are (None: all, or not known).
    n_samples, seed, chunk : int
    model : object or None
        The predictive check's model: its type and manifest (if it has one) are recorded.
    floor : ndarray of shape (5,), optional
        The systematic floor of a mask-aware posterior's fit (recorded; None for others).
    catalog_key : dict, optional
        Which rows are fitted, instead of ``n_gal``, ``rows`` and the hash of ``ids`` and
        ``x`` (a file catalog is keyed by its SHA-256 and read options).

    Returns
    -------
    dict
        JSON-able settings; two fits may share a ``.part`` only when these are equal.
    """
    manifest = getattr(post, "manifest", None) or {}
    ppc = None
    if model is not None:
        ppc = {"model": type(model).__name__, "chi2_poor_fit": float(CHI2_POOR_FIT),
               "manifest": sha256_bytes(settings_json(getattr(model, "manifest", None) or {}).encode())}
    if catalog_key is None:
        catalog_key = {"n_gal": len(x), "rows": None if rows is None else hash_arrays(np.asarray(rows)),
                       "catalog_rows": catalog_rows_hash(ids, x)}
    return {"n_samples": int(n_samples), "seed": int(seed), "chunk": int(chunk), **catalog_key,
            "posterior": sha256_bytes(settings_json(manifest).encode()),
            "posterior_files": manifest.get("files", {}), "ppc": ppc,
            **({} if floor is None else {"floor": [float(f) for f in floor]})}


def fit_floor(post: Posterior, floor=None):
    """The floor of a catalog fit: for the flow and for the predictive check.

    Returns
    -------
    floor : ndarray of shape (5,)
        Checked against the posterior's trained range (default its default floor).
    floor_kw : dict
        ``{"floor": floor}`` for :meth:`Posterior.sample` of a mask-aware posterior; empty
        for one trained without floors (SEDflow's inputs).
    sigma_sys : float or ndarray of shape (5,)
        The predictive check's floor: ``floor``, or 0.02 mag without floors.
    """
    floor = post.check_floor(floor)          # refuses a floor the posterior was not trained for
    if post.conditioning is None:
        return floor, {}, 0.02
    return floor, {"floor": floor}, floor


def check_unique_ids(ids, shown: int = 5) -> None:
    """Raise ValueError naming up to ``shown`` ids that occur more than once in ``ids`` (N,)."""
    values, counts = np.unique(np.asarray(ids), return_counts=True)
    dup = values[counts > 1]
    if len(dup):
        raise ValueError(f"{len(dup)} id(s) occur more than once, e.g. "
                         f"{', '.join(str(v) for v in dup[:shown])}; ids must be unique")


@dataclass(frozen=True)
class ChunkRows:
    """The rows of one chunk of a catalog: what :func:`fit_chunk` reads.

    Attributes
    ----------
    start : int
        Index of the first row in the catalog (seeds the draws: ``[seed, start]``).
    x : ndarray of shape (M, 2 n_bands + 1)
        Conditioning vectors (:meth:`PhotometryCatalog.to_x`).
    ids : ndarray of shape (M,)
    flux, ivar : ndarray of shape (M, n_bands) or None
        AB nanomaggies and inverse variances (nmgy^-2), when the catalog has them.
    """

    start: int
    x: np.ndarray
    ids: np.ndarray
    flux: np.ndarray | None = None
    ivar: np.ndarray | None = None

    @classmethod
    def of(cls, catalog, start: int, sl: slice | None = None, x=None) -> "ChunkRows":
        """The rows ``sl`` (default all) of a catalog (``to_x()``, ``ids``, and ``flux``,
        ``ivar`` if it has them); ``x`` may be given when already computed."""
        sl = slice(None) if sl is None else sl
        x = catalog.to_x()[sl] if x is None else x[sl]
        pick = lambda name: None if getattr(catalog, name, None) is None \
            else np.asarray(getattr(catalog, name))[sl]  # noqa: E731
        return cls(int(start), np.asarray(x), stored_ids(np.asarray(catalog.ids)[sl]),
                   pick("flux"), pick("ivar"))


@dataclass(frozen=True)
class FitJob:
    """What every chunk of a catalog fit is fitted with (see :func:`fit_catalog`)."""

    post: Posterior
    derived_model: object
    model: object | None
    n_samples: int
    n_store: int
    seed: int
    floor_kw: dict
    sigma_sys: object


def fit_chunk(job: FitJob, rows: ChunkRows) -> dict:
    """Fit the galaxies of one chunk: everything the output holds about its rows.

    Every number depends only on the job and the rows (the draws are seeded with
    ``[job.seed, rows.start]``), so a chunk gives the same result in any process.

    Returns
    -------
    dict
        ``samples`` (M, n_store, 12) float32 (absent when n_store = 0), ``derived`` (dict
        of (M, n_store) float32), ``stats`` (M, n_quantities, 3), ``chi2_best`` (M,),
        ``model_flux_best`` (M, n_bands), ``x`` (M, 2 n_bands + 1), ``ids`` (M,), ``flags``,
        ``bad_bands``, ``bands_used`` (M,) int32 and ``reason`` (list of M str).
    """
    post, x = job.post, rows.x
    lay = post.layout
    m, n_samples = len(x), job.n_samples
    flags = post.flags(x)
    # Real galaxies at or below Z_MIN have no usable distance (peculiar velocities): flagged
    # and not sampled (their z is hidden from the flow; x keeps it).
    too_close = lay.redshift(x) <= Z_MIN
    flags[too_close] |= FLAG_Z_RANGE
    x_flow = x.copy()
    lay.redshift(x_flow)[too_close] = np.nan
    samp = post.sample(x_flow, n_samples, seed=[job.seed, rows.start], strict=False, **job.floor_kw)
    der = {k: np.full((m, n_samples), np.nan) for k in DERIVED}
    ok = np.all(np.isfinite(samp[:, 0, :]), axis=1)
    if np.any(ok):
        d = derived_of_draws(job.derived_model, samp[ok], lay.redshift(x)[ok])
        for k in DERIVED:
            der[k][ok] = d[k]
    chi2 = np.full(m, np.nan)
    mflux = np.full((m, lay.n_bands), np.nan)
    if job.model is not None and np.any(ok):
        chi2, mflux = best_draw_chi2(samp, x, job.model, rows.ivar, sigma_sys=job.sigma_sys)
    names = list(PARAM_NAMES) + list(DERIVED)
    allv = np.concatenate([samp, np.stack([der[k] for k in DERIVED], axis=-1)], axis=-1)
    stats = np.full((3, m, len(names)), np.nan)        # rows with no samples stay NaN
    if np.any(ok):
        stats[:, ok] = summary_percentiles(allv[ok])
    stats = np.moveaxis(stats, 0, -1)
    no_draws = ~np.isfinite(stats[:, 0, 1]) & ((flags & NO_SAMPLES) == 0)
    flags[no_draws] |= FLAG_FLOW_FAILED
    present = ~lay.missing(x)
    limit = chi2_poor_fit(present.sum(axis=1))
    with np.errstate(invalid="ignore"):
        flags[chi2 > limit] |= FLAG_POOR_FIT
    if job.model is not None:
        flags[has_samples(flags) & ~np.isfinite(chi2)] |= FLAG_CHECK_FAILED
    problems = post.band_problems(x)
    reasons = row_reasons(x, flags, problems, post.z_range, chi2, limit, flux=rows.flux,
                          min_bands=post.min_bands, layout=lay)
    out = {"stats": stats, "chi2_best": chi2, "model_flux_best": mflux, "x": x,
           "ids": rows.ids, "flags": flags.astype(np.int32),
           "bad_bands": bad_band_mask(problems).astype(np.int32),
           "bands_used": np.where(has_samples(flags), bad_band_mask({"p": present}), 0
                                  ).astype(np.int32),
           "reason": [str(r) for r in reasons]}
    if job.n_store:
        out["samples"] = stored_samples(samp[:, :job.n_store])
        out["derived"] = {k: der[k][:, :job.n_store].astype(np.float32) for k in DERIVED}
    return out


def _file_key(catalog: CatalogFile) -> dict:
    """Which rows a fit of a catalog file covers, for :func:`fit_settings` (in place of the
    hash of every row's ids and x): the file's SHA-256 and how it is read."""
    return {"catalog_file": catalog.sha256, "n_gal": len(catalog),
            "read": {k: v for k, v in sorted(catalog.options.items())}}


def _unique_id_kind(catalog) -> str:
    """Refuse duplicate ids (a file catalog's are read one chunk at a time, in one pass) and
    say how the output stores them: ``"int"`` or ``"text"``."""
    if isinstance(catalog, CatalogFile):
        ids = np.concatenate([c.ids for _, c in catalog.chunks(100_000)])
    else:
        ids = np.asarray(catalog.ids)
    check_unique_ids(ids)
    return "int" if stored_ids(ids[:1]).dtype.kind == "i" else "text"


def fit_catalog(post: Posterior, catalog, out, n_samples: int = 1000, seed: int = 0,
                chunk: int = 200, derived_model=None, progress: bool = True,
                model=None, rows=None, overwrite: bool = False, floor=None,
                n_store: int | None = None, client=None) -> Path:
    """Posterior samples for every galaxy of ``catalog``; see the module docstring.

    Parameters
    ----------
    post : Posterior
    catalog : PhotometryCatalog or CatalogFile
        In memory, or a file read ``chunk`` rows at a time
        (:class:`~provabgs_sbi.io.catalog_stream.CatalogFile`: FITS, HDF5 and Parquet are
        read in slices, so memory does not grow with the catalog).
    out : path-like
        Output HDF5 (its folder is created). While running, rows go to ``<out>.part``
        (resumed if present for the same work, :func:`fit_settings`; refused if made for
        other work); it is renamed to ``out`` when complete.
    n_samples : int
        Posterior draws per galaxy: the percentiles of ``summary`` and ``stats`` and the
        predictive check use all of them.
    n_store : int, optional
        Draws stored per galaxy in ``samples`` and ``derived/`` (the first ``n_store``; the
        draws are independent, so any ``n_store`` of them are a fair subsample). Default
        ``n_samples``; 100 is what the PROVABGS DESI value-added catalog stores; 0 stores
        summaries only (no ``samples`` or ``derived/`` datasets), a file of ~1 kB per galaxy.
    seed, chunk : int
        Galaxies are sampled ``chunk`` at a time with the seed ``[seed, first row of the
        chunk]``: a galaxy's draws depend on the chunk it falls in, so the first ``k *
        chunk`` rows of a catalog get the same draws as in any longer catalog. A chunk is
        also the unit of resuming and of Dask tasks.
    derived_model : SEDModel, optional
        For derived properties; default the SED model of the posterior's SPS configuration.
    model : object, optional
        ``photometry(theta, z)`` in AB nanomaggies (the emulator) for the posterior
        predictive check: the smallest chi^2 among 32 posterior draws against the catalog's
        fluxes and inverse variances with a 0.02 mag systematic floor
        (:func:`provabgs_sbi.inference.ppc.best_draw_chi2`), one model call per chunk; above
        :data:`~provabgs_sbi.inference.ppc.CHI2_POOR_FIT` the galaxy is flagged ``poor_fit_chi2``.
    rows : array-like of int, optional
        Which rows of the input table ``catalog`` holds (recorded in the resume key).
    floor : float or array_like of shape (5,), optional
        Systematic floor per band (mag) for a mask-aware posterior
        (:class:`~provabgs_sbi.inference.conditioning.Conditioning`): the errors become
        sqrt(sigma^2 + floor^2) for the flow and for the predictive check. Default the
        posterior's :attr:`~provabgs_sbi.inference.posterior.Posterior.default_floor`.
        A posterior trained without floors takes only 0 (its check keeps a 0.02 mag floor).
    overwrite : bool
        Replace an existing ``out`` and discard any ``.part`` (start afresh). Without it, an
        ``out`` that is the finished output of this very fit (same :func:`fit_settings`) is
        returned as it is, and any other existing ``out`` is refused.
    client : distributed.Client, optional
        Fit the chunks on this Dask cluster's workers (:mod:`provabgs_sbi.workflows.fit_dask`):
        each worker loads the posterior, emulator and SED model from their folders once;
        this process reads the catalog and writes the file. The result is the same file as
        without ``client`` (each chunk's draws depend only on its seed); an interrupted run
        resumes from the chunks already written.

    Raises
    ------
    OutputExistsError
        ``out`` exists, is not this fit's finished output, and not ``overwrite`` (a
        FileExistsError and a ValueError).
    SettingsMismatch
        ``<out>.part`` was made for other work and not ``overwrite``.
    ValueError
        ``n_samples`` or ``chunk`` below 1, or an empty catalog.
    """
    from provabgs_sbi.model.sed_model import SEDModel

    if int(n_samples) < 1 or int(chunk) < 1:
        raise ValueError(f"n_samples and chunk must be at least 1, got {n_samples} and {chunk}")
    n_samples, chunk = int(n_samples), int(chunk)
    n_store = n_samples if n_store is None else int(n_store)
    if not 0 <= n_store <= n_samples:
        raise ValueError(f"n_store must be in [0, n_samples={n_samples}], got {n_store}")
    if len(catalog) == 0:
        raise ValueError("the catalog has no rows to fit")
    out = Path(out)
    n_gal = len(catalog)
    id_kind = _unique_id_kind(catalog)
    in_memory = not isinstance(catalog, CatalogFile)
    lay = post.layout
    if in_memory and tuple(getattr(catalog, "bands", lay.bands)) != lay.bands:
        raise ValueError(f"the catalog has bands {list(catalog.bands)}, the posterior "
                         f"{post.survey.name!r} needs {list(lay.bands)}")
    if model is not None and hasattr(model, "with_filters"):
        model = model.with_filters(post.survey)   # the check in the posterior's bands
    x_all = catalog.to_x() if in_memory else None
    floor, floor_kw, sigma_sys = fit_floor(post, floor)
    settings = fit_settings(post, catalog.ids if in_memory else None, x_all, rows, n_samples,
                            seed, chunk, model, floor_kw.get("floor"),
                            catalog_key=None if in_memory else _file_key(catalog))
    if n_store != n_samples:
        settings["n_store"] = n_store
    if not overwrite and finished_for(out, settings):
        return out                           # this very fit is done: a rerun returns it
    out = check_output_path(out, overwrite)
    part = out.with_name(out.name + ".part")
    def read_rows(s):
        if in_memory:
            return ChunkRows.of(catalog, s, slice(s, min(s + chunk, n_gal)), x=x_all)
        return ChunkRows.of(catalog.read(s, s + chunk), s)

    with open_part(part, settings,
                    lambda fh: create_part(fh, n_gal, chunk, n_store, id_kind, lay),
                    overwrite) as fh:
        done = fh["done"][:]
        todo = [i * chunk for i in np.nonzero(~done)[0]]
        bar = progress_bar(total=n_gal, initial=n_gal - sum(min(chunk, n_gal - s) for s in todo),
                           desc="posteriors", unit="gal", disable=not progress)
        try:
            if client is None:
                job = FitJob(post, derived_model or SEDModel(post.info.get("sps", "bc03")), model,
                             n_samples, n_store, int(seed), floor_kw, sigma_sys)
                for s in todo:
                    res = fit_chunk(job, read_rows(s))
                    write_chunk(fh, s, res, chunk)
                    bar.update(len(res["x"]))
            else:
                from provabgs_sbi.workflows.fit_dask import ChunkSteps, run_chunks_on

                spec = job_spec(post, derived_model, model, n_samples, n_store, int(seed), floor_kw,
                                sigma_sys)
                steps = ChunkSteps(load_spec_models, job_from_spec, fit_chunk)
                for s, res in run_chunks_on(client, spec, todo, read_rows, steps):
                    write_chunk(fh, s, res, chunk)
                    bar.update(len(res["x"]))
        finally:
            bar.close()             # the bar's line ends before any message that follows
        write_summary(fh)
        del fh["work"]
        del fh["done"]
        names = list(PARAM_NAMES) + list(DERIVED)
        fh.attrs["flag_names"] = json.dumps({str(k): v for k, v in FIT_FLAG_NAMES.items()})
        fh.attrs["param_names"] = json.dumps(list(PARAM_NAMES))
        fh.attrs["derived_names"] = json.dumps(list(DERIVED))
        fh.attrs["bands"] = json.dumps(list(lay.bands))
        fh.attrs["floor"] = json.dumps([float(f) for f in floor_kw.get("floor",
                                                                      np.zeros(lay.n_bands))])
        fh.attrs["ppc_sigma_sys"] = json.dumps(np.broadcast_to(sigma_sys, (lay.n_bands,)).tolist())
        if post.survey.name != "sdss_ugriz":
            fh.attrs["survey"] = json.dumps(post.survey.to_dict())
        describe_datasets(fh, names, lay)
    return finish(part, out)


def job_spec(post, derived_model, model, n_samples, n_store, seed, floor_kw, sigma_sys) -> dict:
    """A :class:`FitJob` described by folders and values, to rebuild it in another process
    (:func:`job_from_spec`): the posterior and the emulator by the folders they were loaded
    from; any other model or derived model is sent as it is (it must pickle)."""
    folder = getattr(post, "folder", None)
    if folder is None:
        raise ValueError("a Dask fit needs a posterior loaded from its folder (Posterior.load)")
    model_folder = getattr(model, "folder", None)
    return {"posterior": str(folder),
            "model": None if model is None else (str(model_folder) if model_folder else model),
            "derived_model": derived_model, "n_samples": n_samples, "n_store": n_store,
            "seed": seed, "floor_kw": {k: np.asarray(v).tolist() for k, v in floor_kw.items()},
            "sigma_sys": np.asarray(sigma_sys).tolist()}


def job_from_spec(spec: dict, loaded: tuple | None = None) -> FitJob:
    """The :class:`FitJob` of a :func:`job_spec` (folders loaded and their hashes verified).

    ``loaded``: the (posterior, model, derived model) of :func:`load_spec_models`, when the
    caller keeps them between jobs (a Dask worker loads them once for every fit)."""
    post, model, derived = loaded if loaded is not None else load_spec_models(spec)
    floor_kw = {k: np.asarray(v) for k, v in spec["floor_kw"].items()}
    return FitJob(post, derived, model, spec["n_samples"], spec["n_store"], spec["seed"],
                  floor_kw, np.asarray(spec["sigma_sys"]) if np.ndim(spec["sigma_sys"])
                  else float(spec["sigma_sys"]))


def load_spec_models(spec: dict) -> tuple:
    """(posterior, predictive-check model, derived model) of a :func:`job_spec`: folders
    loaded, objects as they are."""
    from provabgs_sbi.emulator import Emulator
    from provabgs_sbi.model.sed_model import SEDModel

    post = Posterior.load(spec["posterior"])
    model = spec.get("model")
    if isinstance(model, str):
        model = Emulator.load(model).with_filters(post.survey)
    derived = spec.get("derived_model") or SEDModel(post.info.get("sps", "bc03"))
    return post, model, derived

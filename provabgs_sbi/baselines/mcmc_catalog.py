"""MCMC of many catalog galaxies into one resumable HDF5 file, and reading it back.

The file is a :mod:`provabgs_sbi.io.h5store` store of one group per galaxy: root
attributes ``kind`` = "provabgs_sbi.mcmc", ``version``, ``settings`` (JSON: the
:class:`~provabgs_sbi.baselines.sampler.MCMCConfig`, seed, prior, ``n_save`` and the model's
class, SSP hash and manifest SHA-256, checked on resume), ``param_names``,
``warped_names``, ``catalog_source``, ``catalog_sha256``; one group ``row_<r>`` per row
with datasets ``samples`` (n, 12), ``samples_warped`` (n, 11), ``log_prob`` (n,),
``derived/<name>`` (n,) and attributes ``row``, ``id``, ``z``, ``x``, ``status`` ("ok" or
"failed"), ``error``, the convergence report (``tau``, ``n_eff``, ``rhat``, ``tau_ok``,
``rhat_ok``, ``converged``, ``criteria``, ``n_post``), ``timing`` (JSON), ``flux`` and
``ivar``.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict

import h5py
import numpy as np

from provabgs_sbi._version import __version__
from provabgs_sbi.baselines.sampler import MCMCConfig, MCMCResult, run_mcmc
from provabgs_sbi.experimental.neutra import flow_description, preconditioning_flow
from provabgs_sbi.flags import CATALOG_FLAG_NAMES, FLAGS_UNCONVERTIBLE
from provabgs_sbi.io.h5store import open_store, settings_json, write_group
from provabgs_sbi.model.parameters import PARAM_NAMES, WARPED_NAMES
from provabgs_sbi.model.priors import Prior

#: The ``kind`` attribute of an MCMC results file.
KIND = "provabgs_sbi.mcmc"
#: Attributes of a finished row that hold its convergence report.
_CONVERGENCE_ATTRS = ("tau", "n_eff", "rhat", "tau_ok", "rhat_ok", "converged", "criteria",
                      "n_post")


def _row_name(row: int) -> str:
    return f"row_{int(row)}"


def _model_description(model) -> dict:
    desc = {"class": type(model).__name__}
    ssp_hash = getattr(model, "ssp_hash", None) or getattr(getattr(model, "burst_model", None),
                                                          "ssp_hash", None)
    if ssp_hash:
        desc["ssp_hash"] = str(ssp_hash)
    manifest = getattr(model, "manifest_sha256", None)      # tells apart emulators of one table
    if manifest:
        desc["manifest_sha256"] = str(manifest)
    return desc


def _same_settings(stored: dict, wanted: dict) -> bool:
    """Whether a results file's settings are these. Files written before the emulator's
    manifest SHA-256 was recorded (when one bc03 emulator existed) keep resuming."""
    if "manifest_sha256" not in stored.get("model", {}):
        wanted = {**wanted, "model": {k: v for k, v in wanted.get("model", {}).items()
                                      if k != "manifest_sha256"}}
    return stored == wanted


def _same_settings_json(stored: str, wanted: str) -> bool:
    return _same_settings(json.loads(stored), json.loads(wanted))


def _open_catalog(catalog_or_path):
    from astropy.table import Table

    from provabgs_sbi.io.catalog import PhotometryCatalog, read_catalog

    if isinstance(catalog_or_path, PhotometryCatalog):
        return catalog_or_path
    if isinstance(catalog_or_path, (str, os.PathLike, Table)):
        return read_catalog(catalog_or_path)
    raise ValueError("catalog must be a PhotometryCatalog, an astropy Table or a file path; "
                     f"got {type(catalog_or_path).__name__}")


def _settings(config: MCMCConfig, flow, seed: int, prior, n_save, model) -> dict:
    """What a results file records and checks on resume (its JSON is unchanged from the
    files written before this module existed)."""
    config_dict = asdict(config)
    config_dict["move"] = "differential"    # zeus's move, once an option; files record it
    if flow is None:
        del config_dict["precondition"]     # files written before preconditioning keep resuming
    settings = {"config": config_dict, "seed": int(seed),
                "prior": getattr(prior, "kind", type(prior).__name__),
                "n_save": None if n_save is None else int(n_save),
                "model": _model_description(model)}
    if flow is not None:
        settings["precondition"] = flow_description(flow)
    return settings


def _write_result(group, res: MCMCResult, n_save: int | None) -> None:
    sl = slice(None) if n_save is None else slice(-int(n_save), None)
    kw = {"compression": "gzip", "shuffle": True}
    group.create_dataset("samples", data=res.samples[sl], **kw)
    group.create_dataset("samples_warped", data=res.samples_warped[sl], **kw)
    group.create_dataset("log_prob", data=res.log_prob[sl], **kw)
    if res.derived is not None:
        sub = group.create_group("derived")
        for k, v in res.derived.items():
            sub.create_dataset(k, data=np.asarray(v)[sl], **kw)
    conv = res.convergence
    for k in ("tau", "n_eff", "rhat", "tau_ok", "rhat_ok"):
        group.attrs[k] = np.asarray(conv[k])
    group.attrs["converged"] = bool(conv["converged"])
    group.attrs["criteria"] = conv["criteria"]
    group.attrs["n_post"] = int(conv["n_post"])
    group.attrs["timing"] = settings_json(res.timing)
    group.attrs["flux"] = res.flux
    group.attrs["ivar"] = res.ivar


def run_mcmc_catalog(catalog_or_path, rows, model, out, n_walkers: int = 30,
                     n_steps: int = 10000, burn_in: int = 2000, seed: int = 0,
                     progress: bool = True, *, prior: Prior | None = None, thin: int = 1,
                     n_save: int | None = None, derived_model=None,
                     compute_derived: bool = True, retry_failed: bool = False,
                     blas_threads: int | None = 1, likelihood: str = "flux",
                     precondition=None) -> dict:
    """Run :func:`run_mcmc` on selected catalog rows, writing an HDF5 file; resumable.

    Parameters
    ----------
    catalog_or_path : PhotometryCatalog, astropy Table or path
        Read with :func:`~provabgs_sbi.io.catalog.read_catalog` unless already a catalog.
        Each row is fitted with its x (:meth:`PhotometryCatalog.to_x`) and the catalog's
        flux inverse variances (``ivar=``).
    rows : sequence of int or None
        Row indices to fit (None: every row).
    model : object
        As for :func:`run_mcmc`.
    out : path-like
        HDF5 output. Created if missing; otherwise its settings must match.
    n_walkers, n_steps, burn_in, progress, prior, thin, derived_model, compute_derived, blas_threads
        As for :func:`run_mcmc`.
    seed : int
        Row ``r`` is sampled with ``numpy.random.SeedSequence([seed, r])``, so a row's
        result does not depend on which other rows are fitted or in which call.
    n_save : int, optional
        Keep only the last ``n_save`` samples per row (SEDflow keeps 10,000); default all.
    retry_failed : bool
        Re-run rows stored as failed (default: skip them like finished rows).
    likelihood : {"flux", "mag"}
        "flux" uses the catalog's inverse variances; "mag" the magnitude errors of its x.
    precondition : ConditionalFlow, FlowEnsemble or Posterior, optional
        As for :func:`run_mcmc`; the flow's identity
        (:func:`~provabgs_sbi.experimental.neutra.flow_description`) is part of the file's settings.

    Returns
    -------
    dict
        ``done`` (rows fitted now), ``skipped`` (already in the file), ``failed`` (rows
        whose input or model raised ValueError/RuntimeError now; stored with their error).

    Notes
    -----
    The file's layout is in the module docstring. Each row is written into a temporary
    group and renamed to ``row_<r>`` only when complete
    (:func:`~provabgs_sbi.io.h5store.write_group`), so a crash leaves at most a temporary
    group, which the next call deletes; the file itself is created under a temporary name
    and renamed. (A crash inside HDF5's own write can still damage the file, as with any
    HDF5 file.)
    """
    catalog = _open_catalog(catalog_or_path)
    n_rows = len(catalog)
    rows = list(range(n_rows)) if rows is None else [int(r) for r in np.atleast_1d(rows)]
    bad = [r for r in rows if not 0 <= r < n_rows]
    if bad:
        raise ValueError(f"rows {bad[:5]} are outside the catalog (0 .. {n_rows - 1})")
    prior = Prior() if prior is None else prior
    flow = None if precondition is None else preconditioning_flow(precondition)
    config = MCMCConfig(n_walkers=n_walkers, n_steps=n_steps, burn_in=burn_in, thin=thin,
                        likelihood=likelihood, init="resample" if flow is None else "flow",
                        precondition="none" if flow is None else "flow")
    if n_save is not None and int(n_save) < 1:
        raise ValueError(f"n_save must be >= 1 or None, got {n_save}")
    settings = settings_json(_settings(config, flow, seed, prior, n_save, model))

    if os.path.exists(out):
        with h5py.File(out, "r") as fh:
            if fh.attrs.get("kind") != KIND:
                raise ValueError(f"{out} is not a provabgs_sbi MCMC results file")

    def create(fh):
        fh.attrs["kind"] = KIND
        fh.attrs["version"] = __version__
        fh.attrs["param_names"] = list(PARAM_NAMES)
        fh.attrs["warped_names"] = list(WARPED_NAMES)
        fh.attrs["catalog_source"] = str(catalog.source)
        fh.attrs["catalog_sha256"] = str(catalog.source_sha256 or "")

    with open_store(out, settings, create, same=_same_settings_json, atomic_create=True):
        pass                                # checked, and interrupted writes cleaned up

    x_all = catalog.to_x()
    summary = {"done": [], "skipped": [], "failed": []}
    bar = None
    if progress:
        from provabgs_sbi.progress import progress_bar
        bar = progress_bar(total=len(rows), desc="galaxies")
    for r in rows:
        name = _row_name(r)
        with h5py.File(out, "r") as fh:
            existing = fh[name].attrs.get("status") if name in fh else None
        if existing == "ok" or (existing == "failed" and not retry_failed):
            summary["skipped"].append(r)
            if bar is not None:
                bar.update()
            continue
        res, error = None, ""
        bad_flags = [n for bit, n in CATALOG_FLAG_NAMES.items()
                     if catalog.flags[r] & bit & FLAGS_UNCONVERTIBLE]
        try:
            if bad_flags:
                raise ValueError(f"catalog row {r} cannot be fitted: flagged {', '.join(bad_flags)}")
            res = run_mcmc(x_all[r], model, n_walkers=config.n_walkers, n_steps=config.n_steps,
                           burn_in=config.burn_in, thin=config.thin,
                           seed=np.random.SeedSequence([int(seed), r]), prior=prior,
                           progress=progress,
                           ivar=catalog.ivar[r] if likelihood == "flux" else None,
                           derived_model=derived_model, compute_derived=compute_derived,
                           blas_threads=blas_threads, likelihood=likelihood, precondition=flow)
        except (ValueError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"

        def fill(g):
            g.attrs["row"] = r
            g.attrs["id"] = str(catalog.ids[r])
            g.attrs["z"] = float(catalog.z[r])
            g.attrs["x"] = x_all[r]
            g.attrs["error"] = error
            g.attrs["status"] = "ok" if res is not None else "failed"
            if res is not None:
                _write_result(g, res, n_save)

        with h5py.File(out, "a") as fh:
            write_group(fh, name, fill)         # replaces a failed row being retried
        summary["done" if res is not None else "failed"].append(r)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return summary


def read_mcmc_row(path, row: int) -> dict:
    """Read one row written by :func:`run_mcmc_catalog`.

    Returns
    -------
    dict
        ``status``, ``error``, ``id``, ``z``, ``x`` and, for finished rows, ``samples``
        (n, 12), ``samples_warped`` (n, 11), ``log_prob`` (n,), ``derived`` (dict or None),
        ``convergence`` (dict: tau, n_eff, rhat, converged, ...) and ``timing`` (dict).
    """
    with h5py.File(path, "r") as fh:
        name = _row_name(row)
        if name not in fh:
            raise KeyError(f"row {row} is not in {path}")
        g = fh[name]
        out = {k: g.attrs[k] for k in ("status", "error", "id", "z", "x")}
        if out["status"] == "ok":
            out["samples"] = g["samples"][()]
            out["samples_warped"] = g["samples_warped"][()]
            out["log_prob"] = g["log_prob"][()]
            out["derived"] = ({k: v[()] for k, v in g["derived"].items()}
                              if "derived" in g else None)
            out["convergence"] = {k: g.attrs[k] for k in _CONVERGENCE_ATTRS}
            out["timing"] = json.loads(g.attrs["timing"])
    return out


__all__ = ["KIND", "read_mcmc_row", "run_mcmc_catalog"]

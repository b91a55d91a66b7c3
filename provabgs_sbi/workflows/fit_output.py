"""The output file of a catalog fit: its datasets, their units, and the ``.part`` file a fit
writes chunk by chunk (:func:`~provabgs_sbi.workflows.fit.fit_catalog` describes the layout).

Nothing here fits a galaxy: :mod:`provabgs_sbi.workflows.fit` computes each chunk's
results and calls :func:`create_part`, :func:`write_chunk` and :func:`write_summary` to
store them, :func:`describe_datasets` to label them; :func:`check_output_path`,
:func:`open_part` and :func:`finished_for` keep a fit from replacing what it should not.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.io.h5store import SettingsMismatch, commit, open_store, settings_json
from provabgs_sbi.model.observation import XLayout
from provabgs_sbi.model.parameters import N_PARAMS, PARAM_NAMES, PARAM_UNITS, from_warped, to_warped
from provabgs_sbi.model.priors import HIGH, LOW

__all__ = ["DERIVED", "DERIVED_UNITS", "OutputExistsError", "check_output_path", "create_part",
           "describe_datasets", "finished_for", "open_part", "stored_ids", "stored_samples",
           "summary_units", "write_chunk", "write_summary", "x_units"]

#: Derived properties stored per draw (SEDModel.derived), in the order of the output.
DERIVED = ("log_mstar_surviving", "sfr_100myr", "sfr_1gyr", "log_ssfr_1gyr", "z_mw", "tage_mw")
#: Unit of each derived property ("" = dimensionless), in the order of DERIVED.
DERIVED_UNITS = ("log10(Msun)", "Msun/yr", "Msun/yr", "log10(1/yr)", "", "Gyr")


def x_units(layout: XLayout) -> tuple[str, ...]:
    """Unit of each column of x, in the order of ``layout.names``."""
    return ("mag (AB)",) * layout.n_bands + ("mag",) * layout.n_bands + ("",)


def _float32_inside(bound: np.ndarray, inward: np.ndarray, inside) -> np.ndarray:
    """The float32 nearest to each ``bound`` for which ``inside(value)`` holds, stepping
    towards ``inward`` (one float32 at a time) when the rounded bound is outside."""
    out = bound.astype(np.float32)
    for _ in range(8):
        bad = ~inside(out)
        if not np.any(bad):
            return out
        out[bad] = np.nextafter(out[bad], inward[bad].astype(np.float32))
    raise AssertionError("no float32 inside the prior box near its bounds")


def _physical_box_float32() -> tuple[np.ndarray, np.ndarray]:
    """Per physical parameter (PARAM_NAMES order), the smallest and largest float32 whose
    warped value lies inside the prior's box ``[LOW, HIGH]`` (the betas: [0, 1])."""
    # Corners of the warped box mapped to physical coordinates; the betas' bounds are 0, 1.
    low, high = from_warped(LOW[None])[0], from_warped(HIGH[None])[0]
    low[1:5], high[1:5] = 0.0, 1.0

    def inside_box(values):
        theta = np.tile(from_warped(((LOW + HIGH) / 2)[None]), (len(values), 1))
        idx = np.arange(N_PARAMS)
        theta[idx, idx] = values.astype(np.float64)
        w = to_warped(theta)
        ok = np.ones(N_PARAMS, dtype=bool)
        for j, wj in ((0, 0), (5, 4), (6, 5), (7, 6), (8, 7), (9, 8), (10, 9), (11, 10)):
            ok[j] = LOW[wj] <= w[j, wj] <= HIGH[wj]
        ok[1:5] = (0.0 <= values[1:5]) & (values[1:5] <= 1.0)
        return ok

    return (_float32_inside(low, high, inside_box), _float32_inside(high, low, inside_box))


def stored_samples(samples: np.ndarray) -> np.ndarray:
    """Physical samples (..., 12) as stored: float32 inside the prior's box.

    Rounding to float32 can put a sample at a bound just outside it (tburst = 13.27 becomes
    13.2700005 > 13.27, where ``Prior.log_prob`` is -inf); such values are moved to the
    nearest float32 inside. Other values and NaN are the plain float32 cast.

    Parameters
    ----------
    samples : ndarray of shape (..., 12)
        Physical parameters in the order of PARAM_NAMES.

    Returns
    -------
    ndarray of float32, same shape
    """
    low, high = _physical_box_float32()
    return np.clip(samples.astype(np.float32), low, high)


def summary_units() -> dict[str, str]:
    """Unit of each column of a fit's ``summary`` table ("" = dimensionless or a code)."""
    units = {"id": "", "z": "", "flags": "", "bad_bands": "", "bands_used": "", "reason": "",
             "chi2_best": ""}
    for name, unit in zip(list(PARAM_NAMES) + list(DERIVED), PARAM_UNITS + DERIVED_UNITS):
        for tag in ("p16", "p50", "p84"):
            units[f"{name}_{tag}"] = unit
    return units


def describe_datasets(fh, names, layout: XLayout) -> None:
    """Column names and units as attributes of every dataset of a fit's output (``layout``:
    the posterior's bands)."""
    js = json.dumps
    if "samples" in fh:                      # absent when only summaries are stored
        fh["samples"].attrs.update(columns=js(list(PARAM_NAMES)), units=js(list(PARAM_UNITS)),
                                   axes=js(["galaxy", "draw", "parameter"]))
        for name, unit in zip(DERIVED, DERIVED_UNITS):
            fh[f"derived/{name}"].attrs.update(unit=unit, axes=js(["galaxy", "draw"]))
    fh["stats"].attrs.update(quantities=js(names), units=js(list(PARAM_UNITS + DERIVED_UNITS)),
                             percentiles=js([16, 50, 84]),
                             axes=js(["galaxy", "quantity", "percentile"]))
    fh["x"].attrs.update(columns=js(list(layout.names)), units=js(list(x_units(layout))))
    fh["chi2_best"].attrs.update(unit="", description=(
        "smallest chi^2 over the first 32 draws against the catalog fluxes, with a 0.02 mag "
        "floor; NaN without samples or without a predictive check"))
    fh["model_flux_best"].attrs.update(columns=js(list(layout.bands)), unit="nanomaggy (AB)")
    bits = js({b: 1 << j for j, b in enumerate(layout.bands)})
    fh["summary"].attrs.update(units=js(summary_units()), bad_bands_bits=bits, bands_used_bits=bits)


class OutputExistsError(FileExistsError, ValueError):
    """The output would replace an input, or an existing file without ``overwrite`` (a
    ValueError too, so that the command line reports it in one line)."""


def check_output_path(out, overwrite: bool = False, inputs=()) -> Path:
    """Refuse an output that would replace an input or, unless ``overwrite``, any file.

    Parameters
    ----------
    out : path-like
    overwrite : bool
        Allow replacing an existing ``out`` (never an input).
    inputs : sequence of path-like
        Files the job reads (the catalog).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    OutputExistsError
        ``out`` is one of ``inputs`` (same resolved path), or exists and not ``overwrite``.
    """
    out = Path(out)
    for src in inputs:
        if out.resolve() == Path(src).resolve():
            raise OutputExistsError(f"the output {out} is the input catalog; choose another --out")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    return out


def finished_for(out: Path, settings: dict) -> bool:
    """Whether ``out`` is the finished output of the fit these ``settings`` describe."""
    if not out.is_file():
        return False
    import h5py

    try:
        with h5py.File(out, "r") as fh:
            stored = fh.attrs.get("settings")
    except OSError:
        return False
    return stored == settings_json(settings)


def open_part(part: Path, settings: dict, create, overwrite: bool):
    """Open the ``.part`` file of this fit: deleted first if ``overwrite``; refused with a
    message naming what differs if it was made for other work."""
    if overwrite and part.exists():
        part.unlink()
    try:
        fh = open_store(part, settings, create, on_mismatch="raise")
    except SettingsMismatch:
        import h5py

        with h5py.File(part, "r") as fh:
            stored = json.loads(fh.attrs.get("settings", "{}"))
        differ = sorted(k for k in set(stored) | set(settings)
                        if settings_json({"v": stored.get(k)}) != settings_json({"v": settings.get(k)}))
        raise SettingsMismatch(
            f"{part} holds an interrupted fit of other work (differs in: {', '.join(differ)}); "
            "it is not merged. To start afresh delete it or pass overwrite=True (--overwrite); "
            "to resume it rerun with its inputs.") from None
    if "done" not in fh:                     # a .part of the format before per-chunk marks
        fh.close()
        raise SettingsMismatch(f"{part} was written by an older version of provabgs-sbi and "
                               "cannot be resumed; delete it or pass overwrite=True (--overwrite)")
    return fh


def _width(texts) -> int:
    """Longest UTF-8 length among ``texts``."""
    return max((len(t.encode("utf-8")) for t in texts), default=1)


def stored_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as the output stores them: integers as int64, text as UTF-8 bytes."""
    if ids.dtype.kind in "UO":
        return np.char.encode(ids.astype(str), "utf-8")
    if ids.dtype.kind in "iub":
        return ids.astype(np.int64)
    return ids


def create_part(fh, n_gal: int, chunk: int, n_store: int, id_kind: str,
                 layout: XLayout) -> None:
    """The datasets of an unfinished fit (``work/`` holds what becomes ``summary``)."""
    import h5py

    rows = max(1, min(chunk, n_gal))
    n_q = N_PARAMS + len(DERIVED)
    if n_store:
        fh.create_dataset("samples", shape=(n_gal, n_store, 12), dtype="f4",
                          chunks=(rows, n_store, 12))
        for name in DERIVED:
            fh.create_dataset(f"derived/{name}", shape=(n_gal, n_store), dtype="f4",
                              chunks=(rows, n_store))
    fh.create_dataset("stats", shape=(n_gal, n_q, 3), dtype="f8", chunks=(rows, n_q, 3),
                      fillvalue=np.nan)
    fh.create_dataset("chi2_best", shape=(n_gal,), dtype="f8", fillvalue=np.nan)
    fh.create_dataset("model_flux_best", shape=(n_gal, layout.n_bands), dtype="f8",
                      fillvalue=np.nan)
    fh.create_dataset("x", shape=(n_gal, layout.size), dtype="f8", fillvalue=np.nan)
    text = h5py.string_dtype("utf-8")
    fh.create_dataset("work/ids", shape=(n_gal,), dtype=np.int64 if id_kind == "int" else text)
    for name in ("flags", "bad_bands", "bands_used"):
        fh.create_dataset(f"work/{name}", shape=(n_gal,), dtype=np.int32)
    fh.create_dataset("work/reason", shape=(n_gal,), dtype=text)
    fh.create_dataset("done", shape=(-(-n_gal // chunk),), dtype=bool)   # per chunk
    fh.attrs["n_done"] = 0


def write_chunk(fh, start: int, res: dict, chunk: int) -> None:
    """One chunk's results into the ``.part`` file, then its ``done`` mark (committed)."""
    sl = slice(start, start + len(res["x"]))
    if "samples" in res:
        fh["samples"][sl] = res["samples"]
        for k in DERIVED:
            fh[f"derived/{k}"][sl] = res["derived"][k]
    for name in ("stats", "chi2_best", "model_flux_best", "x"):
        fh[name][sl] = res[name]
    ids = res["ids"]
    fh["work/ids"][sl] = ids if ids.dtype.kind == "i" else [i.decode("utf-8") for i in ids]
    for name in ("flags", "bad_bands", "bands_used", "reason"):
        fh[f"work/{name}"][sl] = res[name]
    fh["done"][start // chunk] = True
    commit(fh, n_done=int(fh.attrs["n_done"]) + len(res["x"]))     # rows written so far


def _text(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def write_summary(fh, block: int = 100_000) -> None:
    """``summary`` from ``work/`` and ``stats``, ``block`` rows at a time (bounded memory);
    text columns get the width of their longest value."""
    n_gal = len(fh["x"])
    names = list(PARAM_NAMES) + list(DERIVED)
    work = fh["work"]
    text_ids = work["ids"].dtype.kind != "i"
    w_reason, w_id = 1, 1
    for s in range(0, n_gal, block):
        w_reason = max(w_reason, _width(_text(work["reason"][s:s + block])))
        if text_ids:
            w_id = max(w_id, _width(_text(work["ids"][s:s + block])))
    dtype = [("id", f"S{w_id}" if text_ids else "<i8"), ("z", "<f8"), ("flags", "<i4"),
             ("bad_bands", "<i4"), ("bands_used", "<i4"), ("reason", f"S{w_reason}"),
             ("chi2_best", "<f8")]
    dtype += [(f"{name}_{tag}", "<f8") for name in names for tag in ("p16", "p50", "p84")]
    if "summary" in fh:
        del fh["summary"]
    summary = fh.create_dataset("summary", shape=(n_gal,), dtype=dtype)
    for s in range(0, n_gal, block):
        sl = slice(s, min(s + block, n_gal))
        arr = np.zeros(sl.stop - s, dtype=dtype)
        ids = work["ids"][sl]
        arr["id"] = np.char.encode(_text(ids), "utf-8") if text_ids else ids
        xs = fh["x"][sl]
        arr["z"] = xs[:, -1]                                 # the last column of x
        for name in ("flags", "bad_bands", "bands_used"):
            arr[name] = work[name][sl]
        arr["reason"] = np.char.encode(_text(work["reason"][sl]), "utf-8")
        arr["chi2_best"] = fh["chi2_best"][sl]
        stats = fh["stats"][sl]
        for j, name in enumerate(names):
            for q, tag in enumerate(("p16", "p50", "p84")):
                arr[f"{name}_{tag}"] = stats[:, j, q]
        summary[sl] = arr

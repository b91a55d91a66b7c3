"""Why a galaxy was flagged, in words: one short text per catalog row, naming the band
and the value at fault (the ``reason`` column of a catalog fit's summary), and the
bands involved as a bit mask (``bad_bands``)."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.flags import (FLAG_CHECK_FAILED, FLAG_FLOW_FAILED, FLAG_INVALID_X,
                                FLAG_POOR_FIT, FLAG_TOO_FEW_BANDS, FLAG_Z_RANGE)
from provabgs_sbi.model.observation import SDSS as XL, Z_MIN


def bad_band_mask(problems: dict[str, np.ndarray]) -> np.ndarray:
    """Bit mask of the bands with any problem: bit b (value 2**b) for band b.

    Parameters
    ----------
    problems : dict of str -> ndarray of shape (N, n_bands), bool
        As returned by :meth:`provabgs_sbi.inference.posterior.Posterior.band_problems`.

    Returns
    -------
    ndarray of shape (N,), int32
    """
    any_bad = np.zeros_like(next(iter(problems.values())), dtype=bool)
    for mask in problems.values():
        any_bad |= mask
    return (any_bad * (1 << np.arange(any_bad.shape[1]))).sum(axis=1).astype(np.int32)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else str(v)


def row_reasons(x, flags, problems, z_range, chi2=None, chi2_limit=None,
                flux=None, min_bands: int | None = None, layout=XL) -> np.ndarray:
    """A short text per row saying what each set flag refers to; "" for rows without flags.

    Parameters
    ----------
    x : ndarray of shape (N, 11)
        The rows' conditioning vectors (NaN where a band is missing).
    flags : ndarray of shape (N,)
        Fit flags (:data:`provabgs_sbi.flags.FIT_FLAG_NAMES`).
    problems : dict of str -> ndarray of shape (N, 5), bool
        ``missing``, ``mag_range``, ``sigma_high`` per band (``Posterior.band_problems``).
    z_range : (float, float)
        The posterior's trained redshift range.
    chi2 : ndarray of shape (N,), optional
        Best-draw chi^2 of the predictive check.
    chi2_limit : float or ndarray of shape (N,), optional
        The chi^2 above which ``poor_fit_chi2`` is set (per row: it depends on the number
        of bands present).
    flux : ndarray of shape (N, 5), optional
        The catalog's AB nanomaggies, to tell a flux <= 0 from a missing value.
    min_bands : int, optional
        Bands the posterior needs (default: all), quoted for ``too_few_bands``.

    Returns
    -------
    ndarray of shape (N,), str
        E.g. ``"missing band: u (flux -0.3 nmgy <= 0), z; mag outside training range: g=23.1"``.
    """
    x = np.asarray(x, dtype=np.float64)
    flags = np.asarray(flags)
    bands = layout.bands
    out = np.full(len(x), "", dtype=object)
    limit = None if chi2_limit is None else np.broadcast_to(np.asarray(chi2_limit, float), (len(x),))
    for i in np.nonzero(flags)[0]:
        parts = []
        z = float(layout.redshift(x[i]))
        if flags[i] & FLAG_INVALID_X:
            parts.append(f"redshift not a number ({z})")
        if flags[i] & FLAG_Z_RANGE:
            parts.append(f"z={_fmt(z)} <= minimum {Z_MIN}" if z <= Z_MIN
                         else f"z={_fmt(z)} outside trained {z_range[0]:g}-{z_range[1]:g}")
        miss = np.nonzero(problems["missing"][i])[0]
        if len(miss):
            names = []
            for b in miss:
                f = None if flux is None else flux[i, b]
                names.append(f"{bands[b]} (flux {f:.3g} nmgy <= 0)"
                             if f is not None and np.isfinite(f) and f <= 0 else bands[b])
            parts.append("missing band: " + ", ".join(names))
        if flags[i] & FLAG_TOO_FEW_BANDS:
            need = len(bands) if min_bands is None else min_bands
            parts.append(f"{len(bands) - len(miss)} of {len(bands)} bands present, "
                         f"the posterior needs {need}")
        mags, errs = layout.mags(x[i]), layout.errors(x[i])
        for key, text, vals in (("mag_range", "mag outside training range", mags),
                                ("sigma_high", "error above noise model", errs)):
            sel = np.nonzero(problems[key][i])[0]
            if len(sel):
                parts.append(f"{text}: " + ", ".join(f"{bands[b]}={vals[b]:.3g}" for b in sel))
        if flags[i] & FLAG_FLOW_FAILED:
            parts.append("flow gave no finite draw")
        if flags[i] & FLAG_POOR_FIT and chi2 is not None:
            parts.append(f"chi2_best={chi2[i]:.1f} > {limit[i]:.1f}")
        if flags[i] & FLAG_CHECK_FAILED:
            parts.append("predictive check gave no finite chi2")
        out[i] = "; ".join(parts)
    return out.astype(str)

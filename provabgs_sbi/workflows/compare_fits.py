"""Two fits of the same galaxies, compared galaxy by galaxy (issue 20, item 5).

Typical use: the kcorrect sample fitted by the ten-band ``galex_sdss_2mass`` posterior with
all its bands, against a fit with ugriz only (the same posterior with the other bands
masked, which isolates what the extra bands add, or the SDSS ugriz posterior, which also
changes the model). For each quantity, per group of galaxies (which extra bands the second
fit used):

* **tightening**: the ratio of the central 68% interval widths, w_b / w_a (below 1: the
  second fit is tighter);
* **agreement**: the pull (p50_b - p50_a) / sqrt(s_a^2 + s_b^2), s = half the 68% width.
  The two fits share most of their data, so their errors are correlated and |pull| < 1 for
  more than 68% of the galaxies when they agree; a median |pull| near or above 1 is a
  disagreement beyond the errors.

SFR is compared as log10 of ``sfr_1gyr`` with the percentiles clipped at
:data:`SFR_MIN` (a quiescent galaxy's 16th percentile may be 0): percentiles of a monotonic
function are the function of the percentiles, so no samples are needed.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi.flags import has_samples

__all__ = ["QUANTITIES", "SFR_MIN", "read_fit_summary", "compare_fits", "plot_fit_comparison"]

#: Quantities compared: summary column name -> label.
QUANTITIES = {"log_mstar_surviving": r"log $M_*$ [$M_\odot$]",
              "log_sfr_1gyr": r"log SFR$_{1\,\rm Gyr}$ [$M_\odot$/yr]",
              "tau_ism": r"$\tau_{\rm ISM}$ (diffuse dust)",
              "tau_bc": r"$\tau_{\rm BC}$ (birth-cloud dust)"}
#: Floor of SFR before the logarithm, Msun/yr.
SFR_MIN = 1e-3


def read_fit_summary(path) -> tuple[np.ndarray, tuple]:
    """A fit's ``summary`` table and its bands (in the order of the ``bands_used`` bits).

    Parameters
    ----------
    path : path-like
        HDF5 written by :func:`~provabgs_sbi.workflows.fit.fit_catalog`.

    Returns
    -------
    summary : numpy structured array of shape (N,)
    bands : tuple of str
    """
    with h5py.File(path, "r") as fh:
        s = fh["summary"][:]
        bits = json.loads(fh["summary"].attrs["bands_used_bits"])
    return s, tuple(sorted(bits, key=bits.get))


def _percentiles(s, name):
    """(p16, p50, p84) of one quantity, shape (N, 3)."""
    if name == "log_sfr_1gyr":
        v = np.column_stack([s[f"sfr_1gyr_{t}"] for t in ("p16", "p50", "p84")])
        return np.log10(np.maximum(v, SFR_MIN))
    return np.column_stack([s[f"{name}_{t}"] for t in ("p16", "p50", "p84")])


def _group_names(used_a, bands_a, used_b, bands_b):
    """Per galaxy, the bands fit b used that fit a did not (by name), e.g. "+NUV, J"."""
    names = np.empty(len(used_b), dtype=object)
    for i, (ua, ub) in enumerate(zip(used_a, used_b)):
        had = {b for j, b in enumerate(bands_a) if ua >> j & 1}
        got = [b for j, b in enumerate(bands_b) if ub >> j & 1 and b not in had]
        names[i] = "+" + ", ".join(got) if got else "no extra band"
    return names


def compare_fits(fit_a, fit_b, quantities=tuple(QUANTITIES), min_group: int = 20,
                 label_a: str = "a", label_b: str = "b") -> dict:
    """Galaxy-by-galaxy widths and offsets of two fits of one catalog (matched by id).

    Parameters
    ----------
    fit_a, fit_b : path-like
        Fit files (:func:`~provabgs_sbi.workflows.fit.fit_catalog`), e.g. ugriz only (a)
        and all bands (b). Galaxies with samples in both are compared.
    quantities : sequence of str
        Keys of :data:`QUANTITIES` (or any parameter or derived property of the summary).
    min_group : int
        Galaxies are grouped by the bands fit b used and fit a did not (``bands_used`` of
        each galaxy, matched by band name); groups with fewer galaxies are pooled into
        "other".
    label_a, label_b : str
        Names recorded in the result.

    Returns
    -------
    dict
        ``n_matched``; ``groups`` ({group: count}); ``quantities``: per quantity and group
        (plus ``"all"``), ``median_width_ratio`` (w_b / w_a), ``median_abs_pull``,
        ``frac_abs_pull_lt_1`` and ``_lt_2``, ``median_offset`` (p50_b - p50_a).
        ``arrays`` holds the per-galaxy values for :func:`plot_fit_comparison`.
    """
    sa, bands_a = read_fit_summary(fit_a)
    sb, bands_b = read_fit_summary(fit_b)
    ids, ia, ib = np.intersect1d(sa["id"], sb["id"], return_indices=True)
    ok = has_samples(sa["flags"][ia]) & has_samples(sb["flags"][ib])
    ia, ib = ia[ok], ib[ok]
    if len(ia) == 0:
        raise ValueError(f"no galaxy has samples in both {fit_a} and {fit_b}")
    group = _group_names(sa["bands_used"][ia], bands_a, sb["bands_used"][ib], bands_b)
    names, counts = np.unique(group, return_counts=True)
    small = set(names[counts < min_group])
    group = np.array(["other" if g in small else g for g in group], dtype=object)
    names, counts = np.unique(group, return_counts=True)
    out = {"labels": [label_a, label_b], "n_matched": int(len(ia)),
           "groups": {str(g): int(c) for g, c in zip(names, counts)},
           "quantities": {}, "arrays": {"group": group}}
    for q in quantities:
        pa, pb = _percentiles(sa[ia], q), _percentiles(sb[ib], q)
        wa, wb = pa[:, 2] - pa[:, 0], pb[:, 2] - pb[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = wb / wa
            pull = (pb[:, 1] - pa[:, 1]) / np.hypot(wa / 2, wb / 2)
        out["arrays"][q] = {"p50_a": pa[:, 1], "p50_b": pb[:, 1], "ratio": ratio, "pull": pull}
        per = {}
        for g in ["all", *map(str, names)]:
            sel = np.ones(len(ia), bool) if g == "all" else group == g
            fin = sel & np.isfinite(ratio) & np.isfinite(pull)
            per[g] = {"n": int(fin.sum()),
                      "median_width_ratio": round(float(np.median(ratio[fin])), 4),
                      "median_abs_pull": round(float(np.median(np.abs(pull[fin]))), 4),
                      "frac_abs_pull_lt_1": round(float(np.mean(np.abs(pull[fin]) < 1)), 4),
                      "frac_abs_pull_lt_2": round(float(np.mean(np.abs(pull[fin]) < 2)), 4),
                      "median_offset": round(float(np.median(pb[fin, 1] - pa[fin, 1])), 4)}
        out["quantities"][q] = per
    return out


def plot_fit_comparison(result: dict, path) -> Path:
    """Medians of fit b against fit a, and the width ratios, per quantity and group.

    Parameters
    ----------
    result : dict
        From :func:`compare_fits`.
    path : path-like
        PNG to write.
    """
    from provabgs_sbi.plots._mpl import pyplot

    plt = pyplot()
    qs = list(result["quantities"])
    la, lb = result["labels"]
    group = result["arrays"]["group"]
    groups = sorted(result["groups"], key=lambda g: -result["groups"][g])
    colours = dict(zip(groups, plt.cm.tab10.colors))
    fig, axes = plt.subplots(2, len(qs), figsize=(4.2 * len(qs), 8), squeeze=False)
    for k, q in enumerate(qs):
        arr = result["arrays"][q]
        ax = axes[0, k]
        for g in groups[::-1]:              # the largest group drawn first, underneath
            sel = group == g
            ax.scatter(arr["p50_a"][sel], arr["p50_b"][sel], s=3, alpha=0.5, color=colours[g],
                       label=f"{g} ({result['groups'][g]})")
        lo = np.nanmin([np.nanmin(arr["p50_a"]), np.nanmin(arr["p50_b"])])
        hi = np.nanmax([np.nanmax(arr["p50_a"]), np.nanmax(arr["p50_b"])])
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlabel(f"{QUANTITIES.get(q, q)}, {la}")
        ax.set_ylabel(f"{lb}, posterior median")
        ax = axes[1, k]
        bins = np.geomspace(0.05, 3.0, 40)
        for g in groups:
            r = arr["ratio"][(group == g) & np.isfinite(arr["ratio"])]
            med = result["quantities"][q][g]["median_width_ratio"]
            ax.hist(np.clip(r, bins[0], bins[-1]), bins=bins, histtype="step", density=True,
                    color=colours[g], label=f"{g}: median {med:.2f}")
        ax.set_xscale("log")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xlabel(f"68% width, {lb} / {la}")
        ax.legend(fontsize=7)
    axes[0, 0].legend(fontsize=7, markerscale=3)
    fig.suptitle(f"{result['n_matched']:,} galaxies: {lb} against {la}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

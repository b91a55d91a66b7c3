"""Figures of the calibration checks (matplotlib, Agg backend), saved as PNG.

Each function draws numbers computed by :mod:`provabgs_sbi.diagnostics` and computes
nothing itself beyond what it needs to place them. Many-parameter figures use a grid
of panels (up to 5 columns) titled with the parameter names, so that the 12 SEDflow
parameters, or up to ~20, stay readable. A curve or histogram that fails its check is
drawn in red.

Examples
--------
>>> from provabgs_sbi import diagnostics as val
>>> from provabgs_sbi.plots import validation as vp
>>> ranks = val.sbc_ranks(samples, truth)
>>> vp.plot_pp(val.pp_curve(ranks, samples.shape[1]), "pp.png", names=PARAM_NAMES)
>>> counts = val.sbc_histogram(ranks, samples.shape[1], 20)
>>> band = val.binomial_band(len(truth), 20, 0.99)
>>> vp.plot_sbc(counts, band, "sbc.png", names=PARAM_NAMES)
>>> vp.plot_tarp(val.tarp(samples, truth), "tarp.png")
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from provabgs_sbi.diagnostics._inputs import parameter_names
from provabgs_sbi.model.parameters import WARPED_NAMES
from provabgs_sbi.plots._mpl import pyplot

__all__ = ["plot_median_offsets", "plot_pp", "plot_sbc", "plot_tarp"]

OK_COLOR = "tab:blue"
FAIL_COLOR = "tab:red"
BAND_COLOR = "0.82"


def _grid(plt, n: int, ncols: int | None, panel: float = 2.6):
    """Figure with ``n`` panels on a grid (unused panels removed)."""
    if ncols is None:
        ncols = min(n, 5 if n > 12 else 4)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols + 0.4, panel * nrows + 0.6),
                             squeeze=False, sharex=True, sharey=True)
    for ax in axes.flat[n:]:
        ax.remove()
    return fig, axes, ncols


def _label_outer(axes, n: int, ncols: int, xlabel: str, ylabel: str) -> None:
    """x labels under the lowest panel of each column, y labels on the first column."""
    for k in range(n):
        ax = axes.flat[k]
        col = k % ncols
        if k + ncols >= n:                   # lowest panel in its column
            ax.set_xlabel(xlabel)
            ax.tick_params(labelbottom=True)
        if col == 0:
            ax.set_ylabel(ylabel)


def plot_pp(pp, path, names: Sequence[str] | None = None, layout: str = "grid",
            difference: bool = False, ncols: int | None = None, title: str = "") -> None:
    """p-p curves (ECDF of fractional SBC ranks) with the simultaneous band.

    Parameters
    ----------
    pp : provabgs_sbi.diagnostics.PPCurve
        From :func:`provabgs_sbi.diagnostics.pp_curve`, d parameters.
    path : str or path-like
        PNG to write.
    names : sequence of str of length d, optional
        Panel titles / legend labels.
    layout : {"grid", "single"}
        One panel per parameter, or all curves in one panel (with a legend; curves
        outside the band drawn solid, the others faint).
    difference : bool
        Plot ``ECDF - z`` instead of the ECDF (Säilynoja et al.'s difference plot, which
        shows small deviations better when n_test is large).
    ncols : int, optional
        Columns of the grid.
    title : str
    """
    if layout not in ("grid", "single"):
        raise ValueError(f"layout must be 'grid' or 'single', got {layout!r}")
    plt = pyplot()
    z = np.concatenate([[0.0], pp.z, [1.0]])
    ecdf = np.vstack([np.zeros((1, pp.ecdf.shape[1])), pp.ecdf, np.ones((1, pp.ecdf.shape[1]))])
    lo = np.concatenate([[0.0], pp.lo, [1.0]])
    hi = np.concatenate([[0.0], pp.hi, [1.0]])
    ref = z if difference else np.zeros_like(z)
    d = ecdf.shape[1]
    names = parameter_names(names, d)
    ylabel = "ECDF − uniform" if difference else "empirical CDF of rank"
    xlabel = "fractional rank (nominal quantile)"
    band_label = f"{100 * pp.level:g}% simultaneous band"

    def _band(ax):
        ax.fill_between(z, lo - ref, hi - ref, color=BAND_COLOR, lw=0, label=band_label)
        ax.plot(z, z - ref, color="k", lw=0.6, ls="--")

    if layout == "single":
        fig, ax = plt.subplots(figsize=(7.6 if d > 1 else 5.4, 5.2))
        _band(ax)
        cmap = plt.get_cmap("tab10")
        styles = ("-", "--", ":")
        for j in range(d):
            ok = bool(pp.inside[j])
            ax.plot(z, ecdf[:, j] - ref, color=cmap(j % 10), ls=styles[(j // 10) % 3],
                    lw=1.0 if ok else 2.0, alpha=0.6 if ok else 1.0,
                    label=names[j] + ("" if ok else f" (outside, p={pp.pvalue[j]:.2g})"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1)
        if not difference:
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        ax.set_title(title or "p-p (thick: outside the band)", fontsize=11)
    else:
        fig, axes, ncols = _grid(plt, d, ncols)
        for j in range(d):
            ax = axes.flat[j]
            _band(ax)
            ok = bool(pp.inside[j])
            ax.plot(z, ecdf[:, j] - ref, color=OK_COLOR if ok else FAIL_COLOR, lw=1.3)
            ax.set_title(names[j], fontsize=10, color="k" if ok else FAIL_COLOR)
            ax.text(0.97, 0.04, f"p = {pp.pvalue[j]:.2g}", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8, color="k" if ok else FAIL_COLOR)
            ax.set_xlim(0, 1)
        if not difference:
            axes.flat[0].set_ylim(0, 1)
        _label_outer(axes, d, ncols, xlabel, ylabel)
        head = f"p-p: {band_label} (grey); red = outside"
        fig.suptitle(f"{title}\n{head}" if title else head, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sbc(counts, band, path, names: Sequence[str] | None = None, n_outside=None,
             expected_outside: float | None = None, ncols: int | None = None,
             title: str = "", level: float = 0.99) -> None:
    """SBC rank histograms with the binomial band, one panel per parameter.

    Parameters
    ----------
    counts : ndarray of int of shape (n_bins, d)
        From :func:`provabgs_sbi.diagnostics.sbc_histogram`.
    band : tuple of ndarray of shape (n_bins,)
        ``(lo, hi)`` from :func:`provabgs_sbi.diagnostics.binomial_band`.
    path : str or path-like
    names : sequence of str of length d, optional
    n_outside : ndarray of shape (d,), optional
        Bins outside the band (:func:`provabgs_sbi.diagnostics.sbc_outside_band`); computed
        from ``counts`` and ``band`` when not given.
    expected_outside : float, optional
        Number expected by chance, shown with it.
    ncols : int, optional
    title : str
    level : float
        Level of ``band`` (for the caption only).
    """
    plt = pyplot()
    counts = np.asarray(counts)
    if counts.ndim == 1:
        counts = counts[:, None]
    n_bins, d = counts.shape
    lo, hi = (np.asarray(b, dtype=float) for b in band)
    if lo.shape != (n_bins,) or hi.shape != (n_bins,):
        raise ValueError(f"band arrays must have shape ({n_bins},)")
    names = parameter_names(names, d)
    outside = (counts < lo[:, None]) | (counts > hi[:, None])
    if n_outside is None:
        n_outside = outside.sum(axis=0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = np.diff(edges)
    mean = counts.sum(axis=0)[0] / n_bins
    fig, axes, ncols = _grid(plt, d, ncols)
    ymax = max(float(counts.max()), float(hi.max())) * 1.12
    for j in range(d):
        ax = axes.flat[j]
        ax.fill_between(np.repeat(edges, 2)[1:-1], np.repeat(lo, 2), np.repeat(hi, 2),
                        color=BAND_COLOR, lw=0)
        ax.axhline(mean, color="k", lw=0.6, ls="--")
        colors = np.where(outside[:, j], FAIL_COLOR, OK_COLOR)
        ax.bar(edges[:-1], counts[:, j], width=width, align="edge", color=colors, alpha=0.75,
               edgecolor="white", linewidth=0.4)
        for edge in (lo, hi):       # band edges on top of the bars
            ax.stairs(edge, edges, color="0.35", lw=0.8, baseline=None)
        bad = n_outside[j] > 0
        ax.set_title(names[j], fontsize=10, color="k")
        note = f"{int(n_outside[j])} out"
        if expected_outside is not None:
            note += f" ({expected_outside:.2g} exp.)"
        ax.text(0.97, 0.96, note, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                color=FAIL_COLOR if bad else "k")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, ymax)
    _label_outer(axes, d, ncols, "fractional rank", "galaxies per bin")
    head = (f"SBC rank histograms, {n_bins} bins; grey: {100 * level:g}% binomial band per bin; "
            "red bars outside")
    fig.suptitle(f"{title}\n{head}" if title else head, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tarp(result, path, title: str = "TARP expected coverage") -> None:
    """TARP expected coverage probability versus credibility level.

    Parameters
    ----------
    result : provabgs_sbi.diagnostics.TARPResult or mapping of str to TARPResult
        One result, or several labelled ones (e.g. ANPE trained on different sets) drawn
        in the same panel.
    path : str or path-like
    title : str
    """
    plt = pyplot()
    results = dict(result) if isinstance(result, Mapping) else {"": result}
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="k", lw=0.7, ls="--", label="calibrated")
    cmap = plt.get_cmap("tab10")
    for k, (label, r) in enumerate(results.items()):
        c = cmap(k % 10)
        ax.fill_between(r.alpha, r.ecp_lo, r.ecp_hi, color=c, alpha=0.25, lw=0)
        text = f"{label + ': ' if label else ''}p = {r.p_value:.2g}, ATC = {r.atc:+.3f}"
        ax.plot(r.alpha, r.ecp, color=c, lw=1.6, label=text)
    level = next(iter(results.values())).level
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage probability")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, loc="upper left", frameon=False,
              title=f"shaded: {100 * level:g}% bootstrap band", title_fontsize=8)
    ax.text(0.97, 0.03, "above diagonal: too wide\nbelow: too narrow",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_median_offsets(bars: Mapping[str, Mapping[str, float]], path) -> None:
    """Mean |median(A) - median(B)| / std(B) per parameter, one bar per comparison.

    Parameters
    ----------
    bars : mapping of str to mapping of str to float
        For each comparison (its label), the mean offset per warped parameter
        (:data:`~provabgs_sbi.model.parameters.WARPED_NAMES`), e.g. the
        ``median_offset_mean`` of :func:`~provabgs_sbi.workflows.compare_mcmc.compare_with_reference`.
        Nothing is drawn when empty.
    path : str or path-like
        PNG to write. Bars above 2 are cut and labelled with their value; a dashed line
        marks SEDflow's 0.3.
    """
    if not bars:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.2))
    pos = np.arange(len(WARPED_NAMES))
    width = 0.8 / len(bars)
    top = 2.0                                  # taller bars are cut and labelled
    for k, (label, offs) in enumerate(bars.items()):
        vals = np.array([offs[p] for p in WARPED_NAMES])
        xs = pos + (k - (len(bars) - 1) / 2) * width
        ax.bar(xs, np.minimum(vals, top), width, label=label)
        for xv, v in zip(xs, vals):
            if v > top:
                ax.text(xv, top * 0.98, f"{v:.1f}", rotation=90, ha="center", va="top",
                        fontsize=7, color="w")
    ax.set_ylim(0, top)
    ax.axhline(0.3, color="k", ls="--", lw=1, label="0.3 (SEDflow)")
    ax.set_xticks(pos)
    ax.set_xticklabels(WARPED_NAMES, rotation=30, ha="right")
    ax.set_ylabel("mean |Δ median| / σ$_{reference}$")
    ax.set_title("Offsets of the marginal medians (A vs B: in units of B's posterior sd)")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_regime_coverage(results: Mapping[str, Mapping], path, tolerance: float = 0.03) -> None:
    """Coverage of the central 68% and 95% intervals per parameter, one marker series per
    observing regime, with the band nominal +- ``tolerance`` shaded.

    Parameters
    ----------
    results : mapping of str to mapping
        Regime name -> ``{"coverage": {"0.68" | "0.95": {parameter: fraction}}, ...}``
        (:func:`provabgs_sbi.workflows.validate.validate_regimes`).
    path : str or path-like
    tolerance : float
    """
    plt = pyplot()
    first = next(iter(results.values()))["coverage"]
    levels = list(first)
    names = list(first[levels[0]])
    fig, axes = plt.subplots(1, len(levels), figsize=(5.2 * len(levels), 4.2), squeeze=False)
    cmap = plt.get_cmap("tab10")
    pos = np.arange(len(names))
    width = 0.7 / max(1, len(results))
    for ax, level in zip(axes[0], levels):
        nominal = float(level)
        ax.axhspan(nominal - tolerance, nominal + tolerance, color="0.88", lw=0)
        ax.axhline(nominal, color="k", lw=0.7)
        for k, (label, r) in enumerate(results.items()):
            vals = [r["coverage"][level][n] for n in names]
            ax.plot(pos - 0.35 + (k + 0.5) * width, vals, "o", ms=4, color=cmap(k % 10),
                    label=label)
        ax.set_xticks(pos)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(f"coverage of the central {100 * nominal:g}% interval")
        ax.set_title(f"{100 * nominal:g}%: grey band nominal +- {tolerance:g}", fontsize=10)
    axes[0][0].legend(fontsize=7, loc="lower left", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_floor_choice(result: Mapping, path) -> None:
    """How real galaxies' best-draw chi^2 compares with its expected distribution, per
    systematic floor (:func:`provabgs_sbi.workflows.floor.floor_statistics`).

    Left: median chi^2 of the real and of the simulated galaxies. Right: fraction of real
    galaxies above the simulated 99th percentile (1% when they agree), the target and the
    chosen floor.
    """
    plt = pyplot()
    f = np.asarray(result["floors"])
    per_band = "band_floors" in result
    fig, axes = plt.subplots(1, 3 if per_band else 2, figsize=(15 if per_band else 10, 4))
    a, b = axes[:2]
    a.plot(f, result["real_median"], "o-", label=f"real ({result['n_real']} galaxies)")
    a.plot(f, result["expected_median"], "s--", label=f"expected (simulated, {result['n_test']})")
    a.set_yscale("log")
    a.set_xlabel("systematic floor (mag)")
    a.set_ylabel(f"median best-of-{result['n_draws']} chi^2")
    a.legend(fontsize=8, frameon=False)
    b.plot(f, np.asarray(result["frac_real_above_p99"]) * 100, "o-", color="C3")
    b.axhline(1.0, color="k", lw=0.7, label="agreement (1%)")
    b.axhline(100 * result["target"], color="0.5", ls=":", label=f"target ({100 * result['target']:g}%)")
    common = result.get("common_chosen", result["chosen"])
    b.axvline(common, color="C2", ls="--",
              label=f"{'common' if per_band else 'chosen'} floor {common:g} mag")
    if per_band:
        b.axhline(100 * result["band_frac_real_above_p99"], color="C1", ls="-.",
                  label="at the per-band floors")
    b.set_yscale("log")
    b.set_xlabel("systematic floor (mag)")
    b.set_ylabel("% of real galaxies above expected p99")
    b.legend(fontsize=8, frameon=False)
    if per_band:
        c = axes[2]
        for j, band in enumerate(result["bands"]):
            ratio = [np.nan if r[j] is None or e[j] in (None, 0) else r[j] / e[j]
                     for r, e in zip(result["real_band_median"], result["expected_band_median"])]
            line, = c.plot(f, ratio, "o-", ms=3, lw=1, label=f"{band}: {result['band_floors'][j]:g}")
            c.plot(result["band_floors"][j], 1.0, "*", ms=11, color=line.get_color())
        c.axhline(1.0, color="k", lw=0.7)
        c.set_yscale("log")
        c.set_xlabel("common floor (mag)")
        c.set_ylabel("real / expected median of the band's chi^2 term")
        if result["band_met"]:
            which = "the default"
        elif result.get("chosen_from") == "common":
            which = "not all met: the common floor is the default"
        else:
            which = "not all met, still the default"
        c.set_title(f"per band; stars: per-band floors\n({which})", fontsize=9)
        c.legend(fontsize=7, frameon=False, ncol=2)
    fig.suptitle("Choosing the default floor: real best-draw chi^2 against its expected distribution",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

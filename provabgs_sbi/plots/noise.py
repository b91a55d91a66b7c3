"""The photometric noise model p(sigma_m | m) against the real errors it was fitted to
(:class:`~provabgs_sbi.inference.noise.NoiseModel`, ``docs/figures/noise_model.png``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from provabgs_sbi.plots._mpl import pyplot

__all__ = ["plot_noise_arrays", "plot_noise_model"]


def plot_noise_model(model, catalog, path: str | os.PathLike, rng=0) -> Path:
    """PNG comparing real and drawn (m, sigma_m) per band.

    Each band's panel shows the catalog's valid galaxies (grey), one draw of sigma' at the
    same magnitudes (orange), the model's mu(m) and mu(m) +- s(m), and the 16/50/84th
    percentiles of real and drawn errors in each model bin. The last panel compares the
    pooled distributions of (sigma - mu(m)) / s(m).

    Parameters
    ----------
    model : NoiseModel
        The model (:class:`~provabgs_sbi.inference.noise.NoiseModel`).
    catalog : PhotometryCatalog
        Real sample to compare with (its valid rows are used).
    path : str or os.PathLike
        Output PNG (its folder is created).
    rng : numpy.random.Generator or int or None
        For the draws (default seed 0).

    Returns
    -------
    pathlib.Path

    See Also
    --------
    plot_noise_arrays : the same from magnitude and error arrays (any bands).
    """
    cat = catalog.subset(catalog.valid)
    return plot_noise_arrays(model, cat.mags(), cat.mag_errors(), path, source=cat.source,
                             rng=rng)


def plot_noise_arrays(model, mags, errs, path: str | os.PathLike, source: str = "",
                      rng=0) -> Path:
    """:func:`plot_noise_model` from arrays: real AB magnitudes and errors of shape
    (N, n_bands) in the model's bands, NaN where a band is missing (such entries are
    left out of that band's panel)."""
    plt = pyplot()
    mags = np.asarray(mags, dtype=np.float64)
    errs = np.asarray(errs, dtype=np.float64)
    drawn, _ = model.sample_sigma(np.nan_to_num(mags, nan=np.nanmedian(mags)), rng)
    with np.errstate(invalid="ignore"):
        have = np.isfinite(mags) & np.isfinite(errs) & (errs > 0)
    drawn = np.where(have, drawn, np.nan)
    nb = len(model.bands)
    ncol = 3 if nb <= 5 else 4
    nrow = -(-(nb + 1) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.35 * ncol, 4.1 * nrow),
                             constrained_layout=True, squeeze=False)
    for b in range(nb):
        sel = have[:, b]
        _band_panel(axes.flat[b], model, b, mags[sel, b], errs[sel, b], drawn[sel, b])
    _legend(axes.flat[0])
    with np.errstate(invalid="ignore"):
        ok = np.all(~have | (drawn > 0), axis=1)
    _pooled_panel(axes.flat[nb], model, np.where(have, mags, np.nan),
                  np.where(have, errs, np.nan), drawn, ok)
    for ax in axes.flat[nb + 1:]:
        ax.set_visible(False)
    src = model.provenance.get("source", source)
    fig.suptitle(f"Noise model p($\\sigma_m$ | m), scatter = {model.config.scatter}, "
                 f"bin width {model.config.bin_width} mag, min {model.config.min_count}/bin\n"
                 f"{src}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _band_panel(ax, model, b: int, m, real, dr) -> None:
    """Band ``b``: real errors ``real`` and drawn ones ``dr`` at magnitudes ``m`` (each
    of shape (N,), mag), the model curves and the per-bin percentiles."""
    band = model.bands[b]
    lo, hi = np.percentile(m, [0.2, 99.8])
    ax.scatter(m, real, s=2, c="0.55", alpha=0.35, lw=0, rasterized=True,
               label="real galaxies")
    pos = dr > 0
    ax.scatter(m[pos], dr[pos], s=2, c="tab:orange", alpha=0.25, lw=0, rasterized=True,
               label="drawn $\\sigma'$ (same m)")
    grid = np.linspace(min(lo, model.centres[b][0]), max(hi, model.centres[b][-1]), 300)
    mu_g = np.interp(grid, model.centres[b], model.mu[b])
    s_g = np.interp(grid, model.centres[b], model.s[b])
    ax.plot(grid, mu_g, c="k", lw=1.6, label="model $\\mu(m)$")
    ax.plot(grid, mu_g + s_g, c="k", lw=1, ls="--", label="$\\mu \\pm s$")
    ax.plot(grid, np.where(mu_g - s_g > 0, mu_g - s_g, np.nan), c="k", lw=1, ls="--")
    idx = model.bin_index(m, b)
    keep = [k for k in range(len(model.centres[b])) if np.count_nonzero(idx == k) >= 5]
    x0 = model.centres[b][keep]
    for vals, dx, fmt, color in ((real, -0.04, "o", "tab:blue"), (dr, 0.04, "s", "tab:red")):
        q = np.array([np.percentile(vals[idx == k], [16, 50, 84]) for k in keep]).T
        lower = q[1] - np.maximum(q[0], 1e-9)  # log axis: clip the 16th percentile at > 0
        ax.errorbar(x0 + dx, q[1], yerr=[lower, q[2] - q[1]], fmt=fmt, ms=3.5, c=color,
                    lw=1, capsize=0)
    ax.set_yscale("log")
    ax.set_xlim(lo - 0.2, hi + 0.2)
    in_x = (m >= lo) & (m <= hi)
    ylo, yhi = np.percentile(real[in_x], [0.1, 99.9])
    ax.set_ylim(ylo / 1.6, yhi * 1.6)
    n_neg = int(np.count_nonzero(dr <= 0))
    ax.set_title(f"{band} band: {len(model.centres[b])} bins, {len(m)} galaxies, "
                 f"draws $\\leq 0$: {n_neg}", fontsize=10)
    ax.set_xlabel(f"{band} (AB mag)")
    ax.set_ylabel(f"$\\sigma_{{{band}}}$ (mag)")
    ax.grid(alpha=0.3, which="both", lw=0.4)


def _legend(ax) -> None:
    """The legend of the band panels (markers larger than the scattered points)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", ms=4, c="0.55", label="real galaxies"),
        Line2D([], [], ls="", marker="o", ms=4, c="tab:orange",
               label="drawn $\\sigma' > 0$ at the same m"),
        Line2D([], [], c="k", lw=1.6, label="model $\\mu(m)$"),
        Line2D([], [], c="k", lw=1, ls="--", label="model $\\mu(m) \\pm s(m)$"),
        Line2D([], [], ls="-", marker="o", ms=3.5, c="tab:blue",
               label="real 16/50/84% per bin"),
        Line2D([], [], ls="-", marker="s", ms=3.5, c="tab:red",
               label="drawn 16/50/84% per bin"),
    ]
    ax.legend(handles=handles, fontsize=7.5, loc="upper left")


def _pooled_panel(ax, model, mags, errs, drawn, ok) -> None:
    """Standardised errors (sigma - mu(m)) / s(m) of all bands, real and drawn.

    ``mags``, ``errs`` and ``drawn`` are of shape (N, n_bands), mag (NaN where missing);
    ``ok`` (N,) marks the rows whose draws are all > 0."""
    mu_at, s_at = model.median_sigma(mags), model.scatter_sigma(mags)
    with np.errstate(divide="ignore", invalid="ignore"):
        zr = ((errs - mu_at) / s_at).ravel()
        zd = ((drawn - mu_at) / s_at).ravel()
    bins = np.linspace(-5, 10, 151)
    ax.hist(np.clip(zr[np.isfinite(zr)], -5, 10), bins=bins, density=True, histtype="stepfilled",
            color="0.6", alpha=0.6, label="real")
    ax.hist(np.clip(zd[np.isfinite(zd)], -5, 10), bins=bins, density=True, histtype="step",
            color="tab:orange", lw=1.5, label="drawn (Gaussian)")
    ax.set_yscale("log")
    ax.set_xlabel("$(\\sigma - \\mu(m)) / s(m)$ (clipped to [-5, 10])")
    ax.set_ylabel("density")
    frac_tail = float(np.mean(zr[np.isfinite(zr)] > 3))
    ax.set_title("pooled standardised errors, all bands", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.text(0.97, 0.72, f"real above +3: {100 * frac_tail:.1f}%\n"
            f"rows with a draw $\\leq 0$: {100 * (1 - ok.mean()):.2f}%",
            transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.grid(alpha=0.3, lw=0.4)

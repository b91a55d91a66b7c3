"""Accuracy of a trained SED emulator: its spectral and photometric errors
(:mod:`provabgs_sbi.emulator.validate`)."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.photometry import BANDS
from provabgs_sbi.plots._mpl import pyplot

__all__ = ["plot_emulator_errors"]


def plot_emulator_errors(wave, med, p95, p99, mag_err, path, title="", bands=BANDS):
    """Percentiles of |dL/L| versus rest wavelength, and the per-band magnitude errors.

    Parameters
    ----------
    wave : ndarray of shape (n_wave,)
        Rest wavelength, Angstrom.
    med, p95, p99 : ndarray of shape (n_wave,)
        Median, 95th and 99th percentiles of the fractional error |dL/L| over the test
        galaxies (fractions; drawn in per cent).
    mag_err : ndarray of shape (n_galaxies, n_bands)
        |delta mag| per band.
    path : str or path-like
        PNG to write.
    title : str
    bands : sequence of str
        Names of ``mag_err``'s columns (default ugriz).
    """
    plt = pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    for arr, lab, c in ((med, "median", "k"), (p95, "95th pct", "tab:blue"), (p99, "99th pct", "tab:red")):
        ax.plot(wave, 100 * arr, color=c, lw=0.8, label=lab)
    ax.axhline(0.3, color="k", ls=":", lw=0.8, label="goal: median 0.3%")
    ax.axhline(1.0, color="tab:red", ls=":", lw=0.8, label="goal: 99th 1%")
    ax.set_xlabel("rest-frame wavelength [Å]")
    ax.set_ylabel("|ΔL/L| [%]")
    ax.set_yscale("log")
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title, fontsize=9)
    bins = np.logspace(-6, np.log10(max(np.nanmax(mag_err), 1e-3)), 60)
    for i, b in enumerate(bands):
        col = mag_err[:, i]
        ax2.hist(col[np.isfinite(col)], bins=bins, histtype="step", label=b)
    ax2.axvline(0.01, color="k", ls=":", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_xlabel("|Δmag| (z ≤ 0.2)")
    ax2.set_ylabel("galaxies")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

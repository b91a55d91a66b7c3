"""Figures (matplotlib, Agg backend): kept apart from the numerical code."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.flags import has_samples


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_sed(wave, lum, z, flux_nmgy, path, title=""):
    """Rest-frame spectrum with the SDSS filter curves (shifted to the rest frame) and the
    band fluxes.

    Parameters
    ----------
    wave : ndarray of shape (n_wave,)
        Rest wavelength, Angstrom.
    lum : ndarray of shape (n_wave,)
        L_lambda, Lsun/Angstrom.
    z : float
        Redshift (for placing the filters in the rest frame).
    flux_nmgy : ndarray of shape (5,)
        ugriz nanomaggies (annotated).
    path : str
        PNG to write.
    """
    from provabgs_sbi.model.photometry import BANDS, load_filters, nanomaggies_to_mag

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    keep = (wave > 1500) & (wave < 12000)
    ax.plot(wave[keep], lum[keep], color="k", lw=0.7)
    ax.set_xlabel("rest-frame wavelength [Å]")
    ax.set_ylabel(r"$L_\lambda$ [$L_\odot$/Å]")
    ax2 = ax.twinx()
    colors = ["tab:purple", "tab:blue", "tab:green", "tab:orange", "tab:red"]
    mags = nanomaggies_to_mag(flux_nmgy)
    for f, b, c, m in zip(load_filters(), BANDS, colors, mags):
        ax2.fill_between(np.asarray(f.wavelength) / (1 + z), np.asarray(f.response), alpha=0.15,
                         color=c)
        centre = f.effective_wavelength.value / (1 + z)
        ax2.text(centre, 0.62, f"{b}\n{m:.2f}", ha="center", color=c, fontsize=9)
    ax2.set_ylim(0, 1.4)
    ax2.set_ylabel("filter response (rest frame)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_emulator_errors(wave, med, p95, p99, mag_err, path, title=""):
    """Percentiles of |dL/L| versus rest wavelength, and the ugriz error distributions."""
    from provabgs_sbi.model.photometry import BANDS

    plt = _plt()
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
    bins = np.logspace(-6, np.log10(max(mag_err.max(), 1e-3)), 60)
    for i, b in enumerate(BANDS):
        ax2.hist(mag_err[:, i], bins=bins, histtype="step", label=b)
    ax2.axvline(0.01, color="k", ls=":", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_xlabel("|Δmag| (z ≤ 0.2)")
    ax2.set_ylabel("galaxies")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_sdss_summary(posterior_file, path):
    """Posterior medians of the fitted catalog: the mass-SFR plane and mass versus redshift."""
    import h5py

    with h5py.File(posterior_file, "r") as fh:
        s = fh["summary"][:]
    ok = has_samples(s["flags"]) & np.isfinite(s["log_mstar_p50"])
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ms = s["log_mstar_surviving_p50"][ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        sfr = np.log10(s["sfr_1gyr_p50"][ok])
    ax = axes[0]
    ax.scatter(ms, sfr, s=2, alpha=0.4, c=s["z"][ok], cmap="viridis")
    ax.set_xlabel(r"log $M_*$ (surviving) [$M_\odot$], posterior median")
    ax.set_ylabel(r"log SFR$_{1\,\rm Gyr}$ [$M_\odot$/yr]")
    ax = axes[1]
    sc = axes[1].scatter(s["z"][ok], ms, s=2, alpha=0.4, c=sfr - ms, cmap="coolwarm_r", vmin=-12, vmax=-9)
    fig.colorbar(sc, ax=ax, label="log sSFR [1/yr]")
    ax.set_xlabel("redshift")
    ax.set_ylabel(r"log $M_*$ (surviving)")
    ax = axes[2]
    width = 0.5 * (s["log_mstar_p84"][ok] - s["log_mstar_p16"][ok])
    ax.hist(width, bins=60, histtype="step", label=r"log $M_*$ formed")
    ax.hist(0.5 * (s["tau_ism_p84"][ok] - s["tau_ism_p16"][ok]), bins=60, histtype="step",
            label=r"$\tau_{\rm ISM}$")
    ax.set_xlabel("posterior half-width (16-84%)")
    ax.set_ylabel("galaxies")
    ax.legend()
    fig.suptitle(f"SDSS sample fitted with provabgs-sbi: {ok.sum():,} galaxies")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""A fitted catalog at a glance: posterior medians and widths of all its galaxies (the
main job's summary figure)."""
from __future__ import annotations

import h5py
import numpy as np

from provabgs_sbi.flags import has_samples
from provabgs_sbi.plots._mpl import pyplot

__all__ = ["plot_sdss_summary"]


def plot_sdss_summary(posterior_file, path):
    """Posterior medians of the fitted catalog: the mass-SFR plane and mass versus redshift.

    Parameters
    ----------
    posterior_file : str or path-like
        HDF5 file of a catalog fit (its ``summary`` table: flags, redshift and posterior
        percentiles).
    path : str or path-like
        PNG to write.
    """
    with h5py.File(posterior_file, "r") as fh:
        s = fh["summary"][:]
    ok = has_samples(s["flags"]) & np.isfinite(s["log_mstar_p50"])
    plt = pyplot()
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

"""A galaxy's model spectrum with its photometry (``provabgs-sbi sed --plot``, the main job)."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.photometry import BANDS, load_filters, nanomaggies_to_mag
from provabgs_sbi.plots._mpl import pyplot

__all__ = ["plot_sed"]


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
    plt = pyplot()
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

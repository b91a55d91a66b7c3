"""SEDflow's figures 1-4, regenerated from this project's data (``provabgs-sbi figures``).

1. ``fig1_training_vs_sdss.png``: the ANPE training set against the real SDSS sample in
   (log M*, beta1, z, g, r, sigma_r); for the real galaxies log M* and beta1 are posterior
   medians (they have no true parameters).
2. ``fig2_anpe_vs_mcmc.png``: for one real galaxy, ANPE and MCMC posteriors (corner plot of
   a few parameters) and the spectra of posterior draws of both with the observed ugriz.
3. ``fig3_pp.png``: p-p curves of the flow on the validation test galaxies with the 99%
   band, and the MCMC posteriors' coverage on their test subset.
4. ``fig4_sbc.png``: SBC rank histograms with the 99% binomial band.

Figures 3 and 4 come from :func:`provabgs_sbi.workflows.validate.validate_posterior`; this module
draws 1 and 2.
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.observation import SDSS as XL
from provabgs_sbi.model.parameters import PARAM_NAMES
from provabgs_sbi.model.photometry import BANDS, flux_error, load_filters, mag_to_nanomaggies
from provabgs_sbi.plots._mpl import pyplot

LABELS = {"log_mstar": r"$\log M_*$", "beta1": r"$\beta_1$", "z": "$z$", "g": "$g$",
          "r": "$r$", "sigma_r": r"$\sigma_r$", "beta2": r"$\beta_2$", "beta3": r"$\beta_3$",
          "beta4": r"$\beta_4$", "fburst": r"$f_{\rm burst}$", "tburst": r"$t_{\rm burst}$",
          "gamma1": r"$\gamma_1$", "gamma2": r"$\gamma_2$", "tau_bc": r"$\tau_{\rm BC}$",
          "tau_ism": r"$\tau_{\rm ISM}$", "n_dust": r"$n_{\rm dust}$"}


def _label_corner_panel(ax, i: int, j: int, names) -> None:
    """Axis labels of panel (row ``i``, column ``j``) of a lower-triangle corner plot of
    the parameters ``names``: x labels on the bottom row, y labels on the first column
    (below the diagonal), no tick labels elsewhere."""
    if i == len(names) - 1:
        ax.set_xlabel(LABELS[names[j]])
    else:
        ax.set_xticklabels([])
    if j == 0 and i > 0:
        ax.set_ylabel(LABELS[names[i]])
    elif j > 0:
        ax.set_yticklabels([])


def _columns(theta, x):
    """(log M*, beta1, z, g, r, sigma_r) from parameters (N, 12) and x (N, 11)."""
    mags, errors = XL.mags(x), XL.errors(x)
    return np.column_stack([theta[:, 0], theta[:, 1], XL.redshift(x), mags[:, 1], mags[:, 2],
                            errors[:, 2]])


def plot_training_vs_real(train_theta, train_x, real_theta, real_x, path, n_max: int = 20000,
                          seed: int = 0) -> None:
    """Figure 1: pairwise distributions of the training set and the real sample.

    Parameters
    ----------
    train_theta, train_x : ndarray of shape (N, 12), (N, 11)
    real_theta : ndarray of shape (M, 12)
        Posterior medians of the real galaxies (NaN rows are dropped).
    real_x : ndarray of shape (M, 11)
    path : path-like
    n_max : int
        At most this many points of each set are drawn.
    """
    plt = pyplot()
    rng = np.random.default_rng(seed)
    a = _columns(train_theta, train_x)
    b = _columns(real_theta, real_x)
    b = b[np.all(np.isfinite(b), axis=1)]
    a = a[rng.permutation(len(a))[:n_max]]
    b = b[rng.permutation(len(b))[:n_max]]
    names = ["log_mstar", "beta1", "z", "g", "r", "sigma_r"]
    lims = [np.nanpercentile(np.concatenate([a[:, j], b[:, j]]), [0.5, 99.5]) for j in range(6)]
    n = len(names)
    fig, axes = plt.subplots(n, n, figsize=(11, 11))
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                bins = np.linspace(*lims[j], 40)
                ax.hist(a[:, j], bins=bins, density=True, histtype="step", color="C0",
                        label="training set")
                ax.hist(b[:, j], bins=bins, density=True, histtype="step", color="C3",
                        label="SDSS sample")
                ax.set_yticks([])
            else:
                ax.scatter(a[:, j], a[:, i], s=0.3, color="C0", alpha=0.15, rasterized=True)
                ax.scatter(b[:, j], b[:, i], s=0.3, color="C3", alpha=0.25, rasterized=True)
                ax.set_ylim(*lims[i])
            ax.set_xlim(*lims[j])
            _label_corner_panel(ax, i, j, names)
    # The legend goes into the empty upper triangle: anchored to one panel outside its own
    # box, tight_layout would squeeze every column to make room for it.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("ANPE training set (blue) and the SDSS sample (red; log M*, beta1: "
                 "posterior medians)", y=0.995)
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(0.95, 0.9), frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_anpe_vs_mcmc(anpe, mcmc, x, emulator, path, params=("log_mstar", "beta1", "fburst",
                                                              "tau_bc", "tau_ism", "n_dust"),
                      n_sed: int = 40, seed: int = 0, title: str = "", exact=None) -> None:
    """Figure 2: ANPE and MCMC posteriors of one galaxy and their model spectra.

    Parameters
    ----------
    anpe, mcmc : ndarray of shape (n, 12)
        Posterior draws of the physical parameters.
    exact : ndarray of shape (n', 12), optional
        Draws of the importance-sampled posterior (:mod:`provabgs_sbi.baselines.importance`), drawn
        as dashed marginals.
    x : ndarray of shape (11,)
        The galaxy's (ugriz mags, errors, z).
    emulator : Emulator
        Draws' spectra and photometry.
    params : sequence of str
        Parameters of the corner panels.
    n_sed : int
        Posterior draws of each method whose spectra are drawn.
    """
    plt = pyplot()
    idx = [PARAM_NAMES.index(p) for p in params]
    k = len(idx)
    fig = plt.figure(figsize=(15, 8))
    gs = fig.add_gridspec(k, 2 * k, wspace=0.08, hspace=0.08, left=0.06, right=0.98,
                          bottom=0.08, top=0.95)
    for i in range(k):
        for j in range(i + 1):
            ax = fig.add_subplot(gs[i, j])
            a, m = anpe[:, idx[j]], mcmc[:, idx[j]]
            lo, hi = np.percentile(np.concatenate([a, m]), [0.5, 99.5])
            if i == j:
                bins = np.linspace(lo, hi, 30)
                ax.hist(m, bins=bins, density=True, histtype="stepfilled", color="0.7",
                        label="MCMC")
                ax.hist(a, bins=bins, density=True, histtype="step", color="C0", lw=1.5,
                        label="ANPE")
                if exact is not None:
                    ax.hist(exact[:, idx[j]], bins=bins, density=True, histtype="step",
                            color="C3", lw=1.2, ls="--", label="importance-sampled (exact)")
                ax.set_yticks([])
            else:
                ay, my = anpe[:, idx[i]], mcmc[:, idx[i]]
                lo_y, hi_y = np.percentile(np.concatenate([ay, my]), [0.5, 99.5])
                ax.scatter(m[::max(1, len(m) // 2000)], my[::max(1, len(m) // 2000)], s=0.5,
                           color="0.4", alpha=0.3, rasterized=True)
                ax.scatter(a[:2000], ay[:2000], s=0.5, color="C0", alpha=0.3, rasterized=True)
                ax.set_ylim(lo_y, hi_y)
            ax.set_xlim(lo, hi)
            ax.tick_params(labelsize=7)
            _label_corner_panel(ax, i, j, params)
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.05, 1.0), frameon=False)

    # Spectra of posterior draws in the observed frame with the observed photometry.
    ax = fig.add_subplot(gs[:k // 2, k + 1:])
    rng = np.random.default_rng(seed)
    z = float(x[10])
    filters = load_filters()
    lam_eff = np.array([f.effective_wavelength.value for f in filters])
    for draws, color, name in ((mcmc, "0.5", "MCMC"), (anpe, "C0", "ANPE")):
        pick = draws[rng.choice(len(draws), size=min(n_sed, len(draws)), replace=False)]
        wave, lum = emulator.spectrum(pick, z)
        # f_nu in nanomaggies-like units: lambda^2 L_lambda, normalised below to the r band.
        flux = emulator.photometry(pick, np.full(len(pick), z))
        fnu = lum * wave**2
        norm = np.median(flux[:, 2]) / np.median(np.interp(lam_eff[2] / (1 + z), wave,
                                                           np.median(fnu, axis=0)))
        for row in fnu[:n_sed]:
            ax.plot(wave * (1 + z), row * norm, color=color, lw=0.4, alpha=0.3)
        ax.plot([], [], color=color, label=f"{name} draws")
        ax.scatter(lam_eff, np.median(flux, axis=0), marker="s", s=25, facecolor="none",
                   edgecolor=color, zorder=4)
    obs = mag_to_nanomaggies(XL.mags(x))
    err = flux_error(obs, XL.errors(x))
    ax.errorbar(lam_eff, obs, yerr=err, fmt="o", color="C3", ms=5, label="observed ugriz",
                zorder=5)
    for lam, b in zip(lam_eff, BANDS):
        ax.text(lam, ax.get_ylim()[0], b, ha="center", va="bottom", fontsize=9)
    ax.set_xlim(3000, 10500)
    ax.set_ylim(0, 1.6 * np.nanmax(obs + err))
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel(r"$f_\nu$ [nanomaggies]")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""Accuracy of an emulator against the direct SED model on held-out prior draws."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.photometry import Photometer, nanomaggies_to_mag
from provabgs_sbi.model.priors import Prior
from provabgs_sbi.model.survey import get_survey


def validate_emulator(emu, model, n: int = 10_000, seed: int = 12345, wave_range=(2500.0, 11000.0),
                      z_range=(0.0, 0.2), plot=None, survey="sdss_ugriz") -> dict:
    """Fractional L_lambda errors per wavelength and magnitude errors per band.

    Parameters
    ----------
    emu : Emulator
    model : SEDModel
        The direct model on the emulator's grid.
    n : int
        Prior draws (default prior, bursts and masses included); never used in training
        (their seed differs from the training seeds).
    wave_range : tuple
        Rest wavelengths reported, Angstrom.
    z_range : tuple
        Redshifts: ``z ~ U(z_range)``; photometry uses z > 0 (z = 0 is replaced by 1e-3).
    plot : str, optional
        PNG of the error percentiles versus wavelength.
    survey : Survey or str
        Whose bands the magnitude errors are reported for (default SDSS ugriz); its
        filters must lie inside the emulator's grid at every z of ``z_range``.

    Returns
    -------
    dict
        ``frac_err_median_max``, ``frac_err_p95_max``, ``frac_err_p99_max`` (the worst
        wavelength of each percentile of |dL/L|), per-band ``mag_err_p99`` and
        ``mag_err_max`` (over the galaxies with a positive flux from both; the others are
        counted in ``mag_err_excluded_zero_flux`` when there are any), and the settings.
    """
    survey = get_survey(survey)
    rng = np.random.default_rng(seed)
    theta = Prior().sample(n, seed=rng)
    z = rng.uniform(z_range[0], z_range[1], n)
    keep = (emu.wave >= wave_range[0]) & (emu.wave <= wave_range[1])
    med, p95, p99 = [], [], []
    chunk = 2000
    errs = []
    for s in range(0, n, chunk):
        _, le = emu.spectrum(theta[s:s + chunk], z[s:s + chunk])
        _, lm = model.spectrum(theta[s:s + chunk], z[s:s + chunk])
        errs.append(np.abs(le[:, keep] / lm[:, keep] - 1.0).astype(np.float32))
    errs = np.concatenate(errs)
    med, p95, p99 = np.percentile(errs, [50, 95, 99], axis=0)
    zp = np.maximum(z, 1e-3)
    phot = Photometer(model.wave, survey.filters, dz=model.config.photometry_dz)
    direct = np.concatenate([phot.nanomaggies(model.spectrum(theta[s:s + chunk], zp[s:s + chunk])[1],
                                              zp[s:s + chunk]) for s in range(0, n, chunk)])
    emulated = emu.with_filters(survey).photometry(theta, zp)
    # A band far below any detection (an old, dusty galaxy in the FUV: 115-130 mag) can
    # underflow to zero flux in float32; such galaxies are counted and left out of that
    # band's statistics rather than turning its percentiles into NaN.
    finite = (emulated > 0) & (direct > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        adm = np.abs(nanomaggies_to_mag(emulated) - nanomaggies_to_mag(direct))
    adm = np.where(finite, adm, np.nan)
    bands = survey.bands
    metrics = {
        "n": int(n), "seed": int(seed), "wave_range": list(wave_range), "z_range": list(z_range),
        "frac_err_median_max": float(med.max()), "frac_err_p95_max": float(p95.max()),
        "frac_err_p99_max": float(p99.max()),
        "frac_err_median_overall": float(np.median(errs)),
        "mag_err_p99": {b: float(np.nanpercentile(adm[:, i], 99)) for i, b in enumerate(bands)},
        "mag_err_max": {b: float(np.nanmax(adm[:, i])) for i, b in enumerate(bands)},
        "mag_err_median": {b: float(np.nanmedian(adm[:, i])) for i, b in enumerate(bands)},
    }
    n_zero = {b: int(np.count_nonzero(~finite[:, i])) for i, b in enumerate(bands)}
    if any(n_zero.values()):
        metrics["mag_err_excluded_zero_flux"] = n_zero
    if survey.name != "sdss_ugriz":
        metrics["survey"] = survey.name
    if plot is not None:
        from provabgs_sbi.plots.emulator import plot_emulator_errors

        plot_emulator_errors(emu.wave[keep], med, p95, p99, adm, plot, bands=bands,
                             title=f"{emu.info.get('sps', '')} emulator vs SED model, {n} held-out prior draws")
    return metrics

"""Derived properties of many posterior draws of each galaxy, sharing per-galaxy work.

:meth:`SEDModel.derived <provabgs_sbi.model.sed_model.SEDModel.derived>` treats every row
as its own galaxy: lookback bins, the NMF basis integrals over them and the SSP age
interpolation are recomputed for each of the 1,000 draws of a galaxy although they
depend only on its redshift. Here they are computed once per galaxy (shape (G, 42)), and
each draw costs only what depends on its parameters:

* the NMF mass per bin is linear in beta, so the mass formed within 0.1 or 1 Gyr and the
  mass-weighted age are beta times per-galaxy vectors (no per-bin array per draw);
* the metallicity per bin (clipped, so not linear in gamma) and the surviving fraction
  (interpolated in log Z on the galaxy's age-interpolated table) need the per-bin array.

The numbers are those of :meth:`SEDModel.derived` on the flattened draws (same formulas,
summed in another order: equal to ~1e-12 relative, checked in the tests).
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model import cosmology
from provabgs_sbi.model.sfh import (BASE_EDGES, Z_MAX, Z_MIN, burst_metallicity,
                                    effective_fburst)


def _interp_weights(grid, x):
    """Index and weight for linear interpolation on ``grid`` (x clipped to its range)."""
    x = np.clip(x, grid[0], grid[-1])
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
    return i, (x - grid[i]) / (grid[i + 1] - grid[i])


def derived_draws(model, theta, z) -> dict:
    """Derived properties of ``S`` draws of each of ``G`` galaxies.

    Parameters
    ----------
    model : SEDModel
        Supplies the NMF bases and the SSP table's surviving mass fraction.
    theta : ndarray of shape (G, S, 12)
        Physical parameters (PARAM_NAMES order) of the draws of each galaxy; finite and
        valid (checked by the caller, as :meth:`SEDModel.derived` checks its rows).
    z : ndarray of shape (G,)
        Redshift of each galaxy.

    Returns
    -------
    dict of ndarray of shape (G, S)
        The keys and units of :meth:`SEDModel.derived`.
    """
    theta = np.asarray(theta, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if theta.ndim != 3 or theta.shape[-1] != 12 or z.shape != theta.shape[:1]:
        raise ValueError(f"need theta (G, S, 12) and z (G,), got {theta.shape} and {z.shape}")
    bases = model.bases
    t_age = cosmology.age_gyr(z)                                          # (G,)
    edges = np.minimum(BASE_EDGES[None, :], t_age[:, None])              # (G, 43)
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])                       # (G, 42)
    basis_mass = np.diff(bases.sfh_integral(edges), axis=2).transpose(1, 0, 2)   # (G, 4, 42)
    zb = bases.zh_at(centres).transpose(1, 0, 2)                        # (G, 2, 42)

    beta, fburst, tburst, gamma = theta[..., 1:5], theta[..., 5], theta[..., 6], theta[..., 7:9]
    fb = effective_fburst(fburst, tburst, t_age[:, None])                # (G, S)
    total = np.einsum("gsk,gk->gs", beta, basis_mass.sum(axis=2))        # NMF normalisation
    w_nmf = (1.0 - fb) / total                                           # (G, S)

    def nmf_dot(per_bin):                                                # per_bin (G, 42)
        return np.einsum("gsk,gk->gs", beta, np.einsum("gki,gi->gk", basis_mass, per_bin)) * w_nmf

    def formed_within(dt):
        lo, hi = edges[:, :-1], edges[:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(hi > lo, np.clip((dt - lo) / (hi - lo), 0.0, 1.0), 0.0)
        return nmf_dot(frac) + fb * (tburst < dt)

    # Per-bin arrays (G, S, 42): metallicity and the NMF mass fractions.
    metal = np.einsum("gsj,gji->gsi", gamma, zb)
    np.clip(metal, Z_MIN, Z_MAX, out=metal)
    mass = np.einsum("gsk,gki->gsi", beta, basis_mass)
    mass *= w_nmf[..., None]
    z_burst = burst_metallicity(gamma.reshape(-1, 2), tburst.ravel(), bases).reshape(fb.shape)

    # Surviving fraction: the table interpolated in log age at each galaxy's bin centres
    # (G, 42, n_z), then linearly in log Z per draw and bin (as SEDModel._ssp_msurv).
    log_z = model._log_z
    sm = model.table.surviving_mass                                      # (n_age, n_z)
    ia, wa = _interp_weights(model._log_age, np.log10(centres) + 9.0)
    sm_age = sm[ia] * (1 - wa)[..., None] + sm[ia + 1] * wa[..., None]
    # Fractional index of log Z on the table's grid (clipped to it), split into iz + wz.
    pos = np.interp(np.log10(metal), log_z, np.arange(len(log_z), dtype=np.float64))
    iz = np.minimum(pos.astype(np.intp), len(log_z) - 2)
    pos -= iz                                                            # wz in [0, 1]
    n_bins = centres.shape[1]
    iz += (np.arange(len(z) * n_bins).reshape(len(z), 1, n_bins) * len(log_z))
    flat = sm_age.reshape(-1)
    msurv_bins = flat[iz] * (1 - pos)
    msurv_bins += flat[iz + 1] * pos
    msurv_bins *= mass
    msurv = msurv_bins.sum(axis=2) + fb * model._ssp_msurv(tburst, z_burst)
    del msurv_bins, pos, iz
    mass *= metal
    z_mw = mass.sum(axis=2) + fb * z_burst

    log_m = theta[..., 0]
    mass_formed = 10.0 ** log_m
    sfr100 = formed_within(0.1) * mass_formed / 1e8
    sfr1g = formed_within(1.0) * mass_formed / 1e9
    with np.errstate(divide="ignore"):
        log_ssfr = np.log10(sfr1g) - log_m
    return {
        "log_mstar_formed": log_m.copy(),
        "log_mstar_surviving": log_m + np.log10(msurv),
        "sfr_100myr": sfr100,
        "sfr_1gyr": sfr1g,
        "log_ssfr_1gyr": log_ssfr,
        "z_mw": z_mw,
        "tage_mw": nmf_dot(centres) + fb * tburst,
    }


__all__ = ["derived_draws"]

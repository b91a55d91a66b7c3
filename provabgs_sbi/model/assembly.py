"""How the parts of a galaxy's SED combine (model-spec 1.5, 5.4): the one numpy definition
shared by :class:`~provabgs_sbi.model.sed_model.SEDModel`, the emulator's numpy path and
its fixed-redshift photometry.

    L_lambda = 10^log_mstar T_ISM(lambda) [(1 - fburst) L_NMF + fburst L_burst]

with fburst the effective burst fraction (0 when tburst >= t_age,
:func:`~provabgs_sbi.model.sfh.effective_fburst`). Attenuation a part receives on its
own (birth-cloud dust on young populations; diffuse dust on the burst when the NMF part
already includes it, as in PROVABGS's FSPS emulator) is applied by the caller before.

The TensorFlow emulator path evaluates the same expression in TensorFlow ops, in the same
order (:mod:`provabgs_sbi.emulator.tf_path`).
"""
from __future__ import annotations

import numpy as np


def assemble_sed(lum_nmf: np.ndarray, fburst: np.ndarray, burst_rows: np.ndarray,
                 lum_burst: np.ndarray | None, ism_transmission: np.ndarray | None = None,
                 log_mstar: np.ndarray | None = None) -> np.ndarray:
    """Mix the NMF part with the burst, attenuate by diffuse dust, scale by mass: in place.

    Every product is in the dtype of ``lum_nmf`` (float32 or float64); the weights are
    computed in float64 and then cast.

    Parameters
    ----------
    lum_nmf : ndarray of shape (N, n_wave)
        L_lambda of the NMF part per Msun formed, Lsun/Angstrom; overwritten with the
        result.
    fburst : ndarray of shape (N,)
        Effective burst fraction (0 where the burst does not happen).
    burst_rows : ndarray of int, shape (M,)
        The rows with fburst > 0, in ascending order.
    lum_burst : ndarray of shape (M, n_wave), or None when M = 0
        L_lambda of the burst SSP per Msun formed at those rows, in the dtype of
        ``lum_nmf``, with any attenuation of its own already applied.
    ism_transmission : ndarray of shape (N, n_wave), optional
        exp(-tau_ISM(lambda)) on the whole galaxy; None when the parts include it.
    log_mstar : ndarray of shape (N,), optional
        log10 of the mass formed (Msun); None leaves the result per Msun formed.

    Returns
    -------
    ndarray of shape (N, n_wave)
        ``lum_nmf``, now the galaxy's L_lambda (Lsun/Angstrom, or per Msun formed).
    """
    dtype = lum_nmf.dtype
    lum_nmf *= (1.0 - fburst).astype(dtype)[:, None]
    if len(burst_rows):
        lum_nmf[burst_rows] += fburst[burst_rows].astype(dtype)[:, None] * lum_burst
    if ism_transmission is not None:
        lum_nmf *= ism_transmission
    if log_mstar is not None:
        lum_nmf *= (10.0 ** log_mstar).astype(dtype)[:, None]
    return lum_nmf

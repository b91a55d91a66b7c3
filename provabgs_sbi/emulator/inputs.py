"""Network inputs of the emulator: the physical parameters and galaxy age mapped to what
the Speculator network takes, for each input convention (``input_mode``)."""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.parameters import betas_to_u

#: Input conventions: ours (log gammas; optionally also log10 beta1) and PROVABGS's
#: pretrained NMF emulator (linear gammas, dust inside the network).
INPUT_MODES = ("warped", "warped_logbeta1", "provabgs")
INPUT_NAMES = {
    "warped": ("u1", "u2", "u3", "log_gamma1", "log_gamma2", "tau_bc", "t_age"),
    "warped_logbeta1": ("u1", "u2", "u3", "log_gamma1", "log_gamma2", "tau_bc", "t_age",
                        "log_beta1"),
    "provabgs": ("u1", "u2", "u3", "gamma1", "gamma2", "dust1", "dust2", "dust_index", "t_age"),
}
#: Input modes whose networks exclude diffuse dust (applied analytically by the emulator).
ANALYTIC_DUST_MODES = ("warped", "warped_logbeta1")
#: Softening of the log10 beta1 input: log10(beta1 + LOG_BETA1_FLOOR).
LOG_BETA1_FLOOR = 1e-5


def extend_warped_inputs(x, mode: str) -> np.ndarray:
    """Network inputs of ``mode`` from the 7 ``"warped"`` inputs (N, 7).

    ``"warped_logbeta1"`` appends log10(beta1 + 1e-5), beta1 = 1 - u1: ln L of the UV and
    of the strong absorption lines varies like ln(beta1) as the first NMF component fades
    (beta1 -> 0), which an MLP of u1 alone fits poorly.
    """
    x = np.asarray(x, dtype=np.float64)
    if mode == "warped":
        return x
    if mode == "warped_logbeta1":
        return np.column_stack([x, np.log10(np.clip(1.0 - x[:, 0], 0.0, 1.0) + LOG_BETA1_FLOOR)])
    raise ValueError(f"input mode {mode!r} is not one of {ANALYTIC_DUST_MODES}")


def nmf_inputs(theta, t_age, mode: str = "warped") -> np.ndarray:
    """Network inputs from physical parameters (N, 12) and galaxy ages (N,) in Gyr.

    ``"warped"``: (N, 7) [u1, u2, u3, log10 gamma1, log10 gamma2, tau_bc, t_age] (diffuse dust
    is applied analytically); ``"warped_logbeta1"``: the same plus log10(beta1 + 1e-5),
    (N, 8); ``"provabgs"``: (N, 9) [u1, u2, u3, gamma1, gamma2, dust1, dust2, dust_index,
    t_age].
    """
    if mode not in INPUT_MODES:
        raise ValueError(f"input mode must be one of {INPUT_MODES}, got {mode!r}")
    theta = np.asarray(theta, dtype=np.float64)
    u = betas_to_u(theta[:, 1:5])
    u[:, 0] = np.maximum(u[:, 0], 1e-8)  # as PROVABGS: u1 clipped at 1e-8
    t_age = np.asarray(t_age, dtype=np.float64)
    if mode in ANALYTIC_DUST_MODES:
        with np.errstate(divide="ignore"):
            gam = np.log10(theta[:, 7:9])
        return extend_warped_inputs(np.column_stack([u, gam, theta[:, 9], t_age]), mode)
    return np.column_stack([u, theta[:, 7:9], theta[:, 9:12], t_age])

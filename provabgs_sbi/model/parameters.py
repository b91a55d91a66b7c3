"""The 12 physical parameters, the 11 warped coordinates, and input checks.

Physical order (model-spec 5.6), exposed to users everywhere::

    0 log_mstar  log10 of the total stellar mass formed [Msun]
    1-4 beta1..beta4   NMF star-formation-history weights, on the simplex
    5 fburst     fraction of the formed mass in the burst, [0, 1]
    6 tburst     lookback time of the burst [Gyr]
    7-8 gamma1, gamma2  NMF metallicity-history weights (linear)
    9 tau_bc     birth-cloud optical depth at 5500 A
    10 tau_ism   diffuse-dust optical depth at 5500 A
    11 n_dust    Kriek & Conroy (2013) slope offset

Warped order (what priors and flows work in, model-spec 1.1)::

    [log_mstar, u1, u2, u3, fburst, tburst, log10 gamma1, log10 gamma2, tau_bc, tau_ism, n_dust]

with the Betancourt (2013) stick-breaking map beta1 = 1 - u1, beta2 = u1 (1 - u2),
beta3 = u1 u2 (1 - u3), beta4 = u1 u2 u3.
"""
from __future__ import annotations

import numpy as np

PARAM_NAMES = ("log_mstar", "beta1", "beta2", "beta3", "beta4", "fburst", "tburst",
               "gamma1", "gamma2", "tau_bc", "tau_ism", "n_dust")
WARPED_NAMES = ("log_mstar", "u1", "u2", "u3", "fburst", "tburst", "log_gamma1",
                "log_gamma2", "tau_bc", "tau_ism", "n_dust")
#: Unit of each physical parameter ("" = dimensionless), in the order of PARAM_NAMES.
PARAM_UNITS = ("log10(Msun)", "", "", "", "", "", "Gyr", "", "", "", "", "")
N_PARAMS = len(PARAM_NAMES)
N_WARPED = len(WARPED_NAMES)

#: Tolerance on sum(beta) = 1 and on beta >= 0.
SIMPLEX_TOL = 1e-6
_LN10 = np.log(10.0)


def betas_to_u(beta: np.ndarray) -> np.ndarray:
    """Stick-breaking inverse: (N, 4) betas on the simplex -> (N, 3) u in [0, 1].

    u1 = 1 - beta1, u2 = 1 - beta2 / u1, u3 = 1 - beta3 / (u1 u2); where a
    denominator vanishes the later u are undefined and set to 0.5 (any value maps
    back to the same betas).
    """
    beta = np.asarray(beta, dtype=np.float64)
    u1 = 1.0 - beta[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        u2 = np.where(u1 > 0, 1.0 - beta[:, 1] / u1, 0.5)
        den = u1 * u2
        u3 = np.where(den > 0, 1.0 - beta[:, 2] / den, 0.5)
    return np.clip(np.stack([u1, u2, u3], axis=1), 0.0, 1.0)


def u_to_betas(u: np.ndarray) -> np.ndarray:
    """Stick-breaking map: (N, 3) u in [0, 1] -> (N, 4) betas summing to 1."""
    u = np.asarray(u, dtype=np.float64)
    u1, u2, u3 = u[:, 0], u[:, 1], u[:, 2]
    return np.stack([1.0 - u1, u1 * (1.0 - u2), u1 * u2 * (1.0 - u3), u1 * u2 * u3], axis=1)


def to_warped(theta: np.ndarray) -> np.ndarray:
    """Physical (N, 12) -> warped (N, 11) coordinates (gammas to log10)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    with np.errstate(divide="ignore"):
        return np.concatenate([theta[:, :1], betas_to_u(theta[:, 1:5]), theta[:, 5:7],
                               np.log10(theta[:, 7:9]), theta[:, 9:]], axis=1)


def from_warped(theta_w: np.ndarray) -> np.ndarray:
    """Warped (N, 11) -> physical (N, 12) coordinates."""
    theta_w = np.atleast_2d(np.asarray(theta_w, dtype=np.float64))
    return np.concatenate([theta_w[:, :1], u_to_betas(theta_w[:, 1:4]), theta_w[:, 4:6],
                           10.0 ** theta_w[:, 6:8], theta_w[:, 8:]], axis=1)


def warp_log_jacobian(theta: np.ndarray, theta_w: np.ndarray | None = None) -> np.ndarray:
    """log |d theta_w / d theta| of the warp at physical points: what turns a density in
    warped coordinates into one in physical coordinates, log p(theta) = log p_w(theta_w) + this.

    The physical measure is Lebesgue on (log_mstar, beta1, beta2, beta3, fburst, tburst,
    gamma1, gamma2, tau_bc, tau_ism, n_dust) (beta4 = 1 - the others); the Jacobians are
    |d u / d beta| = 1 / (u1^2 u2) and |d log10 gamma / d gamma| = 1 / (gamma ln 10).

    Parameters
    ----------
    theta : ndarray of shape (N, 12)
        Physical parameters.
    theta_w : ndarray of shape (N, 11), optional
        ``to_warped(theta)``, when the caller has it already.

    Returns
    -------
    ndarray of shape (N,)
        Nats; +inf or NaN where u1, u2 or a gamma is 0 or negative (no warnings).
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    w = to_warped(theta) if theta_w is None else theta_w
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(2 * np.log(w[:, 1]) + np.log(w[:, 2])) \
               - np.log(theta[:, 7] * _LN10) - np.log(theta[:, 8] * _LN10)


def _fail(theta: np.ndarray, bad: np.ndarray, what: str) -> None:
    rows, cols = np.nonzero(bad) if bad.ndim == 2 else (np.nonzero(bad)[0], None)
    i = int(rows[0])
    if cols is None:
        detail = f"row {i}: {what}"
    else:
        j = int(cols[0])
        detail = f"row {i}, {PARAM_NAMES[j]} = {float(theta[i, j])!r}: {what}"
    raise ValueError(f"invalid parameters ({len(np.unique(rows))} bad row(s)); first: {detail}")


def check_theta(theta, n_params: int = N_PARAMS) -> np.ndarray:
    """Validate physical parameters and return them as a float64 (N, 12) array.

    Raises
    ------
    ValueError
        Naming the first offending row, parameter and value: wrong shape, NaN or
        infinite values, betas off the simplex, fburst outside [0, 1], tburst <= 0,
        negative gammas or optical depths.
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim == 1:
        theta = theta[None, :]
    if theta.ndim != 2 or theta.shape[1] != n_params:
        raise ValueError(f"theta must have shape (N, {n_params}) in the order {PARAM_NAMES}; "
                         f"got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        _fail(theta, ~np.isfinite(theta), "not finite")
    beta = theta[:, 1:5]
    if np.any(beta < -SIMPLEX_TOL):
        bad = np.zeros_like(theta, dtype=bool)
        bad[:, 1:5] = beta < -SIMPLEX_TOL
        _fail(theta, bad, "betas must be >= 0 (they lie on the simplex)")
    off = np.abs(beta.sum(axis=1) - 1.0) > SIMPLEX_TOL
    if np.any(off):
        i = int(np.nonzero(off)[0][0])
        raise ValueError(f"invalid parameters: row {i}: betas sum to {float(beta[i].sum())!r}, not 1 "
                         f"(beta1..beta4 = {beta[i].tolist()} must lie on the simplex)")
    checks = [
        (5, (theta[:, 5] < 0) | (theta[:, 5] > 1), "fburst must lie in [0, 1]"),
        (6, theta[:, 6] <= 0, "tburst (lookback, Gyr) must be > 0"),
        (7, theta[:, 7] < 0, "gamma1 must be >= 0"),
        (8, theta[:, 8] < 0, "gamma2 must be >= 0"),
        (9, theta[:, 9] < 0, "tau_bc must be >= 0"),
        (10, theta[:, 10] < 0, "tau_ism must be >= 0"),
    ]
    for j, bad_rows, what in checks:
        if np.any(bad_rows):
            bad = np.zeros_like(theta, dtype=bool)
            bad[:, j] = bad_rows
            _fail(theta, bad, what)
    return theta


def check_redshift(z, n: int, allow_zero: bool = True) -> np.ndarray:
    """Validate redshifts: broadcast to (n,), finite, >= 0 (or > 0 with ``allow_zero=False``)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0:
        z = np.full(n, float(z))
    if z.shape != (n,):
        raise ValueError(f"z must be a scalar or have shape ({n},); got {z.shape}")
    bad = ~np.isfinite(z) | (z < 0) | ((z == 0) & (not allow_zero))
    if np.any(bad):
        i = int(np.nonzero(bad)[0][0])
        need = ">= 0" if allow_zero else "> 0 (the luminosity distance vanishes at z = 0)"
        raise ValueError(f"invalid redshift: row {i}: z = {float(z[i])!r}; z must be finite and {need}")
    return z

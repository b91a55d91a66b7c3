"""Priors over the 12 PROVABGS parameters (model-spec 1.1 and 5.5).

Both priors are products of independent one-dimensional distributions in the 11 warped
coordinates [log_mstar, u1, u2, u3, fburst, tburst, log10 gamma1, log10 gamma2, tau_bc,
tau_ism, n_dust] on the box ``[low, high]``:

``"default"``
    The betas follow a flat Dirichlet(1, 1, 1, 1): in the stick-breaking coordinates that
    is u1 ~ Beta(3, 1), u2 ~ Beta(2, 1), u3 ~ U(0, 1). Everything else is uniform.
``"sedflow"``
    SEDflow's prior (its code): uniform in u1, u2, u3 (which is *not* a flat Dirichlet:
    the mean betas are 0.5, 0.25, 0.125, 0.125), uniform elsewhere.

Both are uniform in log_mstar [7, 12.5], fburst [0, 1], tburst [0.01, 13.27] Gyr
(lookback, linear), log10 gamma [log10 4.5e-5, log10 1.5e-2], tau_bc and tau_ism [0, 3]
and n_dust [-2, 1].
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.model.parameters import (N_PARAMS, N_WARPED, PARAM_NAMES, WARPED_NAMES,
                                           check_theta, from_warped, to_warped,
                                           warp_log_jacobian)

LOW = np.array([7.0, 0.0, 0.0, 0.0, 0.0, 0.01, np.log10(4.5e-5), np.log10(4.5e-5), 0.0, 0.0, -2.0])
HIGH = np.array([12.5, 1.0, 1.0, 1.0, 1.0, 13.27, np.log10(1.5e-2), np.log10(1.5e-2), 3.0, 3.0, 1.0])
KINDS = ("default", "sedflow")


class Prior:
    """Prior over the PROVABGS parameters.

    Parameters
    ----------
    kind : {"default", "sedflow"}
        See the module docstring.

    Attributes
    ----------
    low, high : ndarray of shape (11,)
        The support box in warped coordinates.
    """

    def __init__(self, kind: str = "default"):
        if kind not in KINDS:
            raise ValueError(f"unknown prior {kind!r}; choose one of {KINDS}")
        self.kind = kind
        self.low = LOW.copy()
        self.high = HIGH.copy()
        # Beta(a, 1) exponents for u1, u2 (a = 1 is uniform).
        self._beta_a = np.array([3.0, 2.0, 1.0]) if kind == "default" else np.ones(3)

    def __repr__(self):
        return f"Prior({self.kind!r})"

    # ------------------------------------------------------------- sampling
    def sample_warped(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` points in warped coordinates, shape (n, 11)."""
        rng = np.random.default_rng(seed)
        x = rng.uniform(self.low, self.high, size=(int(n), N_WARPED))
        # Beta(a, 1) by inverse CDF: F(u) = u^a.
        x[:, 1:4] = rng.uniform(size=(int(n), 3)) ** (1.0 / self._beta_a)
        return x

    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` points in physical coordinates, shape (n, 12) (order of PARAM_NAMES)."""
        return from_warped(self.sample_warped(n, seed))

    # ------------------------------------------------------------- densities
    def in_support_warped(self, theta_w) -> np.ndarray:
        """Whether each warped point (N, 11) lies in the closed box, shape (N,)."""
        theta_w = np.atleast_2d(np.asarray(theta_w, dtype=np.float64))
        return np.all((theta_w >= self.low) & (theta_w <= self.high), axis=1)

    def log_prob_warped(self, theta_w) -> np.ndarray:
        """Log density in warped coordinates (what flows learn), shape (N,); -inf outside."""
        theta_w = np.atleast_2d(np.asarray(theta_w, dtype=np.float64))
        if theta_w.shape[1] != N_WARPED:
            raise ValueError(f"warped theta must have shape (N, {N_WARPED}) in the order {WARPED_NAMES}")
        width = self.high - self.low
        logp = -np.log(width).sum() + np.log(width[1:4]).sum()  # box part for non-u coordinates
        u = np.clip(theta_w[:, 1:4], 0.0, 1.0)
        a = self._beta_a
        with np.errstate(divide="ignore"):
            logp = logp + (np.log(a) + (a - 1) * np.log(u)).sum(axis=1)
        inside = self.in_support_warped(theta_w)
        return np.where(inside, logp, -np.inf)

    def log_prob(self, theta) -> np.ndarray:
        """Log density of physical parameters (N, 12), shape (N,); -inf outside the support.

        The density is with respect to Lebesgue measure on (log_mstar, beta1, beta2, beta3,
        fburst, tburst, gamma1, gamma2, tau_bc, tau_ism, n_dust) (beta4 = 1 - the others):
        the warped density times the Jacobians |d u / d beta| = 1 / (u1^2 u2) and
        |d log10 gamma / d gamma| = 1 / (gamma ln 10)
        (:func:`~provabgs_sbi.model.parameters.warp_log_jacobian`).
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        if theta.shape[1] != N_PARAMS:
            raise ValueError(f"theta must have shape (N, {N_PARAMS}) in the order {PARAM_NAMES}")
        ok = self.in_support(theta)
        out = np.full(len(theta), -np.inf)
        if np.any(ok):
            t = theta[ok]
            w = to_warped(t)
            out[ok] = self.log_prob_warped(w) + warp_log_jacobian(t, w)
        return out

    def in_support(self, theta) -> np.ndarray:
        """Whether each physical point (N, 12) lies in the prior support, shape (N,)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
        finite = np.all(np.isfinite(theta), axis=1)
        beta = theta[:, 1:5]
        simplex = np.all(beta >= -1e-9, axis=1) & (np.abs(beta.sum(axis=1) - 1) <= 1e-6)
        positive = np.all(theta[:, 7:9] > 0, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            box = self.in_support_warped(to_warped(np.where(np.isfinite(theta), theta, 0.5)))
        return finite & simplex & positive & box

    def check(self, theta) -> np.ndarray:
        """Validate physical parameters against the prior support.

        Returns the (N, 12) float64 array; raises ValueError naming the first point outside
        the support, the parameter and its allowed range.
        """
        theta = check_theta(theta)
        ok = self.in_support(theta)
        if not np.all(ok):
            i = int(np.nonzero(~ok)[0][0])
            w = to_warped(theta[i:i + 1])[0]
            bad = [f"{WARPED_NAMES[j]} = {w[j]:.6g} not in [{self.low[j]:.6g}, {self.high[j]:.6g}]"
                   for j in range(N_WARPED) if not (self.low[j] <= w[j] <= self.high[j])]
            raise ValueError(f"{(~ok).sum()} point(s) outside the {self.kind} prior support; "
                             f"first: row {i}: {'; '.join(bad) or 'not on the simplex'}")
        return theta

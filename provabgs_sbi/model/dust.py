"""Dust attenuation curves (model-spec 1.4b), pure array functions.

Diffuse dust: Kriek & Conroy (2013), i.e. FSPS ``dust_type=4``: the Calzetti et al.
(2000) curve k'(lambda) plus a Drude UV bump whose strength is tied to the slope
offset, tilted by (lambda / 5500 A)^n_dust and normalised so that tau(5500 A) ~ tau_ISM.
Birth clouds: Charlot & Fall (2000), tau_BC (lambda / 5500 A)^-1, for young stars only.
"""
from __future__ import annotations

import numpy as np

V_WAVE = 5500.0        # Angstrom
BUMP_WAVE = 2175.0     # Angstrom
BUMP_WIDTH = 350.0     # Angstrom
RV_CALZETTI = 4.05
#: UV-bump strength E_b = BUMP_E0 - BUMP_E_SLOPE n_dust (Kriek & Conroy 2013).
BUMP_E0 = 0.85
BUMP_E_SLOPE = 1.9


def calzetti_kprime(wave) -> np.ndarray:
    """Calzetti et al. (2000) k'(lambda) as FSPS evaluates it.

    Parameters
    ----------
    wave : array_like
        Rest wavelength in Angstrom.

    Returns
    -------
    ndarray
        k'(lambda), same shape; both polynomial pieces are used at all wavelengths
        (blue piece below 0.63 micron), and k' is set to 0 where it would be negative.
    """
    lam = np.asarray(wave, dtype=np.float64) / 1e4  # micron
    blue = (1.17 * (-2.156 + 1.509 / lam - 0.198 / lam**2 + 0.011 / lam**3) + 1.78) / 0.44
    red = (1.17 * (-1.857 + 1.040 / lam) + 1.78) / 0.44
    k = np.where(lam < 0.63, blue, red)
    return np.clip(k, 0.0, None)


def drude_profile(wave) -> np.ndarray:
    """Drude profile D(lambda) of the 2175 A bump at unit strength (Kriek & Conroy 2013):
    (lambda w)^2 / [(lambda^2 - lambda_0^2)^2 + (lambda w)^2], lambda_0 = 2175 A, w = 350 A.

    ``wave``: rest wavelength in Angstrom, any shape; returns the same shape, 1 at lambda_0.
    """
    wave = np.asarray(wave, dtype=np.float64)
    return (wave * BUMP_WIDTH) ** 2 / ((wave**2 - BUMP_WAVE**2) ** 2 + (wave * BUMP_WIDTH) ** 2)


def bump_strength(n_dust):
    """Bump strength E_b = 0.85 - 1.9 n_dust (Kriek & Conroy 2013).

    Elementwise on a numpy array or a TensorFlow tensor of any shape (the result has its
    dtype).
    """
    return BUMP_E0 - BUMP_E_SLOPE * n_dust


def kc_optical_depth(tau_ism, n_dust, ln_x, kprime, bump_shape, exp):
    """tau_ISM(lambda) of Kriek & Conroy (2013) from the curve's cached shapes, in any array
    library: numpy arrays, or TensorFlow tensors (the TensorFlow emulator path).

    tau_ISM(lambda) = tau_ism / R_V [k'(lambda) + E_b(n_dust) D(lambda)] (lambda / 5500 A)^n_dust.

    Parameters
    ----------
    tau_ism, n_dust : array of shape (N,)
        Optical depth at 5500 A and slope offset.
    ln_x, kprime, bump_shape : array of shape (n_wave,)
        ln(lambda / 5500 A), Calzetti k'(lambda) and the unit Drude profile
        (:class:`DiffuseDust` holds them for a grid).
    exp : callable
        The library's elementwise exponential (``np.exp``, ``tf.exp``).

    Returns
    -------
    array of shape (N, n_wave)
    """
    tilt = exp(n_dust[:, None] * ln_x[None, :])
    curve = kprime[None, :] + bump_strength(n_dust)[:, None] * bump_shape[None, :]
    return (tau_ism / RV_CALZETTI)[:, None] * curve * tilt


def diffuse_optical_depth(wave, tau_ism, n_dust) -> np.ndarray:
    """tau_ISM(lambda) of Kriek & Conroy (2013) (:func:`kc_optical_depth` on ``wave``).

    Parameters
    ----------
    wave : ndarray of shape (n_wave,)
        Rest wavelength in Angstrom.
    tau_ism, n_dust : ndarray of shape (N,)
        Optical depth at 5500 A and slope offset.

    Returns
    -------
    ndarray of shape (N, n_wave)
    """
    dust = DiffuseDust(wave)
    return kc_optical_depth(np.asarray(tau_ism, dtype=np.float64),
                            np.asarray(n_dust, dtype=np.float64),
                            dust.ln_x, dust.kprime, dust.bump_shape, np.exp)


class DiffuseDust:
    """Kriek & Conroy (2013) transmission on a fixed wavelength grid, its shapes cached.

    Parameters
    ----------
    wave : ndarray of shape (n_wave,)
        Rest wavelength in Angstrom.

    Attributes
    ----------
    ln_x : ndarray
        ln(lambda / 5500 A), the log of the tilt's base.
    kprime, bump_shape : ndarray
        Calzetti k'(lambda) and the Drude profile of unit strength.
    """

    def __init__(self, wave):
        self.wave = np.asarray(wave, dtype=np.float64)
        self.ln_x = np.log(self.wave / V_WAVE)
        self.kprime = calzetti_kprime(self.wave)
        self.bump_shape = drude_profile(self.wave)

    def transmission(self, tau_ism, n_dust, dtype=np.float64) -> np.ndarray:
        """exp(-tau_ISM(lambda)), shape (N, n_wave), computed in place in ``dtype``.

        The numpy kernel of :func:`kc_optical_depth` (no temporary of size N x n_wave but
        the curve), its products in the order (tilt x curve) x (-tau_ism / R_V), which the
        committed emulators' numbers depend on.

        ``tau_ism``, ``n_dust``: ndarrays of shape (N,).
        """
        tau_ism = np.asarray(tau_ism, dtype=np.float64)
        n_dust = np.asarray(n_dust, dtype=np.float64)
        out = np.multiply.outer(n_dust.astype(dtype), self.ln_x.astype(dtype))
        np.exp(out, out=out)                                                  # tilt
        curve = np.multiply.outer(bump_strength(n_dust).astype(dtype), self.bump_shape.astype(dtype))
        curve += self.kprime.astype(dtype)
        out *= curve
        out *= (-tau_ism / RV_CALZETTI).astype(dtype)[:, None]
        np.exp(out, out=out)
        return out


def birth_cloud_transmission(wave, tau_bc, dtype=np.float64) -> np.ndarray:
    """exp(-tau_BC(lambda)), shape (N, n_wave), in ``dtype``."""
    wave = np.asarray(wave, dtype=np.float64)
    out = np.multiply.outer((-np.asarray(tau_bc, dtype=np.float64)).astype(dtype),
                            (V_WAVE / wave).astype(dtype))
    np.exp(out, out=out)
    return out

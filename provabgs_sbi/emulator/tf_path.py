"""TensorFlow (float32) evaluation of an :class:`~provabgs_sbi.emulator.Emulator`.

The per-galaxy O(N) preparation (network inputs, t_age, d_L, burst metallicity, SSP
interpolation indices) is done in numpy; everything of size N x n_wave (the networks, exp,
the burst SSP gather, dust, and the filter integrals) runs in jit-compiled TensorFlow, on a
GPU when one is visible. The filter integrals are exact per galaxy (no redshift nodes):
each pixel's weight is the difference of the cumulative response integral G at its
redshifted edges, as in :class:`~provabgs_sbi.photometry.Photometer` with ``exact=True``.
"""
from __future__ import annotations

import numpy as np

from .. import cosmology
from ..dust import BUMP_WAVE, BUMP_WIDTH, RV_CALZETTI, V_WAVE, calzetti_kprime
from ..photometry import FINE_STEP, LSUN_ERG_S, pixel_edges
from ..sed_model import _axis_weights
from ..sfh import burst_metallicity
from .core import nmf_inputs
from .network import TFSpeculator


class TFEmulatorPath:
    """Jit-compiled TensorFlow spectra and photometry for one emulator."""

    def __init__(self, emu):
        import tensorflow as tf

        self.tf = tf
        self.emu = emu
        self.net = TFSpeculator(emu.networks)
        f32 = lambda a: tf.constant(np.asarray(a, dtype=np.float32))  # noqa: E731
        wave = emu.wave
        self.kprime = f32(calzetti_kprime(wave))
        self.bump = f32((wave * BUMP_WIDTH) ** 2 / ((wave**2 - BUMP_WAVE**2) ** 2 + (wave * BUMP_WIDTH) ** 2))
        self.lnx = f32(np.log(wave / V_WAVE))
        bm = emu.burst_model
        if bm is not None:
            self.ssp_rows = f32(bm.table.luminosity.reshape(-1, len(wave)))
        self.edges = f32(pixel_edges(wave))
        resp = emu._photometer._resp
        # G is kept in float64: pixel weights are small differences of large cumulative values.
        self.filters = [(float(fine[0]), len(fine), tf.constant(np.asarray(g, dtype=np.float64)),
                         float(norm)) for _, fine, g, norm in resp]
        self._spec = tf.function(self._spectrum, jit_compile=True, reduce_retracing=True)
        self._phot = tf.function(self._photometry, jit_compile=True, reduce_retracing=True)

    # ----------------------------------------------------------------- numpy prep
    def _prepare(self, theta, z):
        emu = self.emu
        t_age = cosmology.age_gyr(z)
        x = nmf_inputs(theta, t_age, emu.input_mode)
        active = (theta[:, 5] > 0) & (theta[:, 6] < t_age)
        fb = np.where(active, theta[:, 5], 0.0)
        n = len(theta)
        rows = np.zeros((n, 4), dtype=np.int32)
        w = np.zeros((n, 4))
        if np.any(active):
            bm = emu.burst_model
            if bm is None:
                raise ValueError("this emulator has no burst model: fburst must be 0 or tburst >= t_age(z)")
            zb = burst_metallicity(theta[:, 7:9], theta[:, 6], bm.bases)
            ia, wa = _axis_weights(bm._log_age, np.log10(theta[:, 6]) + 9.0)
            logz = np.log10(np.clip(zb, bm.table.metallicity[0], bm.table.metallicity[-1]))
            iz, wz = _axis_weights(bm._log_z, logz)
            nz = len(bm._log_z)
            base = ia * nz + iz
            rows = np.stack([base, base + 1, base + nz, base + nz + 1], axis=1).astype(np.int32)
            w = np.stack([(1 - wa) * (1 - wz), (1 - wa) * wz, wa * (1 - wz), wa * wz], axis=1)
            w[~active] = 0.0
        c = lambda a: self.tf.constant(np.asarray(a, dtype=np.float32))  # noqa: E731
        return (c(x), c(fb), self.tf.constant(rows), c(w), c(theta[:, 10]), c(theta[:, 11]),
                c(theta[:, 0]), self.tf.constant(np.asarray(z, dtype=np.float64)))

    # ----------------------------------------------------------------- TF kernels
    def _spectrum(self, x, fb, rows, w, tau_ism, n_dust, log_m):
        tf = self.tf
        lum = tf.exp(self.net._ln_spectrum(x)) * (1.0 - fb)[:, None]
        tilt = tf.exp(n_dust[:, None] * self.lnx[None, :])
        curve = self.kprime[None, :] + (0.85 - 1.9 * n_dust)[:, None] * self.bump[None, :]
        trans = tf.exp(-(tau_ism / RV_CALZETTI)[:, None] * curve * tilt)
        analytic = self.emu.analytic_ism_dust
        if self.emu.burst_model is not None:
            corners = tf.gather(self.ssp_rows, rows)                   # (N, 4, n_wave)
            burst = tf.reduce_sum(corners * w[:, :, None], axis=1)
            lum = lum + fb[:, None] * (burst if analytic else burst * trans)
        if analytic:
            lum = lum * trans
        return lum * tf.pow(10.0, log_m)[:, None]

    def _photometry(self, lum, z):
        tf = self.tf
        zp1 = tf.cast(1.0 + z, tf.float64)
        edges = tf.cast(self.edges, tf.float64)[None, :] * zp1[:, None]
        out = []
        for start, n_fine, g, norm in self.filters:
            pos = tf.clip_by_value((edges - start) / FINE_STEP, 0.0, n_fine - 1.0)
            i0 = tf.minimum(tf.cast(tf.floor(pos), tf.int32), n_fine - 2)
            frac = pos - tf.cast(i0, tf.float64)
            gi = tf.gather(g, i0) * (1.0 - frac) + tf.gather(g, i0 + 1) * frac
            weights = tf.cast((gi[:, 1:] - gi[:, :-1]) / (zp1[:, None] ** 2 * norm), tf.float32)
            out.append(tf.reduce_sum(lum * weights, axis=1))
        return tf.stack(out, axis=1)

    # ----------------------------------------------------------------- public
    def spectrum(self, theta, z):
        """(N, n_wave) float32 tensor of L_lambda in Lsun/A (inputs already validated)."""
        x, fb, rows, w, tau, nd, logm, _ = self._prepare(theta, z)
        return self._spec(x, fb, rows, w, tau, nd, logm)

    def photometry(self, theta, z, chunk: int = 4096) -> np.ndarray:
        """(N, n_bands) AB nanomaggies, float64 array (inputs already validated)."""
        out = np.empty((len(theta), len(self.filters)))
        scale = (1.0 + z) * LSUN_ERG_S / (4.0 * np.pi * cosmology.luminosity_distance_cm(z) ** 2) * 1e9
        for s in range(0, len(theta), chunk):
            sl = slice(s, s + chunk)
            x, fb, rows, w, tau, nd, logm, zz = self._prepare(theta[sl], z[sl])
            # Photometry of the unit-normalised spectrum, then the (float64) distance factor.
            lum = self._spec(x, fb, rows, w, tau, nd, logm * 0.0)
            out[sl] = self._phot(lum, zz).numpy().astype(np.float64)
        return out * scale[:, None] * 10.0 ** theta[:, :1]

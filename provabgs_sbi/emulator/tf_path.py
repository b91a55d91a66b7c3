"""TensorFlow (float32) evaluation of an :class:`~provabgs_sbi.emulator.Emulator`.

The per-galaxy O(N) preparation (network inputs, t_age, d_L, burst metallicity, SSP
interpolation indices) is done in numpy; everything of size N x n_wave (the networks, exp,
the burst SSP gather, dust, and the filter integrals) runs in jit-compiled TensorFlow, on a
GPU when one is visible. The filter integrals interpolate linearly between redshift
nodes exactly as :meth:`~provabgs_sbi.model.photometry.Photometer.nanomaggies` does, but each band
reads only the window of pixels its filter touches
(:meth:`~provabgs_sbi.model.photometry.Photometer.window_tables`): about 2,300 multiply-adds per
galaxy for ugriz instead of 5 x n_wave, and no float64 work on the spectrum.

Exact emission lines (:mod:`provabgs_sbi.emulator.lines`), when the emulator has them, are
computed in numpy at their few hundred pixels and spread onto the grid by one gather.

The spectrum is :func:`~provabgs_sbi.model.assembly.assemble_sed` written in TensorFlow ops
(the same products in the same order, in float32), with the diffuse dust of
:func:`~provabgs_sbi.model.dust.kc_optical_depth` and the burst SSP interpolated at the
corners of :meth:`~provabgs_sbi.model.sed_model.SEDModel.ssp_corners`.
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.emulator.inputs import nmf_inputs
from provabgs_sbi.emulator.network import TFSpeculator
from provabgs_sbi.model import cosmology
from provabgs_sbi.model.dust import kc_optical_depth
from provabgs_sbi.model.photometry import LSUN_ERG_S
from provabgs_sbi.model.sfh import burst_metallicity, effective_fburst
from provabgs_sbi.xla_shapes import pieces

#: Smallest padded batch of the photometry (``Emulator.photometry`` takes this path from
#: 32 galaxies on).
MIN_ROWS = 32


class TFEmulatorPath:
    """Jit-compiled TensorFlow spectra and photometry for one emulator."""

    def __init__(self, emu):
        import tensorflow as tf

        self.tf = tf
        self.emu = emu
        self.net = TFSpeculator(emu.networks)
        f32 = lambda a: tf.constant(np.asarray(a, dtype=np.float32))  # noqa: E731
        wave = emu.wave
        self.kprime = f32(emu._dust.kprime)
        self.bump = f32(emu._dust.bump_shape)
        self.lnx = f32(emu._dust.ln_x)
        bm = emu.burst_model
        if bm is not None:
            self.ssp_rows = f32(bm.table.luminosity.reshape(-1, len(wave)))
        phot = emu._photometer
        self.dz = phot.dz
        self.z_max = float(emu.z_range[1])
        self.windows = [(tf.constant(start.astype(np.int32)), f32(lo), f32(hi),
                         tf.range(lo.shape[1], dtype=tf.int32))
                        for start, lo, hi in phot.window_tables(self.z_max)]
        lines = emu.lines
        self.line_index = None if lines is None else tf.constant(lines.gather_index())
        self._spec = tf.function(self._spectrum, jit_compile=True, reduce_retracing=True)
        self._phot = tf.function(self._photometry, jit_compile=True, reduce_retracing=True)

    # ----------------------------------------------------------------- numpy prep
    def _prepare(self, theta, z):
        emu = self.emu
        t_age = cosmology.age_gyr(z)
        x = nmf_inputs(theta, t_age, emu.input_mode)
        fb = effective_fburst(theta[:, 5], theta[:, 6], t_age)
        active = fb > 0
        n = len(theta)
        rows = np.zeros((n, 4), dtype=np.int32)
        w = np.zeros((n, 4))
        if np.any(active):
            bm = emu.burst_ssp_model()
            zb = burst_metallicity(theta[:, 7:9], theta[:, 6], bm.bases)
            rows, w = bm.ssp_corners(theta[:, 6], zb)
            rows = rows.astype(np.int32)
            w[~active] = 0.0
        c = lambda a: self.tf.constant(np.asarray(a, dtype=np.float32))  # noqa: E731
        # Exact emission lines (a few hundred pixels per galaxy): numpy, spread in TF.
        lines = None if emu.lines is None else c(emu.lines.luminosity(theta, t_age))
        return (c(x), c(fb), self.tf.constant(rows), c(w), c(theta[:, 10]), c(theta[:, 11]),
                c(theta[:, 0]), lines)

    # ----------------------------------------------------------------- TF kernels
    def _spectrum(self, x, fb, rows, w, tau_ism, n_dust, log_m, lines=None):
        tf = self.tf
        lum = tf.exp(self.net._ln_spectrum(x))
        if lines is not None:
            padded = tf.concat([tf.zeros_like(lines[:, :1]), lines], axis=1)
            lum = lum + tf.gather(padded, self.line_index, axis=1)
        lum = lum * (1.0 - fb)[:, None]
        trans = tf.exp(-kc_optical_depth(tau_ism, n_dust, self.lnx, self.kprime, self.bump, tf.exp))
        analytic = self.emu.analytic_ism_dust
        if self.emu.burst_model is not None:
            corners = tf.gather(self.ssp_rows, rows)                   # (N, 4, n_wave)
            burst = tf.reduce_sum(corners * w[:, :, None], axis=1)
            lum = lum + fb[:, None] * (burst if analytic else burst * trans)
        if analytic:
            lum = lum * trans
        return lum * tf.pow(10.0, log_m)[:, None]

    def _photometry(self, lum, k, t):
        """Unscaled band integrals: ``lum`` (N, n_wave), node index ``k`` (N,) and the
        fraction ``t`` (N,) of the way to node k + 1."""
        tf = self.tf
        out = []
        for start, lo, hi, offsets in self.windows:
            cols = tf.gather(start, k)[:, None] + offsets[None, :]         # (N, n_win)
            seg = tf.gather(lum, cols, batch_dims=1)
            w = tf.gather(lo, k) * (1.0 - t)[:, None] + tf.gather(hi, k) * t[:, None]
            out.append(tf.reduce_sum(seg * w, axis=1))
        return tf.stack(out, axis=1)

    # ----------------------------------------------------------------- public
    def spectrum(self, theta, z):
        """(N, n_wave) float32 tensor of L_lambda in Lsun/A (inputs already validated)."""
        x, fb, rows, w, tau, nd, logm, lines = self._prepare(theta, z)
        return self._spec(x, fb, rows, w, tau, nd, logm, lines)

    def photometry(self, theta, z, chunk: int = 4096) -> np.ndarray:
        """(N, n_bands) AB nanomaggies, float64 array (inputs already validated)."""
        out = np.empty((len(theta), len(self.windows)))
        scale = (1.0 + z) * LSUN_ERG_S / (4.0 * np.pi * cosmology.luminosity_distance_cm(z) ** 2) * 1e9
        pos = np.asarray(z, dtype=np.float64) / self.dz
        k = np.floor(pos).astype(np.int32)
        t = (pos - k).astype(np.float32)
        for start, stop, size in pieces(len(theta), int(chunk), pad=True, min_bucket=MIN_ROWS):
            # Padded with copies of the last row (dropped), so that XLA meets few shapes
            # (:mod:`provabgs_sbi.xla_shapes`): a catalog's chunks would compile anew.
            idx = np.minimum(np.arange(start, start + size), stop - 1)
            x, fb, rows, w, tau, nd, logm, lines = self._prepare(theta[idx], z[idx])
            # Photometry of the unit-normalised spectrum, then the (float64) distance factor.
            lum = self._spec(x, fb, rows, w, tau, nd, logm * 0.0, lines)
            res = self._phot(lum, self.tf.constant(k[idx]), self.tf.constant(t[idx])).numpy()
            out[start:stop] = res[: stop - start].astype(np.float64)
        return out * scale[:, None] * 10.0 ** theta[:, :1]

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
computed at their few hundred pixels (the weights per lookback bin in numpy, the rest in
TensorFlow); the spectrum spreads them onto the grid by one
gather, the photometry adds them band by band from the filter weights at those pixels.

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
from provabgs_sbi.model.dust import V_WAVE, DiffuseDust, kc_optical_depth
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
        nodes = phot.node_weights(self.z_max)                # (n_int + 1, n_bands, n_wave)
        self.windows = [(tf.constant(start.astype(np.int32)), f32(lo), f32(hi),
                         tf.range(lo.shape[1], dtype=tf.int32))
                        for start, lo, hi in phot.window_tables(self.z_max, nodes)]
        lines = emu.lines
        self.line_index = None if lines is None else tf.constant(lines.gather_index())
        if lines is not None:
            # Photometry adds the lines band by band (spreading them onto the grid first
            # would cost 3x the rest of the kernel): each band's node weights at the line
            # pixels, (n_int + 1, n_pix, n_bands), and the dust curve there.
            self.line_nodes = f32(nodes[:, :, lines.pixels].transpose(0, 2, 1))
            dust = DiffuseDust(wave[lines.pixels])
            self.line_dust = (f32(dust.ln_x), f32(dust.kprime), f32(dust.bump_shape))
            n_pix = len(lines.pixels)
            self.line_tables = (f32(lines.table[lines.young].reshape(-1, n_pix)),
                                f32(lines.table[~lines.young].reshape(-1, n_pix)))
            self.line_bc = f32(V_WAVE / wave[lines.pixels])
            self._lphot = tf.function(self._line_photometry, jit_compile=True,
                                      reduce_retracing=True)
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
        # Exact emission lines: their weights per bin and metallicity node in numpy (no
        # BLAS, whose idle threads would slow the TF kernels that follow), the rest in TF.
        lines = None
        if emu.lines is not None:
            wl = emu.lines.weights(theta, t_age)
            young = emu.lines.young
            lines = (c(wl[:, young].reshape(n, -1)), c(wl[:, ~young].reshape(n, -1)),
                     c(theta[:, 9]))
        return (c(x), c(fb), self.tf.constant(rows), c(w), c(theta[:, 10]), c(theta[:, 11]),
                c(theta[:, 0]), lines)

    # ----------------------------------------------------------------- TF kernels
    def _spectrum(self, x, fb, rows, w, tau_ism, n_dust, log_m, lines=None):
        tf = self.tf
        lum = tf.exp(self.net._ln_spectrum(x))
        if lines is not None:
            lines = self._line_luminosity(*lines)
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

    def _line_luminosity(self, w_young, w_old, tau_bc):
        """Lines of the NMF part per Msun formed at their pixels (N, n_pix), as
        :meth:`NebularLines.luminosity`: weights (N, bins x metallicities) times the line
        table, birth-cloud dust on the young bins."""
        tf = self.tf
        young, old = self.line_tables
        return (tf.matmul(w_young, young) * tf.exp(-tau_bc[:, None] * self.line_bc[None, :])
                + tf.matmul(w_old, old))

    def _line_photometry(self, lines, fb, tau_ism, n_dust, k, t):
        """Unscaled band integrals of the exact lines (``lines``: the weights of
        :meth:`_line_luminosity`): the NMF part's share (1 - fb), diffuse dust at the line
        pixels, then the band weights at the pixels, interpolated between redshift nodes
        as in :meth:`_photometry`."""
        tf = self.tf
        lines = self._line_luminosity(*lines)
        lnx, kprime, bump = self.line_dust
        trans = tf.exp(-kc_optical_depth(tau_ism, n_dust, lnx, kprime, bump, tf.exp))
        lum = lines * (1.0 - fb)[:, None] * trans
        w = (tf.gather(self.line_nodes, k) * (1.0 - t)[:, None, None]
             + tf.gather(self.line_nodes, k + 1) * t[:, None, None])     # (N, n_pix, n_bands)
        return tf.einsum("np,npb->nb", lum, w)

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
            kk, tt = self.tf.constant(k[idx]), self.tf.constant(t[idx])
            lum = self._spec(x, fb, rows, w, tau, nd, logm * 0.0)
            res = self._phot(lum, kk, tt)
            if lines is not None:
                res = res + self._lphot(lines, fb, tau, nd, kk, tt)
            res = res.numpy()
            out[start:stop] = res[: stop - start].astype(np.float64)
        return out * scale[:, None] * 10.0 ** theta[:, :1]

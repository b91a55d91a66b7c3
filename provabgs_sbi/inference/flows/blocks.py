"""The elementwise maps of the autoregressive blocks, in TensorFlow: each turns a MADE's
outputs into a TFP bijector (affine: shift and positive scale; spline: a monotonic
rational-quadratic spline per dimension).

TensorFlow and TFP are imported lazily (:func:`tf_modules`): importing them takes
seconds, and configs, box maps and manifests need neither.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["MIN_SCALE", "SCALE_SHIFT", "SPLINE_MIN_BIN", "affine_block", "positive",
           "spline_block", "tf_modules"]

#: Positive outputs of the MADEs (the MAF scale, the spline's knot slopes) are
#: softplus(a + SCALE_SHIFT) + MIN_SCALE, which is 1 at a = 0.
MIN_SCALE = 1e-3
SCALE_SHIFT = float(np.log(np.expm1(1.0 - MIN_SCALE)))
#: Smallest spline bin width/height, as a fraction of the interval per bin.
SPLINE_MIN_BIN = 1e-3


def tf_modules():
    """``(tensorflow, tensorflow_probability)``, imported on first use."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    return tf, tfp


def positive(raw):
    """softplus(raw + SCALE_SHIFT) + MIN_SCALE, in TF: > 0, and 1 where raw = 0."""
    tf, _ = tf_modules()
    return tf.nn.softplus(raw + SCALE_SHIFT) + MIN_SCALE


def affine_block(made) -> Callable:
    """MAF ``bijector_fn``: the MADE's two outputs per dimension as shift and scale.

    Parameters
    ----------
    made : tfp.bijectors.AutoregressiveNetwork
        Conditional MADE with ``params=2``.

    Returns
    -------
    callable
        ``bijector_fn(y, conditional_input)`` -> ``Shift(shift)(Scale(positive(raw)))``;
        all-zero outputs give the identity.
    """
    tf, tfp = tf_modules()
    tfb = tfp.bijectors

    def bijector_fn(y, conditional_input=None):
        params = made(y, conditional_input=conditional_input)
        shift, raw = tf.unstack(params, num=2, axis=-1)
        scale = positive(raw)
        return tfb.Chain([tfb.Shift(shift), tfb.Scale(scale)])

    return bijector_fn


def spline_block(made, n_bins: int, bound: float) -> Callable:
    """MAF ``bijector_fn``: the MADE's outputs as a rational-quadratic spline per dimension.

    Bin widths and heights are softmaxes (each at least ``SPLINE_MIN_BIN`` of the
    interval), knot slopes positive as the affine scale (:func:`positive`): all-zero
    outputs give the identity map.

    Parameters
    ----------
    made : tfp.bijectors.AutoregressiveNetwork
        Conditional MADE with ``params = 3 n_bins - 1``.
    n_bins : int
        Spline segments.
    bound : float
        The spline acts on ``[-bound, bound]`` (identity outside).

    Returns
    -------
    callable
        ``bijector_fn(y, conditional_input)`` -> ``RationalQuadraticSpline``.
    """
    tf, tfp = tf_modules()
    tfb = tfp.bijectors
    span = 2.0 * bound

    def bins(raw):
        return (tf.nn.softmax(raw, axis=-1) * (1.0 - n_bins * SPLINE_MIN_BIN)
                + SPLINE_MIN_BIN) * span

    def bijector_fn(y, conditional_input=None):
        params = made(y, conditional_input=conditional_input)
        widths = bins(params[..., :n_bins])
        heights = bins(params[..., n_bins:2 * n_bins])
        slopes = positive(params[..., 2 * n_bins:])
        return tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-bound)

    return bijector_fn

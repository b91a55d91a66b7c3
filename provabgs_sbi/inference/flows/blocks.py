"""The elementwise maps of the flow's blocks, in TensorFlow: each turns a network's outputs
into a TFP bijector (affine: shift and positive scale; spline: a monotonic
rational-quadratic spline per dimension). :func:`affine_bijector` and
:func:`spline_bijector` take the raw outputs (coupling blocks call them directly);
:func:`affine_block` and :func:`spline_block` wrap them as the ``bijector_fn`` of a MAF.

TensorFlow and TFP are imported lazily (:func:`tf_modules`): importing them takes
seconds, and configs, box maps and manifests need neither.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["MIN_SCALE", "SCALE_SHIFT", "SPLINE_MIN_BIN", "affine_bijector", "affine_block",
           "n_block_params", "positive", "spline_bijector", "spline_block", "tf_modules"]

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


def n_block_params(transform: str, n_bins: int) -> int:
    """Raw network outputs per dimension of a block: 2 (affine) or ``3 n_bins - 1`` (spline)."""
    return 3 * n_bins - 1 if transform == "spline" else 2


def affine_bijector(params):
    """Shift and scale from raw outputs: ``Shift(shift)(Scale(positive(raw)))``.

    Parameters
    ----------
    params : tf.Tensor of shape (..., d, 2)
        ``[..., 0]`` the shift, ``[..., 1]`` the raw scale; all zeros give the identity.

    Returns
    -------
    tfp.bijectors.Bijector
        Elementwise on tensors of shape (..., d).
    """
    tf, tfp = tf_modules()
    tfb = tfp.bijectors
    shift, raw = tf.unstack(params, num=2, axis=-1)
    scale = positive(raw)
    return tfb.Chain([tfb.Shift(shift), tfb.Scale(scale)])


def spline_bijector(params, n_bins: int, bound: float):
    """A monotonic rational-quadratic spline per dimension from raw outputs.

    Bin widths and heights are softmaxes (each at least ``SPLINE_MIN_BIN`` of the
    interval), knot slopes positive as the affine scale (:func:`positive`): all-zero
    outputs give the identity map.

    Parameters
    ----------
    params : tf.Tensor of shape (..., d, 3 n_bins - 1)
        Raw widths (``n_bins``), heights (``n_bins``) and interior knot slopes
        (``n_bins - 1``), in that order.
    n_bins : int
        Spline segments.
    bound : float
        The spline acts on ``[-bound, bound]`` (identity outside).

    Returns
    -------
    tfp.bijectors.RationalQuadraticSpline
        Elementwise on tensors of shape (..., d).
    """
    tf, tfp = tf_modules()
    span = 2.0 * bound

    def bins(raw):
        return (tf.nn.softmax(raw, axis=-1) * (1.0 - n_bins * SPLINE_MIN_BIN)
                + SPLINE_MIN_BIN) * span

    widths = bins(params[..., :n_bins])
    heights = bins(params[..., n_bins:2 * n_bins])
    slopes = positive(params[..., 2 * n_bins:])
    return tfp.bijectors.RationalQuadraticSpline(widths, heights, slopes, range_min=-bound)


def affine_block(made) -> Callable:
    """MAF ``bijector_fn``: the MADE's two outputs per dimension as shift and scale.

    Parameters
    ----------
    made : tfp.bijectors.AutoregressiveNetwork
        Conditional MADE with ``params=2``.

    Returns
    -------
    callable
        ``bijector_fn(y, conditional_input)`` -> :func:`affine_bijector` of the MADE's
        outputs; all-zero outputs give the identity.
    """

    def bijector_fn(y, conditional_input=None):
        return affine_bijector(made(y, conditional_input=conditional_input))

    return bijector_fn


def spline_block(made, n_bins: int, bound: float) -> Callable:
    """MAF ``bijector_fn``: the MADE's outputs as a rational-quadratic spline per dimension
    (:func:`spline_bijector`).

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

    def bijector_fn(y, conditional_input=None):
        return spline_bijector(made(y, conditional_input=conditional_input), n_bins, bound)

    return bijector_fn

"""Sampling a masked autoregressive flow at the cost of one network pass per block.

A MAF block's inverse (data to noise, the density) is one pass of its MADE; its forward map
(noise to data, sampling) is sequential: dimension d of the output needs the MADE's outputs
for d, which depend on output dimensions < d. TFP's ``MaskedAutoregressiveFlow.forward``
therefore runs the whole MADE once per dimension, d passes per block (11 for our 11
flow-space dimensions), and sampling costs about d times the density.

Most of that work is repeated: a hidden unit of the MADE depends only on the inputs its
mask lets through, so once those are known its value never changes. Here each hidden unit
is computed exactly once, at the first step at which all of its inputs are known (its
*ready step*, read off the masks), and the outputs of dimension d use the units ready by
step d. The arithmetic is that of one masked pass, split into d small matrix products, and
the result is the same map as TFP's to float32 rounding (``tests/test_flows.py`` checks it).
This is the caching that fast autoregressive generation uses (e.g. Paine et al. 2016, "Fast
Wavenet generation"), applied to a MADE's hidden layers.

Only the order of work changes, so nothing about a trained flow (weights, files, densities)
does. :class:`SequentialMADE` holds the schedule of one MADE, built once from its masks;
:meth:`SequentialMADE.forward` runs it in TensorFlow (XLA-safe: static shapes, Python
loops unrolled at trace time).
"""
from __future__ import annotations

import numpy as np

from provabgs_sbi.inference.flows.blocks import tf_modules

__all__ = ["SequentialMADE", "ready_steps"]

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "sigmoid", "softplus", "swish", "silu")


def ready_steps(masks: list[np.ndarray], d: int, n_params: int) -> list[np.ndarray]:
    """Ready step of every hidden unit of a MADE: how many leading inputs it needs.

    Parameters
    ----------
    masks : list of 0/1 arrays
        The masks of the MADE's masked kernels, input layer first: (d, H_1), (H_1, H_2), ...,
        (H_L, d * n_params). Inputs are in autoregressive order (TFP's ``left-to-right``).
    d : int
        Event size.
    n_params : int
        Outputs per dimension.

    Returns
    -------
    list of int arrays, one of shape (H_l,) per hidden layer
        Unit j of layer l can be computed once inputs ``0 .. ready[l][j] - 1`` are known.

    Raises
    ------
    ValueError
        If the masks are not autoregressive in the given order (the outputs of dimension k
        would need a unit that is not ready by step k).
    """
    if len(masks) < 2:
        raise ValueError("a MADE with at least one hidden layer is needed")
    first = np.asarray(masks[0]) != 0
    if first.shape[0] != d:
        raise ValueError(f"the input mask has {first.shape[0]} rows, expected {d}")
    steps = [np.where(first.any(axis=0), d - np.argmax(first[::-1], axis=0), 0)]
    for m in masks[1:-1]:
        m = np.asarray(m) != 0
        steps.append(np.where(m.any(axis=0),
                              np.max(np.where(m, steps[-1][:, None], 0), axis=0), 0))
    out = (np.asarray(masks[-1]) != 0).reshape(-1, d, n_params)
    need = np.max(np.where(out.any(axis=2), steps[-1][:, None], 0), axis=0)   # (d,)
    if np.any(need > np.arange(d)):
        k = int(np.flatnonzero(need > np.arange(d))[0])
        raise ValueError(f"the masks are not autoregressive: the outputs of dimension {k} "
                         f"need inputs up to {int(need[k])}")
    return steps


class SequentialMADE:
    """The forward map of one MAF block, each hidden unit computed once.

    Parameters
    ----------
    variables : list of tf.Variable
        The MADE's weights in Keras order: per layer (masked kernel, bias, conditional
        kernel), hidden layers first, the output layer last.
    masks : list of (ndarray or None)
        Masks of those variables (None where unmasked).
    d : int
        Event size.
    n_params : int
        MADE outputs per dimension.
    activation : str
        The hidden layers' activation (a Keras name).
    bijector : callable
        ``bijector(params)`` for params of shape (N, 1, n_params) -> an elementwise TFP
        bijector (:func:`~provabgs_sbi.inference.flows.blocks.affine_bijector` or a spline
        one); its forward map takes noise of dimension k to data.
    """

    def __init__(self, variables, masks, d: int, n_params: int, activation: str, bijector):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not supported by the sequential "
                             f"sampler (one of {', '.join(_ACTIVATIONS)})")
        if len(variables) % 3 or len(variables) != len(masks):
            raise ValueError("expected (masked kernel, bias, conditional kernel) per layer")
        self.variables = list(variables)
        self.d, self.n_params = int(d), int(n_params)
        self.activation = activation
        self.bijector = bijector
        kernel_masks = [masks[i] for i in range(0, len(masks), 3)]
        if any(m is None for m in kernel_masks):
            raise ValueError("every layer's kernel must be masked")
        steps = ready_steps(kernel_masks, self.d, self.n_params)
        # Units of each hidden layer in order of ready step, and where each step's units end.
        self.orders = [np.argsort(s, kind="stable").astype(np.int32) for s in steps]
        self.ends = [np.searchsorted(np.sort(s), np.arange(self.d + 1), side="right")
                     for s in steps]

    def forward(self, u, c):
        """Noise (N, d) -> data (N, d) through this block, given standardised conditions c.

        Parameters
        ----------
        u : tf.Tensor of shape (N, d), float32
        c : tf.Tensor of shape (N, d_x), float32

        Returns
        -------
        tf.Tensor of shape (N, d)
        """
        tf, _ = tf_modules()
        import tf_keras

        act = tf_keras.activations.get(self.activation)
        v = self.variables
        n_layers = len(v) // 3
        hidden = n_layers - 1
        # Per hidden layer: kernel (rows: previous units in ready order), and the part of the
        # pre-activation that does not depend on the inputs (bias + conditional term).
        kernels, static = [], []
        prev_order = None
        for layer in range(hidden):
            kernel, bias, cond = v[3 * layer:3 * layer + 3]
            order = self.orders[layer]
            k = tf.gather(kernel, order, axis=1)
            if prev_order is not None:
                k = tf.gather(k, prev_order, axis=0)
            kernels.append(k)
            static.append(tf.gather(tf.matmul(c, cond) + bias, order, axis=1))
            prev_order = order
        out_kernel = tf.gather(v[-3], prev_order, axis=0)
        # The outputs accumulate each last-layer block as it is computed (a block's masked
        # weights to the outputs of earlier dimensions are zero), so no step rereads the
        # whole last layer: the batch's activations stay out of the memory traffic.
        out_acc = tf.matmul(c, v[-1]) + v[-2]                      # (N, d * n_params)
        p = self.n_params
        ys = []                                                     # output columns so far
        h = [[] for _ in range(hidden)]                             # unit blocks per layer
        for step in range(self.d + 1):
            # units of each layer whose inputs are all known now
            for layer in range(hidden):
                a = 0 if step == 0 else int(self.ends[layer][step - 1])
                b = int(self.ends[layer][step])
                if b == a:
                    continue
                pre = static[layer][:, a:b]
                if layer == 0:
                    if step:
                        pre = pre + tf.matmul(tf.concat(ys, axis=1), kernels[0][:step, a:b])
                else:
                    known = int(self.ends[layer - 1][step])
                    if known:
                        below = tf.concat(h[layer - 1], axis=1)[:, :known]
                        pre = pre + tf.matmul(below, kernels[layer][:known, a:b])
                h[layer].append(act(pre))
                if layer == hidden - 1 and step < self.d:
                    # only the outputs of dimensions >= step can depend on these units
                    out_acc = tf.concat(
                        [out_acc[:, :step * p],
                         out_acc[:, step * p:] + tf.matmul(h[layer][-1],
                                                           out_kernel[a:b, step * p:])], axis=1)
            if step == self.d:
                break
            # the outputs of dimension `step`, from the last layer's units ready by now
            params = out_acc[:, step * p:(step + 1) * p]
            ys.append(self.bijector(params[:, None, :]).forward(u[:, step:step + 1]))
        return tf.concat(ys, axis=1)

"""The coupling flow on the standardised space z, in TensorFlow (``FlowConfig.family =
"coupling"``).

Each block splits the current ordering of the d coordinates into a passive head of ``m``
and an active tail of ``d - m``: the head passes unchanged, the tail goes through the
elementwise map of ``FlowConfig.transform`` (shift and scale, as RealNVP, Dinh et al. 2017;
or a rational-quadratic spline per dimension, the coupling NSF of Durkan et al. 2019 that
nflows and sbi build), whose parameters an MLP computes from the head and the standardised
conditioning data x, concatenated::

    params = MLP([z_head, c])              shape (N, d - m, n_params)
    z_tail <- map(params)(z_tail)

So both directions are one network pass per block (a MAF samples with d sequential
passes), and the log-determinant is the tail map's. Blocks alternate ``m = floor(d/2)``
and ``ceil(d/2)`` (5 and 6 for d = 11), and fixed permutations between blocks set which
coordinates form the head (:func:`coupling_permutations`): within a pair of blocks the
halves swap, so every coordinate is mapped exactly once per pair, conditioned on the
other half; between pairs a seeded random permutation draws a new split, so that
coordinates the previous pair kept on the same side are mapped given each other. With
d = 1 there is nothing to couple: every block is a map of the one coordinate given x
alone (``m = 0``).

As for the MAF, the untrained flow is close to the identity: each MLP's output layer
starts 100x smaller than Glorot and with zero bias, and zero outputs are the identity map
(:mod:`~provabgs_sbi.inference.flows.blocks`). The weights are stored block by block,
each MLP's layers in order, kernel then bias.
"""
from __future__ import annotations

import math

import numpy as np

from provabgs_sbi.inference.flows.blocks import (affine_bijector, n_block_params,
                                                  spline_bijector, tf_modules)
from provabgs_sbi.inference.flows.config import FlowConfig
from provabgs_sbi.inference.flows.network import FlowNetwork

__all__ = ["Coupling", "coupling_permutations", "passive_sizes"]


def passive_sizes(d: int, n_blocks: int) -> list[int]:
    """Length ``m`` of the passive head of each block: ``floor(d/2)`` for even blocks,
    ``ceil(d/2)`` for odd ones (all 0 when d = 1)."""
    if d == 1:
        return [0] * n_blocks
    return [d // 2 if k % 2 == 0 else d - d // 2 for k in range(n_blocks)]


def coupling_permutations(d: int, config: FlowConfig) -> list[np.ndarray]:
    """The ``n_transforms - 1`` permutations between coupling blocks, int arrays of shape (d,).

    ``perm`` reorders ``z -> z[..., perm]`` (as :class:`tfp.bijectors.Permute`). After an
    even block (head ``m``) it moves the tail to the front, ``[m, ..., d-1, 0, ..., m-1]``,
    so the next block maps what this one kept; after an odd block it is a random
    permutation seeded by ``config.seed`` (a new split for the next pair). Identity when
    d = 1.
    """
    rng = np.random.default_rng([config.seed, 2])
    sizes = passive_sizes(d, config.n_transforms)
    perms = []
    for k in range(config.n_transforms - 1):
        if d == 1:
            p = np.arange(d)
        elif k % 2 == 0:
            m = sizes[k]
            p = np.concatenate([np.arange(m, d), np.arange(m)])
        else:
            p = rng.permutation(d)
        perms.append(p)
    return perms


def _activation(name: str):
    """The TF function of a ``FlowConfig.activation`` name."""
    tf, _ = tf_modules()
    return {"relu": tf.nn.relu, "tanh": tf.nn.tanh, "elu": tf.nn.elu, "gelu": tf.nn.gelu,
            "silu": tf.nn.silu, "softplus": tf.nn.softplus, "sigmoid": tf.nn.sigmoid}[name]


class Coupling(FlowNetwork):
    """Conditional coupling flow q(z | c) of ``d_theta`` dimensions given ``d_x`` inputs.

    Parameters
    ----------
    config : FlowConfig
        Number of blocks, MLP widths and activation, affine or spline maps
        (``config.family`` is "coupling").
    d_theta, d_x : int
    permutations : list of int arrays of shape (d_theta,)
        The ``n_transforms - 1`` permutations between blocks
        (:func:`coupling_permutations`).

    Attributes
    ----------
    passive : list of int
        Passive head length of each block (:func:`passive_sizes`).
    layers : list of list of (tf.Variable, tf.Variable)
        Each block's MLP: (kernel, bias) per layer; the first kernel has
        ``passive[k] + d_x`` rows, the last ``(d_theta - passive[k]) * n_params`` columns.
    variables : list of tf.Variable
        The trainable weights, in the saved order (block by block, kernel then bias).
    masks : list of None
        No weight is masked.
    """

    def __init__(self, config: FlowConfig, d_theta: int, d_x: int,
                 permutations: list[np.ndarray]):
        tf, _ = tf_modules()
        n_blocks = config.n_transforms
        perms = [np.asarray(p, dtype=np.int32) for p in permutations]
        if len(perms) != n_blocks - 1 or any(
                not np.array_equal(np.sort(p), np.arange(d_theta)) for p in perms):
            raise ValueError(f"expected {n_blocks - 1} permutations of range({d_theta}), "
                             f"got {[p.tolist() for p in perms]}")
        self.d_theta, self.d_x = d_theta, d_x
        self._perms = perms
        self._inverse_perms = [np.argsort(p).astype(np.int32) for p in perms]
        self._act = _activation(config.activation)
        self._transform = config.transform
        self._n_bins, self._bound = config.spline_bins, config.spline_bound
        self._n_params = n_block_params(config.transform, config.spline_bins)
        self.passive = passive_sizes(d_theta, n_blocks)
        self.layers = []
        for k, m in enumerate(self.passive):
            widths = [m + d_x, *config.hidden_units, (d_theta - m) * self._n_params]
            self.layers.append([
                (tf.Variable(tf.zeros([n_in, n_out]), name=f"coupling_{k}/layer_{j}/kernel"),
                 tf.Variable(tf.zeros([n_out]), name=f"coupling_{k}/layer_{j}/bias"))
                for j, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]))])
        self.variables = [v for block in self.layers for pair in block for v in pair]
        self.masks = [None] * len(self.variables)

    # ------------------------------------------------------------------ weights
    def init_weights(self, rng: np.random.Generator) -> None:
        """Seeded Glorot-uniform kernels and zero biases; each MLP's output kernel starts
        100x smaller, so the untrained flow is close to the identity map."""
        values = []
        for block in self.layers:
            for j, (kernel, bias) in enumerate(block):
                n_in, n_out = tuple(kernel.shape)
                limit = math.sqrt(6.0 / (n_in + n_out))
                w = rng.uniform(-limit, limit, size=(n_in, n_out))
                if j == len(block) - 1:
                    w *= 1e-2
                values += [w.astype(np.float32), np.zeros(n_out, np.float32)]
        self.set_weights(values)

    # ------------------------------------------------------------- flow math
    def _tail_map(self, k: int, head, c):
        """The elementwise bijector of block ``k``'s tail, from its head (N, m) and c (N, d_x)."""
        tf, _ = tf_modules()
        h = tf.concat([head, c], axis=-1)
        block = self.layers[k]
        for kernel, bias in block[:-1]:
            h = self._act(tf.matmul(h, kernel) + bias)
        kernel, bias = block[-1]
        params = tf.reshape(tf.matmul(h, kernel) + bias,
                            [-1, self.d_theta - self.passive[k], self._n_params])
        if self._transform == "spline":
            return spline_bijector(params, self._n_bins, self._bound)
        return affine_bijector(params)

    def _blocks_forward(self, z, c, with_log_det: bool):
        tf, _ = tf_modules()
        log_det = tf.zeros(tf.shape(z)[:-1], dtype=z.dtype) if with_log_det else None
        for k, m in enumerate(self.passive):
            head, tail = z[:, :m], z[:, m:]
            b = self._tail_map(k, head, c)
            if with_log_det:
                log_det += b.forward_log_det_jacobian(tail, event_ndims=1)
            z = tf.concat([head, b.forward(tail)], axis=-1)
            if k < len(self._perms):
                z = tf.gather(z, self._perms[k], axis=-1)
        return z, log_det

    def forward(self, eps, c):
        """Base noise (N, d) -> z (N, d), in TF: one MLP pass per block."""
        return self._blocks_forward(eps, c, with_log_det=False)[0]

    def forward_log_det(self, eps, c):
        """Base noise -> [z, log|det dz/d eps|] (N, d + 1), in TF, in one forward pass."""
        tf, _ = tf_modules()
        z, log_det = self._blocks_forward(eps, c, with_log_det=True)
        return tf.concat([z, log_det[:, None]], axis=-1)

    def inverse(self, z, c):
        """z (N, d) -> base noise (N, d) and log|det d noise / dz| (N,), in TF."""
        tf, _ = tf_modules()
        ildj = tf.zeros(tf.shape(z)[:-1], dtype=z.dtype)
        for k in reversed(range(len(self.passive))):
            if k < len(self._perms):
                z = tf.gather(z, self._inverse_perms[k], axis=-1)
            m = self.passive[k]
            head, tail = z[:, :m], z[:, m:]
            b = self._tail_map(k, head, c)
            ildj += b.inverse_log_det_jacobian(tail, event_ndims=1)
            z = tf.concat([head, b.inverse(tail)], axis=-1)
        return z, ildj

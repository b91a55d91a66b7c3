"""The masked autoregressive flow on the standardised space z, in TensorFlow, and what
every flow network shares (:class:`FlowNetwork`: weights in a fixed order, the density from
the inverse map).

Blocks of :class:`tfp.bijectors.MaskedAutoregressiveFlow` (Papamakarios et al. 2017), each
driven by a MADE (:class:`tfp.bijectors.AutoregressiveNetwork` with ``conditional=True``),
with fixed permutations between blocks and a standard-normal base. The order of the
weights (MADE by MADE, each MADE's variables in Keras order) is what saved flows store.
"""
from __future__ import annotations

import math

import numpy as np

from provabgs_sbi.inference.flows.blocks import (affine_bijector, affine_block, n_block_params,
                                                  spline_bijector, spline_block, tf_modules)
from provabgs_sbi.inference.flows.config import FlowConfig
from provabgs_sbi.inference.flows.sequential import SequentialMADE

__all__ = ["FlowNetwork", "MAF", "make_permutations"]


def make_permutations(d: int, config: FlowConfig) -> list[np.ndarray]:
    """The ``n_transforms - 1`` seeded permutations between blocks (never the identity
    when d > 1), each an int array of shape (d,)."""
    rng = np.random.default_rng([config.seed, 2])
    perms = []
    for _ in range(config.n_transforms - 1):
        p = rng.permutation(d)
        if d > 1 and np.array_equal(p, np.arange(d)):
            p = p[::-1].copy()
        perms.append(p)
    return perms


class FlowNetwork:
    """What the flow networks (:class:`MAF`, :class:`~provabgs_sbi.inference.flows.coupling.
    Coupling`) share: weights as a flat list of float32 arrays in a fixed order, and the
    density from the inverse map and a standard-normal base.

    A subclass sets ``variables`` and ``masks`` and defines ``init_weights(rng)``,
    ``inverse(z, c)``, ``forward(eps, c)`` and ``forward_log_det(eps, c)`` (TF, XLA-safe).

    Attributes
    ----------
    variables : list of tf.Variable
        The trainable weights, in the saved order.
    masks : list of (ndarray or None)
        A 0/1 float32 mask of each variable that has one (MADE kernels), else None:
        training masks the gradients and :meth:`set_weights` what it is given.
    """

    variables: list
    masks: list

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the trainable weights, float32 arrays, in a fixed order."""
        return [v.numpy().copy() for v in self.variables]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set the trainable weights (same order and shapes as :meth:`get_weights`)."""
        if len(weights) != len(self.variables):
            raise ValueError(f"expected {len(self.variables)} weight arrays, got {len(weights)}")
        for v, w, m in zip(self.variables, weights, self.masks):
            w = np.asarray(w, dtype=np.float32)
            if w.shape != tuple(v.shape):
                raise ValueError(f"weight {v.name}: shape {w.shape}, expected {tuple(v.shape)}")
            v.assign(w if m is None else w * m)

    def log_prob(self, z, c):
        """log q(z | c) (N,) in flow space (standard-normal base), in TF."""
        tf, _ = tf_modules()
        eps, ildj = self.inverse(z, c)
        d = tf.cast(tf.shape(z)[-1], z.dtype)
        return -0.5 * tf.reduce_sum(eps ** 2, axis=-1) - 0.5 * d * math.log(2 * math.pi) + ildj


class MAF(FlowNetwork):
    """Conditional MAF q(z | c) of ``d_theta`` dimensions given ``d_x`` conditioning inputs.

    Parameters
    ----------
    config : FlowConfig
        Number of blocks, MADE widths and activation, affine or spline blocks.
    d_theta, d_x : int
    permutations : list of int arrays of shape (d_theta,)
        The ``n_transforms - 1`` permutations between blocks.

    Attributes
    ----------
    mades : list of tfp.bijectors.AutoregressiveNetwork
    bijectors : list of tfp.bijectors.Bijector
        Applied in order to base noise: maf_0, permute_0, ..., maf_{K-1}.
    variables : list of tf.Variable
        The trainable weights, in the saved order.
    masks : list of (ndarray or None)
        The MADE masks of each variable (None for unmasked ones), float32.
    """

    def __init__(self, config: FlowConfig, d_theta: int, d_x: int,
                 permutations: list[np.ndarray]):
        tf, tfp = tf_modules()
        tfb = tfp.bijectors
        self.mades = []
        self.bijectors = []
        spline = config.transform == "spline"
        n_params = n_block_params(config.transform, config.spline_bins)
        for k in range(config.n_transforms):
            made = tfb.AutoregressiveNetwork(
                params=n_params, event_shape=[d_theta], conditional=True,
                conditional_event_shape=[d_x], hidden_units=list(config.hidden_units),
                activation=config.activation, name=f"made_{k}")
            made(tf.zeros([1, d_theta]), conditional_input=tf.zeros([1, d_x]))
            self.mades.append(made)
            self.bijectors.append(tfb.MaskedAutoregressiveFlow(
                bijector_fn=(spline_block(made, config.spline_bins, config.spline_bound)
                             if spline else affine_block(made)), name=f"maf_{k}"))
            if k < config.n_transforms - 1:
                self.bijectors.append(tfb.Permute(permutations[k], name=f"permute_{k}"))
        self.variables = [v for made in self.mades for v in made.trainable_variables]
        # The MADE masks live in the kernels' constraints, which only a Keras optimizer
        # applies. Keep them as arrays: training masks the gradients (so masked weights
        # stay exactly zero under Adam) and set_weights masks what it is given.
        self.masks = []
        for v in self.variables:
            constraint = getattr(v, "constraint", None)
            self.masks.append(None if constraint is None
                              else constraint(tf.ones_like(v)).numpy().astype(np.float32))
        # Sampling runs each MADE's hidden units once (sequential.py), not d passes per block;
        # False selects TFP's own forward maps (set before the first draw: the sampling
        # function is compiled once per flow), which benchmarks time side by side.
        self.sequential_sampling = True
        if spline:
            def params_to_bijector(params):
                return spline_bijector(params, config.spline_bins, config.spline_bound)
        else:
            params_to_bijector = affine_bijector
        self.sequential = []
        start = 0
        for made in self.mades:
            n_vars = len(made.trainable_variables)
            self.sequential.append(SequentialMADE(
                self.variables[start:start + n_vars], self.masks[start:start + n_vars],
                d_theta, n_params, config.activation, params_to_bijector))
            start += n_vars

    # ------------------------------------------------------------------ weights
    def init_weights(self, rng: np.random.Generator) -> None:
        """Seeded Glorot-uniform kernels (masked) and zero biases.

        The output layer of each MADE (its last three variables: masked kernel, bias,
        conditional kernel) starts 100x smaller, so the untrained flow is close to the
        identity map.
        """
        values = []
        for made in self.mades:
            made_vars = made.trainable_variables
            for k, v in enumerate(made_vars):
                shape = tuple(v.shape)
                if len(shape) == 1:
                    values.append(np.zeros(shape, np.float32))
                    continue
                limit = math.sqrt(6.0 / (shape[0] + shape[1]))
                w = rng.uniform(-limit, limit, size=shape)
                if k >= len(made_vars) - 3:
                    w *= 1e-2
                values.append(w.astype(np.float32))
        self.set_weights(values)

    # ------------------------------------------------------------- flow math
    def _kwargs(self, bijector, c) -> dict:
        return {"conditional_input": c} if bijector.name.startswith("maf") else {}

    def inverse(self, z, c):
        """z (N, d) -> base noise (N, d) and log|det d noise / dz| (N,), in TF."""
        tf, _ = tf_modules()
        ildj = tf.zeros(tf.shape(z)[:-1], dtype=z.dtype)
        for b in reversed(self.bijectors):
            kwargs = self._kwargs(b, c)
            ildj += b.inverse_log_det_jacobian(z, event_ndims=1, **kwargs)
            z = b.inverse(z, **kwargs)
        return z, ildj

    def forward(self, eps, c):
        """Base noise (N, d) -> z (N, d), in TF: each MAF block by :class:`SequentialMADE`
        (the cost of one MADE pass), the same map as :meth:`forward_reference`."""
        if not self.sequential_sampling:
            return self.forward_reference(eps, c)
        z = eps
        made = iter(self.sequential)
        for b in self.bijectors:
            z = next(made).forward(z, c) if b.name.startswith("maf") else b.forward(z)
        return z

    def forward_reference(self, eps, c):
        """Base noise (N, d) -> z (N, d) through TFP's own MAF forward maps (d MADE passes
        per block); :meth:`forward` computes the same map, faster."""
        z = eps
        for b in self.bijectors:
            z = b.forward(z, **self._kwargs(b, c))
        return z

    def forward_log_det(self, eps, c):
        """Base noise -> [z, log|det dz/d eps|] (N, d + 1), in TF.

        The log-determinant is minus that of the inverse map evaluated at z: the MAF's
        inverse is one parallel pass per layer, where its forward pass is d sequential ones.
        """
        tf, _ = tf_modules()
        z = self.forward(eps, c)
        _, ildj = self.inverse(z, c)
        return tf.concat([z, -ildj[:, None]], axis=-1)

"""Conditional normalizing flows q(theta | x) on a box of parameters.

The flow is the density estimator of amortized neural posterior estimation (NPE, as in
SEDflow): trained by maximum likelihood on simulated pairs (theta, x), it gives posterior
samples and densities of theta for any observation x.

One idea per module:

``config``       :class:`FlowConfig` (validated settings) and its presets
``auto``         the default settings, chosen from the number of simulations
``box_maps``     the maps from the unit box to the real line (logit, probit, plateau)
``blocks``       the blocks' elementwise maps (affine, spline), in TF
``network``      the MAF: MADEs, permutations, weights, flow math in TF
``coupling``     the coupling flow (RealNVP / coupling NSF): MLPs, alternating halves, in TF
``bucketing``    chunked, padded calls of the compiled TF functions (XLA shape buckets)
``flow``         :class:`ConditionalFlow`: log_prob, sample, push_forward
``training``     the fit loop (Adam, early stopping, warm starts)
``checkpoints``  resumable training checkpoints
``storage``      save/load of a flow folder with its manifest

Parametrisation: the flow models ``z = (y - mean_y) / std_y`` with ``y`` the box map's
image of ``u = (theta - low) / (high - low)``, so samples never leave the box and
:meth:`ConditionalFlow.log_prob` is the density in theta space (``-inf`` outside). The
density on z is a TFP masked autoregressive flow (Papamakarios et al. 2017): blocks of
:class:`tfp.bijectors.MaskedAutoregressiveFlow`, each driven by a conditional MADE that
outputs a shift and an unconstrained scale per dimension, fixed permutations between
blocks and a standard-normal base. As in nflows/sbi, the scale is
``softplus(a + c) + 1e-3`` (``c`` chosen so that a = 0 is the identity), which keeps
training stable where the plain ``exp(log_scale)`` can overflow. With
``FlowConfig.transform="spline"`` each block is instead a monotonic rational-quadratic
spline per dimension (Durkan et al. 2019; the MAF form of sbi's "nsf"), identity outside
``[-spline_bound, spline_bound]``. With ``FlowConfig.family="coupling"`` the blocks are
coupling layers instead (RealNVP with affine maps, the coupling NSF of nflows/sbi with
splines): each maps about half of the dimensions given the other half and x, so sampling
is one network pass per block rather than the MAF's d sequential passes.

Examples
--------
>>> flow = ConditionalFlow.fit(theta, x, low=-1.0, high=1.0)   # doctest: +SKIP
>>> flow.config.auto_rule         # settings chosen from len(theta)   # doctest: +SKIP
'auto-1 (affine ..., spline ...)'
>>> samples = flow.sample(x_obs, 10_000, seed=1)   # (n_obs, 10000, d_theta)  # doctest: +SKIP
>>> logp = flow.log_prob(theta, x)                  # (N,)  # doctest: +SKIP
"""
from __future__ import annotations

from provabgs_sbi.inference.flows.auto import AUTO_RULE, auto_candidates
from provabgs_sbi.inference.flows.box_maps import BOX_EPS, BOX_TRANSFORMS, PLATEAU_HALF_WIDTH
from provabgs_sbi.inference.flows.config import BLOCK_TRANSFORMS, FLOW_FAMILIES, FlowConfig
from provabgs_sbi.inference.flows.flow import ConditionalFlow
from provabgs_sbi.inference.flows.training import TrainingInterrupted
from provabgs_sbi.io.artifacts import ChecksumError

__all__ = ["AUTO_RULE", "BLOCK_TRANSFORMS", "BOX_EPS", "BOX_TRANSFORMS", "ChecksumError", "ConditionalFlow",
           "FLOW_FAMILIES", "FlowConfig", "PLATEAU_HALF_WIDTH", "TrainingInterrupted", "auto_candidates"]

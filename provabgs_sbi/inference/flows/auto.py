"""Flow settings chosen from the data: the default of
:meth:`~provabgs_sbi.inference.flows.ConditionalFlow.fit` and of ``provabgs-sbi flow train``.

One procedure for every task (rule ``"auto-1"``). Two small masked autoregressive flows
are trained on the same simulations and the same validation split, their sizes and
training settings set by the number of simulations ``n``; the one with the lower
validation loss is kept:

==================  =====================================================================
setting             value
==================  =====================================================================
candidates          ``"affine"``: 5 affine blocks, tanh MADEs, weight decay 0.3;
                    ``"spline"``: 5 rational-quadratic spline blocks (10 bins on [-3, 3],
                    the MAF form of sbi's "nsf"), ReLU MADEs, weight decay
                    :data:`SPLINE_WEIGHT_DECAY`; both with the plateau box map
hidden units        2 layers of ``w = 50 * max(1, n / 10^4) ** (1/4)`` (rounded): 50 up to
                    10^4 simulations, 89 at 10^5, 158 at 10^6
batch size          ``clip(n / 400, 50, 1024)``: 50 up to 2 x 10^4, 250 at 10^5, 1024 from
                    4 x 10^5
learning rate       ``5e-4 * sqrt(batch / 50)``, at most 1e-3
early stopping      ``patience = max(20, ceil(3000 / steps per epoch))`` epochs
step-size schedule  halve after ``lr_patience = max(3, patience // 6)`` epochs without a
                    better validation loss
selection           lower best validation loss (nats per simulation, the held-out 10%)
==================  =====================================================================

Why. sbibm's published NPE (Lueckmann et al. 2021) used one small network for every task
and budget (sbi's NSF: 5 blocks of 50 units, batch 50, lr 5e-4) with early stopping on a
10% validation split; this package's old default, 6 x 2 x 128 units at batch 256, fits the
noise of 10^4 simulations (gaussian_linear: best epoch 3 of 23, the training loss below
the validation loss) and scores worse. Neither block kind is best everywhere: splines bend
a marginal into several modes or heavy tails (two_moons, gaussian_mixture: 0.24 nats
better than affine blocks at 10^4), but in 10 dimensions they overfit a Gaussian posterior
that affine blocks represent exactly (gaussian_linear at 10^4: KL 0.24 nats from the exact
posterior against 0.03, even with strong weight decay). The validation loss tells the two
apart (it estimates the expected KL divergence up to a constant shared by both, on the
same split), so the procedure trains both and keeps the better. What a flow can learn grows
with the data, so the width grows slowly with ``n``; an epoch's steps grow with ``n``, so
above 2 x 10^4 simulations the batch grows (with the step size as ``sqrt(batch)``) to keep
an epoch's cost bounded. Early stopping counts epochs, and with 10^3 simulations an epoch
is 18 steps: the patience is raised to about 3000 steps so that small training sets are
not stopped while the step size is still large (the best weights are kept in any case).

Cost: two trainings, each of a network no larger than sbi's default up to 10^4 simulations
(on 2 CPU cores: ~20-120 s each at 10^4 simulations for 2-10 dimensions).

The kept flow's :class:`FlowConfig` is the settings actually used, with ``auto_rule``
naming the rule and both candidates' validation losses; ``save`` writes it.
"""
from __future__ import annotations

import dataclasses
import math

from provabgs_sbi.inference.flows.config import FlowConfig

__all__ = ["AUTO_CANDIDATES", "AUTO_RULE", "AFFINE_WEIGHT_DECAY", "SPLINE_WEIGHT_DECAY",
           "auto_batch_size", "auto_candidates", "auto_width", "selection_record"]

#: Name of the procedure (the start of ``FlowConfig.auto_rule`` of a flow it chose).
AUTO_RULE = "auto-1"
#: The candidates' block kinds (``FlowConfig.transform``), in training order.
AUTO_CANDIDATES = ("affine", "spline")
#: Decoupled weight decay of the affine candidate (sbibm's gaussian_linear_uniform and
#: gaussian_linear at 10^4: best of 0, 0.03, 0.1, 0.3, 1).
AFFINE_WEIGHT_DECAY = 0.3
#: Decoupled weight decay of the spline candidate.
SPLINE_WEIGHT_DECAY = 0.0
#: Simulations at which the network has its base width (50 units).
_N_BASE = 10_000
_BASE_WIDTH, _BASE_BATCH, _BASE_LR = 50, 50, 5e-4
_MAX_BATCH, _MAX_LR = 1024, 1e-3
#: Simulations per row of the batch above 2 x 10^4 simulations.
_SIMS_PER_BATCH_ROW = 400
#: Early stopping waits at least this many optimiser steps (and 20 epochs).
_PATIENCE_STEPS, _MIN_PATIENCE = 3000, 20
#: Settings of each candidate beyond the shared ones.
_BLOCKS = {
    "affine": dict(transform="affine", activation="tanh", weight_decay=AFFINE_WEIGHT_DECAY),
    "spline": dict(transform="spline", activation="relu", spline_bins=10, spline_bound=3.0,
                   weight_decay=SPLINE_WEIGHT_DECAY),
}


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def auto_width(n: int) -> int:
    """Hidden-layer width for ``n`` simulations: 50 up to 10^4, then ~ n^(1/4)."""
    return int(round(_BASE_WIDTH * max(1.0, n / _N_BASE) ** 0.25))


def auto_batch_size(n: int) -> int:
    """Mini-batch size for ``n`` simulations: ``clip(n / 400, 50, 1024)``."""
    return int(min(_MAX_BATCH, max(_BASE_BATCH, round(n / _SIMS_PER_BATCH_ROW))))


def _shared_settings(n: int, validation_fraction: float) -> dict:
    """The settings both candidates take from ``n``."""
    batch = auto_batch_size(n)
    n_train = max(1, n - int(round(validation_fraction * n)))
    steps_per_epoch = math.ceil(n_train / min(batch, n_train))
    patience = max(_MIN_PATIENCE, math.ceil(_PATIENCE_STEPS / steps_per_epoch))
    width = auto_width(n)
    return dict(n_transforms=5, hidden_units=(width, width), box_transform="plateau",
                family="maf", batch_size=batch,
                learning_rate=min(_MAX_LR, _BASE_LR * math.sqrt(batch / _BASE_BATCH)),
                patience=patience, lr_patience=max(3, patience // 6), auto_rule=AUTO_RULE)


def auto_candidates(n_simulations: int, d_theta: int, d_x: int,
                    **overrides) -> tuple[FlowConfig, ...]:
    """The candidate settings of rule :data:`AUTO_RULE` for a training set (see the module).

    Parameters
    ----------
    n_simulations : int
        Number of simulated pairs (theta, x) given to ``fit``, validation split included.
    d_theta, d_x : int
        Dimensions of the parameters and of the data (checked; the rule does not use
        them beyond the networks they size).
    **overrides
        FlowConfig fields set by hand in every candidate (e.g. ``seed=3``,
        ``max_epochs=50``); the rule fills in the others.

    Returns
    -------
    tuple of FlowConfig
        One per :data:`AUTO_CANDIDATES`, in that order, each with ``auto_rule`` set.

    Raises
    ------
    ValueError
        A count that is not a positive integer, or an unknown or invalid field.
    """
    n = _check_count("n_simulations", n_simulations)
    _check_count("d_theta", d_theta)
    _check_count("d_x", d_x)
    names = {f.name for f in dataclasses.fields(FlowConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown FlowConfig fields {unknown}")
    shared = _shared_settings(n, overrides.get("validation_fraction", 0.1))
    return tuple(FlowConfig(**{**shared, **_BLOCKS[kind], **overrides})
                 for kind in AUTO_CANDIDATES)


def selection_record(val_losses: dict, rule: str = AUTO_RULE) -> str:
    """``auto_rule`` of the kept flow: the rule and each candidate's validation loss,
    e.g. ``"auto-1 (affine -0.8172, spline -0.6107)"``."""
    return (f"{rule} ("
            + ", ".join(f"{kind} {loss:.4f}" for kind, loss in val_losses.items()) + ")")

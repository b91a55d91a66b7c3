"""Settings of a conditional flow: :class:`FlowConfig`, validated at construction, with
the named presets of the shipped posteriors and the tests."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np

from provabgs_sbi.inference.flows.box_maps import BOX_TRANSFORMS

__all__ = ["ACTIVATIONS", "ARCHITECTURE_FIELDS", "BLOCK_TRANSFORMS", "FLOW_FAMILIES",
           "FlowConfig"]

#: Hidden-layer activations of the blocks' networks (MADEs, coupling MLPs).
ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu", "softplus", "sigmoid")
#: Elementwise maps of the blocks (``FlowConfig.transform``).
BLOCK_TRANSFORMS = ("affine", "spline")
#: How the blocks' networks see the other dimensions (``FlowConfig.family``).
FLOW_FAMILIES = ("maf", "coupling")
#: Fields that fix the network's shape and meaning: a warm start must keep them.
ARCHITECTURE_FIELDS = ("family", "n_transforms", "hidden_units", "activation", "box_transform",
                       "transform", "spline_bins", "spline_bound")

#: The named configurations of :meth:`FlowConfig.preset` (documented there).
_PRESETS = {
    "default": dict(n_transforms=6, hidden_units=(128, 128), activation="relu",
                    learning_rate=1e-3, batch_size=256, lr_patience=5),
    "sedflow-paper": dict(n_transforms=15, hidden_units=(500, 500), activation="tanh",
                          learning_rate=5e-4, batch_size=50),
    "tiny": dict(n_transforms=2, hidden_units=(16, 16), activation="tanh",
                 learning_rate=1e-2, batch_size=64, max_epochs=200, patience=10,
                 jit_compile=False),
}


@dataclass(frozen=True)
class FlowConfig:
    """Architecture and training settings of a :class:`ConditionalFlow` (validated).

    Attributes
    ----------
    n_transforms : int
        Number of blocks (each a MADE or coupling network and its elementwise map). A
        coupling flow needs at least 2, so that every dimension is transformed.
    hidden_units : tuple of int
        Hidden layer widths of each block's network, e.g. ``(128, 128)``.
    activation : str
        Hidden-layer activation, one of ``relu, tanh, elu, gelu, silu, softplus, sigmoid``.
    learning_rate : float
        Initial Adam step size.
    lr_patience : int
        Reduce the step size by ``lr_factor`` after this many epochs without a better
        validation loss (0: constant step size). With a constant step the validation loss
        of a 10^6-galaxy training set jumps by ~0.4 nats from epoch to epoch; lowering the
        step lets the last epochs settle into the minimum.
    lr_factor : float
        Multiplier of each reduction, in (0, 1).
    min_learning_rate : float
        The step size is not reduced below this.
    batch_size : int
        Training mini-batch size.
    max_epochs : int
        Upper bound on training epochs (passes over the training set).
    patience : int
        Early stopping: stop after this many epochs without a better validation loss.
    validation_fraction : float
        Fraction of the simulations held out (at random, seeded) for validation, in (0, 0.5].
    clip_norm : float
        Clip the gradient to this global L2 norm.
    weight_decay : float
        Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step also shrinks
        every kernel (not the biases) by ``learning_rate * weight_decay`` of itself.
        0 (default) is plain Adam. A regulariser for small simulation budgets, where the
        MADEs otherwise fit the simulations' noise (sbibm's gaussian_linear_uniform at
        10^5 simulations: training loss 0.07 nats below the validation loss).
    seed : int
        Seeds the split, the weight initialisation, the permutations and the shuffling.
    jit_compile : bool
        XLA-compile training, sampling and density evaluation.
    checkpoint_every : int
        With a ``checkpoint_dir``, write a checkpoint every this many epochs.
    box_transform : {"logit", "probit", "plateau"}
        The map from the unit box to the flow's unbounded space (see
        :mod:`~provabgs_sbi.inference.flows.box_maps`; "plateau" is for the sbibm benchmarks).
        Default "logit" (flows saved before the option existed used it).
    family : {"maf", "coupling"}
        How each block's network conditions the map of a dimension on the others.
        ``"maf"`` (default; every flow saved before the option): a masked autoregressive
        flow (Papamakarios et al. 2017), each dimension given all earlier ones through a
        MADE; density evaluation is one network pass per block, sampling ``d_theta``
        sequential passes. ``"coupling"``: coupling blocks (RealNVP, Dinh et al. 2017;
        with splines, the NSF of Durkan et al. 2019 as in nflows/sbi): a block leaves
        ``floor(d/2)`` or ``ceil(d/2)`` "passive" dimensions unchanged and maps the
        others, elementwise, with parameters from an MLP of the passive dimensions and
        the standardised x; both directions are one pass per block, so sampling is
        ``d_theta`` times fewer passes than the MAF's
        (:mod:`~provabgs_sbi.inference.flows.coupling`).
    transform : {"affine", "spline"}
        The elementwise map of each block: shift and scale (MAF/RealNVP), or a
        monotonic rational-quadratic spline (Durkan et al. 2019, as sbi's "nsf") on
        ``[-spline_bound, spline_bound]``, identity outside, whose ``3 spline_bins - 1``
        parameters per dimension the block's network outputs. Splines can bend one
        block's marginal into several modes (sbibm's two_moons); on nearly Gaussian
        posteriors they overfit more than affine blocks at the same number of simulations.
    spline_bins : int
        Number of spline segments.
    spline_bound : float
        Half-width, in standardised flow coordinates, of the interval the spline acts on.
    auto_rule : str
        Name of the automatic rule that chose these settings from the training set
        (:mod:`~provabgs_sbi.inference.flows.auto`; ``"auto-1 (affine -0.81, spline
        -0.61)"``: the rule and its candidates' validation losses), or
        ``""`` (default; every flow saved before the rule) for settings given by hand or
        by a preset. A record only: it changes nothing in the flow.
    whiten_columns : tuple of int
        Columns of the conditioning data x that are decorrelated together after
        standardisation (ZCA whitening, ``x_block -> x_block C^(-1/2)`` with C the block's
        covariance over the training data), e.g. a survey's magnitudes: they vary together
        by magnitudes from galaxy to galaxy while the colours that carry star formation
        and dust vary by hundredths, so in standardised magnitudes the informative
        directions have ~10x less variance than the brightness, and gradient descent
        learns them slowly. ``()`` (default; every flow saved before the option): none.
        A warm start may change it: the conditional kernels are mapped so that the new
        flow starts as exactly the old one (:func:`~provabgs_sbi.inference.flows.training.fit_flow`).
    """

    n_transforms: int = 6
    hidden_units: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    learning_rate: float = 1e-3
    lr_patience: int = 0
    lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 1000
    patience: int = 20
    validation_fraction: float = 0.1
    clip_norm: float = 5.0
    weight_decay: float = 0.0
    seed: int = 0
    jit_compile: bool = True
    checkpoint_every: int = 5
    box_transform: str = "logit"
    transform: str = "affine"
    spline_bins: int = 8
    spline_bound: float = 4.0
    family: str = "maf"
    auto_rule: str = ""
    whiten_columns: tuple[int, ...] = ()

    def __post_init__(self):
        hidden = self.hidden_units
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        try:
            hidden = tuple(int(h) for h in hidden)
        except TypeError:
            raise ValueError(f"hidden_units must be a tuple of ints, got {self.hidden_units!r}")
        object.__setattr__(self, "hidden_units", hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden_units must be non-empty positive ints, got {hidden}")
        for name in ("n_transforms", "batch_size", "max_epochs", "patience", "checkpoint_every",
                     "spline_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if isinstance(self.lr_patience, bool) or int(self.lr_patience) != self.lr_patience \
                or self.lr_patience < 0:
            raise ValueError(f"lr_patience must be an integer >= 0, got {self.lr_patience!r}")
        object.__setattr__(self, "lr_patience", int(self.lr_patience))
        if not 0 < self.lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {self.lr_factor}")
        if not (math.isfinite(self.min_learning_rate) and 0 < self.min_learning_rate
                <= self.learning_rate):
            raise ValueError("min_learning_rate must be in (0, learning_rate], "
                             f"got {self.min_learning_rate}")
        object.__setattr__(self, "lr_factor", float(self.lr_factor))
        object.__setattr__(self, "min_learning_rate", float(self.min_learning_rate))
        if not 0 < self.validation_fraction <= 0.5:
            raise ValueError("validation_fraction must be in (0, 0.5], "
                             f"got {self.validation_fraction}")
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ValueError(f"clip_norm must be > 0, got {self.clip_norm}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        object.__setattr__(self, "weight_decay", float(self.weight_decay))
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "learning_rate", float(self.learning_rate))
        object.__setattr__(self, "validation_fraction", float(self.validation_fraction))
        object.__setattr__(self, "clip_norm", float(self.clip_norm))
        object.__setattr__(self, "jit_compile", bool(self.jit_compile))
        if self.box_transform not in BOX_TRANSFORMS:
            raise ValueError(f"box_transform must be one of {BOX_TRANSFORMS}, "
                             f"got {self.box_transform!r}")
        if self.transform not in BLOCK_TRANSFORMS:
            raise ValueError(f"transform must be one of {BLOCK_TRANSFORMS}, "
                             f"got {self.transform!r}")
        if self.spline_bins < 2:
            raise ValueError(f"spline_bins must be >= 2, got {self.spline_bins}")
        if not (math.isfinite(self.spline_bound) and self.spline_bound > 0):
            raise ValueError(f"spline_bound must be > 0, got {self.spline_bound}")
        object.__setattr__(self, "spline_bound", float(self.spline_bound))
        if self.family not in FLOW_FAMILIES:
            raise ValueError(f"family must be one of {FLOW_FAMILIES}, got {self.family!r}")
        if not isinstance(self.auto_rule, str):
            raise ValueError(f"auto_rule must be a string, got {self.auto_rule!r}")
        try:
            cols = tuple(int(c) for c in self.whiten_columns)
        except (TypeError, ValueError):
            raise ValueError(f"whiten_columns must be column indices, got "
                             f"{self.whiten_columns!r}") from None
        if (any(isinstance(c, bool) for c in self.whiten_columns)
                or any(int(c) != c for c in self.whiten_columns)
                or min(cols, default=0) < 0 or len(set(cols)) != len(cols) or len(cols) == 1):
            raise ValueError(f"whiten_columns must be distinct column indices >= 0, none or "
                             f"at least two, got {self.whiten_columns!r}")
        object.__setattr__(self, "whiten_columns", tuple(sorted(cols)))
        if self.family == "coupling" and self.n_transforms < 2:
            raise ValueError("a coupling flow needs n_transforms >= 2 (a block maps only "
                             f"about half of the dimensions), got {self.n_transforms}")

    PRESETS = tuple(_PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides) -> "FlowConfig":
        """A named configuration, optionally with some fields replaced.

        Parameters
        ----------
        name : str
            ``"default"``
                6 blocks of 2 x 128 ReLU units, Adam lr 1e-3 halved after 5 epochs
                without improvement, batch 256. Draws 10^4
                samples for one observation (11 parameters, 11 data) in ~0.4 s on an idle
                2-core CPU (5 blocks: 0.31 s, 8 blocks: 0.53 s; 6 x 2x256: 1.1 s), 1.3 s
                while another job held most of the CPU
                (``benchmarks/bench_flow_sampling.py``).
            ``"sedflow-paper"``
                The MAF of SEDflow (Hahn & Melchior 2022): 15 blocks, MADEs of 2 x 500
                tanh units, Adam lr 5e-4, batch 50. The paper's sbi MAF also had
                batch normalisation inside its MADE blocks, which TFP's
                ``AutoregressiveNetwork`` does not have, so this is not bit-for-bit the
                paper's network. Sampling 10^4 draws takes ~12 s on 2 CPU cores, 30-40x
                ``"default"``.
            ``"tiny"``
                2 blocks of 2 x 16 tanh units, lr 1e-2, batch 64, no XLA (for a few
                seconds of training its compilation costs more than it saves): for tests.

            The sbibm benchmarks' settings ("sbibm-npe", "sbibm-nsf") live with them, in
            ``benchmarks/sbibm_tasks.py``.
            All presets are MAFs; ``family="coupling"`` makes the coupling flow of the same
            size, e.g. ``preset("default", family="coupling")``, which draws 10^4 samples
            ~10x (affine) or ~3x (spline) faster than the MAF
            (``benchmarks/bench_flow_family.py``).
        **overrides
            Fields to replace, e.g. ``seed=3``.

        Returns
        -------
        FlowConfig
        """
        if name not in _PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {cls.PRESETS}")
        return cls(**{**_PRESETS[name], **overrides})

    @classmethod
    def parse_overrides(cls, items) -> dict:
        """Field overrides from ``FIELD=VALUE`` strings (command lines).

        Values are read as JSON where they parse (``3``, ``0.3``, ``[64, 64]``, ``true``),
        else kept as text (``transform=spline``).

        Parameters
        ----------
        items : iterable of str

        Returns
        -------
        dict
            Field name -> value, for :meth:`preset` or the constructor (which validate).

        Raises
        ------
        ValueError
            An item without ``=``, or a name that is not a field.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        out = {}
        for item in items:
            field, sep, value = str(item).partition("=")
            if not sep:
                raise ValueError(f"expected FIELD=VALUE, got {item!r}")
            if field not in names:
                raise ValueError(f"unknown FlowConfig field {field!r}; fields: {sorted(names)}")
            try:
                out[field] = json.loads(value)
            except json.JSONDecodeError:
                out[field] = value
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields (``auto_rule`` and ``whiten_columns`` only when
        set, so that settings without them serialise as they did before the fields
        existed)."""
        out = dataclasses.asdict(self)
        out["hidden_units"] = list(self.hidden_units)
        if not out["auto_rule"]:
            del out["auto_rule"]
        if self.whiten_columns:
            out["whiten_columns"] = list(self.whiten_columns)
        else:
            del out["whiten_columns"]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FlowConfig":
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown FlowConfig fields {sorted(unknown)}")
        return cls(**d)

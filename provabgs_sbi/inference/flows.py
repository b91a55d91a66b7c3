"""Conditional masked autoregressive flow q(theta | x) on a box of parameters.

The flow is the density estimator of amortized neural posterior estimation (NPE, as in
SEDflow): trained by maximum likelihood on simulated pairs (theta, x), it gives posterior
samples and densities of theta for any observation x.

Parametrisation
---------------
The support is a box ``[low, high]`` (the prior's). The flow never sees theta itself: it
models a standardised unbounded image of the box coordinate,

    u = (theta - low) / (high - low)            in [0, 1]
    y = logit(u), Phi^-1(u) or plateau^-1(u)     unbounded (``FlowConfig.box_transform``)
    z = (y - mean_y) / std_y                     ~ zero mean, unit variance

with ``mean_y, std_y`` taken from the training set. Samples are mapped back through the
sigmoid (or Phi, or the plateau CDF) and so can never leave the box.
:meth:`ConditionalFlow.log_prob` returns the density in theta space, Jacobians of the
squashing map and of both affine maps included, and ``-inf`` outside the box. Points on
the boundary are moved ``BOX_EPS * (high - low)`` inside first.

Which squashing map: a density that stays finite at a face of the box (a uniform prior, a
posterior cut by the prior's edge) becomes, in y, a tail ~ u(1 - u) p: exponential for the
logit, ~ exp(-y^2 / 2) for the probit. A MAF of affine blocks on a standard-normal base
keeps Gaussian tails, so it can match the probit image of such a density but not the
logit's. Both maps bend a narrow posterior inside the box, more the closer it lies to a
face. The third map, "plateau", is linear on the central 76% of the box (|y| < 4) with
Gaussian shoulders (the CDF of a flat top with unit-Gaussian flanks), so a Gaussian
posterior in the centre stays Gaussian in y and one cut by a face keeps a Gaussian tail;
its price is that a density flat over the whole box (a prior-dominated parameter) becomes a
flat top, whose best Gaussian is 0.081 nats away, against 0 for the probit and 0.0145 for
the logit. Choose by the problem: the plateau suits likelihood-dominated posteriors
(sbibm's gaussian_linear_uniform), the probit prior-dominated ones.

The conditioning data x are standardised with the training
mean and standard deviation.

The flow on z is a TFP masked autoregressive flow (Papamakarios et al. 2017): blocks of
:class:`tfp.bijectors.MaskedAutoregressiveFlow`, each driven by a MADE
(:class:`tfp.bijectors.AutoregressiveNetwork` with ``conditional=True``) that outputs a
shift and an unconstrained scale per dimension, with fixed permutations between blocks
and a standard-normal base. As in nflows/sbi, the scale is ``softplus(a + c) + 1e-3``
(``c`` chosen so that a = 0 is the identity), which keeps training stable where the
plain ``exp(log_scale)`` can overflow. With ``FlowConfig.transform="spline"`` each block is
instead a monotonic rational-quadratic spline per dimension (Durkan et al. 2019; the MAF
form of sbi's "nsf"), identity outside ``[-spline_bound, spline_bound]``.

Training is a plain :class:`tf.GradientTape` loop: Adam, gradient-norm clipping, a
seeded train/validation split, early stopping on the validation loss with the best
weights kept. The steps of one epoch run inside one XLA-compiled ``tf.function``
(``FlowConfig.jit_compile``), which on CPU is several times faster than one Python call
per step. Training can write checkpoints and resume from them, ending where an
uninterrupted run would.

Examples
--------
>>> flow = ConditionalFlow.fit(theta, x, low=-1.0, high=1.0,
...                            config=FlowConfig.preset("default"))   # doctest: +SKIP
>>> samples = flow.sample(x_obs, 10_000, seed=1)   # (n_obs, 10000, d_theta)  # doctest: +SKIP
>>> logp = flow.log_prob(theta, x)                  # (N,)  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.special import expit, log_expit, logit, ndtr, ndtri

__all__ = ["BLOCK_TRANSFORMS", "BOX_EPS", "BOX_TRANSFORMS", "ChecksumError", "ConditionalFlow",
           "FlowConfig", "TrainingInterrupted"]

#: Box points closer than ``BOX_EPS * (high - low)`` to a face are moved to that distance
#: before the squashing map (so points exactly on the boundary have a finite image).
BOX_EPS = 1e-6

#: Positive outputs of the MADEs (the MAF scale, the spline's knot slopes):
#: softplus(a + _SCALE_SHIFT) + _MIN_SCALE, which is 1 at a = 0.
_MIN_SCALE = 1e-3
_SCALE_SHIFT = float(np.log(np.expm1(1.0 - _MIN_SCALE)))

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu", "softplus", "sigmoid")
_FORMAT = "provabgs_sbi.ConditionalFlow/1"
_CHECKPOINT_FORMAT = "provabgs_sbi.ConditionalFlow.checkpoint/1"
_CHECKPOINT_NAME = "checkpoint.npz"
#: Maps from the unit box to the unbounded space the flow models (module docstring).
BOX_TRANSFORMS = ("logit", "probit", "plateau")
#: Elementwise maps of the autoregressive blocks (``FlowConfig.transform``).
BLOCK_TRANSFORMS = ("affine", "spline")
#: Smallest spline bin width/height, as a fraction of the interval per bin.
_SPLINE_MIN_BIN = 1e-3
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
#: Half-width, in y, of the linear centre of the "plateau" map (its shoulders have unit
#: Gaussian width): the centre covers 1 - 2.51 / (2 c + 2.51) of the box, 76% for c = 4.
PLATEAU_HALF_WIDTH = 4.0
_SQRT_2PI = math.sqrt(2 * math.pi)
#: The plateau density is 1 / _PLATEAU_NORM on the centre; both shoulders together hold
#: _PLATEAU_SHOULDERS of the box.
_PLATEAU_NORM = 2 * PLATEAU_HALF_WIDTH + _SQRT_2PI
_PLATEAU_SHOULDERS = _SQRT_2PI / _PLATEAU_NORM
#: Config fields that may change between an interrupted run and its resumption.
_RESUMABLE_FIELDS = ("max_epochs", "checkpoint_every", "lr_patience", "lr_factor",
                     "min_learning_rate")
#: Fields added after checkpoints were first written, with the value that reproduces the
#: older training: a config holding that value keeps the resume key it had before the field.
_LEGACY_DEFAULTS = {"box_transform": "logit", "weight_decay": 0.0}
#: Fields that fix the network's shape and meaning: a warm start must keep them.
_ARCHITECTURE_FIELDS = ("n_transforms", "hidden_units", "activation", "box_transform",
                        "transform", "spline_bins", "spline_bound")
#: Smallest padded chunk for the compiled sample/log_prob functions.
_MIN_BUCKET = 256


class ChecksumError(ValueError):
    """A saved flow's files do not match the SHA-256 in its manifest."""


class TrainingInterrupted(RuntimeError):
    """Raise from a ``fit`` callback to stop training (the last checkpoint is kept)."""


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class FlowConfig:
    """Architecture and training settings of a :class:`ConditionalFlow` (validated).

    Attributes
    ----------
    n_transforms : int
        Number of MAF blocks (MADE + affine autoregressive transform).
    hidden_units : tuple of int
        Hidden layer widths of each MADE, e.g. ``(128, 128)``.
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
        The map from the unit box to the flow's unbounded space (module docstring).
        Default "logit" (flows saved before the option existed used it).
    transform : {"affine", "spline"}
        The elementwise map of each autoregressive block: shift and scale (MAF), or a
        monotonic rational-quadratic spline (Durkan et al. 2019, as sbi's "nsf") on
        ``[-spline_bound, spline_bound]``, identity outside, whose ``3 spline_bins - 1``
        parameters per dimension the MADE outputs. Splines can bend one block's marginal
        into several modes (sbibm's two_moons); on nearly Gaussian posteriors they
        overfit more than affine blocks at the same number of simulations.
    spline_bins : int
        Number of spline segments.
    spline_bound : float
        Half-width, in standardised flow coordinates, of the interval the spline acts on.
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
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
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

    PRESETS = ("default", "sedflow-paper", "sbibm-npe", "sbibm-nsf", "tiny")

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
            ``"sbibm-npe"``
                sbi's MAF as the sbibm benchmark (Lueckmann et al. 2021) sizes it: 5
                blocks of 2 x 50 tanh units, lr 5e-4, batch 50.
            ``"sbibm-nsf"``
                The density estimator of sbibm's published NPE numbers, sbi's "nsf":
                spline blocks with 10 bins on [-3, 3], ReLU, 5 blocks of 2 x 50 units,
                lr 5e-4, batch 50 (sbi's NSF couples halves of theta through residual
                networks, where these blocks are autoregressive MADEs).
            ``"tiny"``
                2 blocks of 2 x 16 tanh units, lr 1e-2, batch 64, no XLA (for a few
                seconds of training its compilation costs more than it saves): for tests.
        **overrides
            Fields to replace, e.g. ``seed=3``.

        Returns
        -------
        FlowConfig
        """
        presets = {
            "default": dict(n_transforms=6, hidden_units=(128, 128), activation="relu",
                            learning_rate=1e-3, batch_size=256, lr_patience=5),
            "sedflow-paper": dict(n_transforms=15, hidden_units=(500, 500), activation="tanh",
                                  learning_rate=5e-4, batch_size=50),
            "sbibm-npe": dict(n_transforms=5, hidden_units=(50, 50), activation="tanh",
                              learning_rate=5e-4, batch_size=50),
            "sbibm-nsf": dict(n_transforms=5, hidden_units=(50, 50), activation="relu",
                              learning_rate=5e-4, batch_size=50, transform="spline",
                              spline_bins=10, spline_bound=3.0),
            "tiny": dict(n_transforms=2, hidden_units=(16, 16), activation="tanh",
                         learning_rate=1e-2, batch_size=64, max_epochs=200, patience=10,
                         jit_compile=False),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {tuple(presets)}")
        return cls(**{**presets[name], **overrides})

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
        """JSON-ready dict of the fields."""
        out = dataclasses.asdict(self)
        out["hidden_units"] = list(self.hidden_units)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "FlowConfig":
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown FlowConfig fields {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------- helpers
def _unbound(u: np.ndarray, kind: str) -> np.ndarray:
    """Unit box (0, 1) -> real line: logit, probit or plateau (module docstring)."""
    if kind == "logit":
        return logit(u)
    if kind == "probit":
        return ndtri(u)
    c, mass = PLATEAU_HALF_WIDTH, _PLATEAU_SHOULDERS
    u = np.asarray(u, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = ndtri(u / mass) - c
        upper = c - ndtri((1.0 - u) / mass)
    centre = (u - 0.5) * _PLATEAU_NORM
    return np.where(u < 0.5 * mass, lower, np.where(u > 1.0 - 0.5 * mass, upper, centre))


def _bound(y: np.ndarray, kind: str) -> np.ndarray:
    """Inverse of :func:`_unbound`."""
    if kind == "logit":
        return expit(y)
    if kind == "probit":
        return ndtr(y)
    c, mass = PLATEAU_HALF_WIDTH, _PLATEAU_SHOULDERS
    y = np.asarray(y, dtype=np.float64)
    centre = 0.5 + y / _PLATEAU_NORM
    return np.where(y < -c, mass * ndtr(y + c),
                    np.where(y > c, 1.0 - mass * ndtr(c - y), centre))


def _log_dy_du_from_y(y: np.ndarray, kind: str) -> np.ndarray:
    """log |dy/du| of :func:`_unbound`, elementwise, as a function of y itself (exact even
    where u rounds to 0 or 1)."""
    if kind == "logit":
        return -(log_expit(y) + log_expit(-y))
    if kind == "probit":
        return 0.5 * y**2 + _HALF_LOG_2PI
    return 0.5 * np.maximum(np.abs(y) - PLATEAU_HALF_WIDTH, 0.0) ** 2 + math.log(_PLATEAU_NORM)


def _positive(raw):
    """softplus(raw + _SCALE_SHIFT) + _MIN_SCALE, in TF: > 0, and 1 where raw = 0."""
    tf, _ = _tf()
    return tf.nn.softplus(raw + _SCALE_SHIFT) + _MIN_SCALE


def _tf():
    """Import TensorFlow and TFP lazily (importing them takes seconds)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    return tf, tfp


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _hash_arrays(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, dtype=np.float64)
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _as_2d(a, name: str, width: int | None = None) -> np.ndarray:
    """Float64 2-d copy of ``a``, rejecting NaN/inf and wrong widths."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :] if width is not None and arr.shape[0] == width else arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-d or 2-d, got shape {np.shape(a)}")
    if width is not None and arr.shape[1] != width:
        raise ValueError(f"{name} must have {width} columns, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"{name} has a non-finite value ({arr[i, j]}) at row {i}, column {j}")
    return arr


def _bucket(rows: int, minimum: int = _MIN_BUCKET) -> int:
    """Smallest padded size >= rows: 256 x 2^(k/4) rounded up to a multiple of 64.

    Quarter-octave steps waste at most ~19% of the work on padding while an
    XLA-compiled function sees only a few distinct shapes (each costs a compilation).
    Fewer than ``minimum`` rows are padded to ``minimum`` (smaller for the MCMC's
    repeated calls of a few rows each, see :meth:`ConditionalFlow.push_forward`).
    """
    if rows <= minimum:
        return minimum
    if rows <= _MIN_BUCKET:
        return _MIN_BUCKET
    k = math.ceil(4 * math.log2(rows / _MIN_BUCKET))
    while True:
        size = 64 * math.ceil(_MIN_BUCKET * 2.0 ** (k / 4) / 64)
        if size >= rows:
            return size
        k += 1


def _pieces(n: int, chunk: int, pad: bool,
            min_bucket: int = _MIN_BUCKET) -> list[tuple[int, int, int]]:
    """Split ``n`` rows into (start, stop, size) pieces of at most ``chunk`` rows.

    With ``pad`` the last, partial piece is padded to :func:`_bucket` of its length (full
    pieces keep size ``chunk``); without, size is the piece's length.
    """
    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        size = stop - start
        if pad and size < chunk:
            size = _bucket(size, min_bucket)
        out.append((start, stop, size))
    return out


# --------------------------------------------------------------------------- the flow
class ConditionalFlow:
    """Masked autoregressive flow q(theta | x) with support on a box.

    Build one with :meth:`fit` (training) or :meth:`load`; see the module docstring for
    the parametrisation. The constructor makes an untrained flow (seeded weights), e.g.
    for timing.

    Parameters
    ----------
    config : FlowConfig
    low, high : array_like of shape (d_theta,)
        The support box.
    y_mean, y_std : array_like of shape (d_theta,)
        Mean and standard deviation of the unbounded coordinate y of (theta - low) /
        (high - low) (``config.box_transform``).
    x_mean, x_std : array_like of shape (d_x,)
        Mean and standard deviation of the conditioning data.
    permutations : list of int arrays, optional
        The n_transforms - 1 permutations between blocks (default: seeded by config.seed).
    weights : list of ndarray, optional
        Trainable weights as from :meth:`get_weights` (default: seeded initialisation).

    Attributes
    ----------
    config : FlowConfig
    d_theta, d_x : int
        Dimensions of the parameters and of the conditioning data.
    low, high : ndarray of shape (d_theta,)
        The support box, in the units of theta.
    history : list of dict
        One entry per trained epoch: ``epoch``, ``train_loss``, ``val_loss`` (mean
        negative log density of theta given x, nats, in theta space) and ``seconds``.
    best_epoch : int or None
        Epoch whose weights were kept (lowest validation loss).
    best_val_loss : float or None
        Its validation loss (nats per simulation).
    """

    def __init__(self, config: FlowConfig, low, high, y_mean, y_std, x_mean, x_std,
                 permutations: list[np.ndarray] | None = None,
                 weights: list[np.ndarray] | None = None):
        if not isinstance(config, FlowConfig):
            raise TypeError(f"config must be a FlowConfig, got {type(config).__name__}")
        self.config = config
        low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.low, self.high = self._check_box(low, high, low.size)
        self.d_theta = self.low.size
        self._y_mean = np.asarray(y_mean, dtype=np.float64).reshape(self.d_theta)
        self._y_std = np.asarray(y_std, dtype=np.float64).reshape(self.d_theta)
        self._x_mean = np.asarray(x_mean, dtype=np.float64).reshape(-1)
        self._x_std = np.asarray(x_std, dtype=np.float64).reshape(-1)
        self.d_x = self._x_mean.size
        if permutations is None:
            permutations = self._make_permutations(self.d_theta, config)
        self._permutations = [np.asarray(p, dtype=np.int32) for p in permutations]
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_val_loss: float | None = None
        self.data_hash: str | None = None
        #: SHA-256 of the weights a warm-started fit began from (None: random start).
        self.init_weights_sha256: str | None = None
        self._compiled: dict = {}
        self._build()
        if weights is None:
            self._init_weights(np.random.default_rng([config.seed, 1]))
        else:
            self.set_weights(weights)

    # ----------------------------------------------------------------- network
    @staticmethod
    def _make_permutations(d: int, config: FlowConfig) -> list[np.ndarray]:
        """Seeded permutations between blocks (never the identity when d > 1)."""
        rng = np.random.default_rng([config.seed, 2])
        perms = []
        for _ in range(config.n_transforms - 1):
            p = rng.permutation(d)
            if d > 1 and np.array_equal(p, np.arange(d)):
                p = p[::-1].copy()
            perms.append(p)
        return perms

    def _build(self) -> None:
        tf, tfp = _tf()
        tfb = tfp.bijectors
        cfg = self.config
        self._mades = []
        self._bijectors = []  # applied in order to base noise: maf_1, perm_1, ..., maf_K
        spline = cfg.transform == "spline"
        n_params = 3 * cfg.spline_bins - 1 if spline else 2
        for k in range(cfg.n_transforms):
            made = tfb.AutoregressiveNetwork(
                params=n_params, event_shape=[self.d_theta], conditional=True,
                conditional_event_shape=[self.d_x], hidden_units=list(cfg.hidden_units),
                activation=cfg.activation, name=f"made_{k}")
            made(tf.zeros([1, self.d_theta]), conditional_input=tf.zeros([1, self.d_x]))
            self._mades.append(made)
            self._bijectors.append(tfb.MaskedAutoregressiveFlow(
                bijector_fn=(self._spline_fn(made, cfg.spline_bins, cfg.spline_bound) if spline
                             else self._affine_fn(made)), name=f"maf_{k}"))
            if k < cfg.n_transforms - 1:
                self._bijectors.append(tfb.Permute(self._permutations[k], name=f"permute_{k}"))
        self._variables = [v for made in self._mades for v in made.trainable_variables]
        # The MADE masks live in the kernels' constraints, which only a Keras optimizer
        # applies. Keep them as arrays: training masks the gradients (so masked weights
        # stay exactly zero under Adam) and set_weights masks what it is given.
        self._masks = []
        for v in self._variables:
            constraint = getattr(v, "constraint", None)
            self._masks.append(None if constraint is None
                               else constraint(tf.ones_like(v)).numpy().astype(np.float32))

    @staticmethod
    def _affine_fn(made) -> Callable:
        """MAF bijector_fn: the MADE's outputs as shift and softplus scale."""
        tf, tfp = _tf()
        tfb = tfp.bijectors

        def bijector_fn(y, conditional_input=None):
            params = made(y, conditional_input=conditional_input)
            shift, raw = tf.unstack(params, num=2, axis=-1)
            scale = _positive(raw)
            return tfb.Chain([tfb.Shift(shift), tfb.Scale(scale)])

        return bijector_fn

    @staticmethod
    def _spline_fn(made, n_bins: int, bound: float) -> Callable:
        """MAF bijector_fn: the MADE's outputs as a rational-quadratic spline per dimension.

        Bin widths and heights are softmaxes (each at least ``_SPLINE_MIN_BIN`` of the
        interval), knot slopes positive as the affine scale (:func:`_positive`): all-zero
        outputs give the identity map.
        """
        tf, tfp = _tf()
        tfb = tfp.bijectors
        span = 2.0 * bound

        def bins(raw):
            return (tf.nn.softmax(raw, axis=-1) * (1.0 - n_bins * _SPLINE_MIN_BIN)
                    + _SPLINE_MIN_BIN) * span

        def bijector_fn(y, conditional_input=None):
            params = made(y, conditional_input=conditional_input)
            widths = bins(params[..., :n_bins])
            heights = bins(params[..., n_bins:2 * n_bins])
            slopes = _positive(params[..., 2 * n_bins:])
            return tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-bound)

        return bijector_fn

    def _init_weights(self, rng: np.random.Generator) -> None:
        """Seeded Glorot-uniform kernels (masked) and zero biases.

        The output layer of each MADE (its last three variables: masked kernel, bias,
        conditional kernel) starts 100x smaller, so the untrained flow is close to the
        identity map.
        """
        values = []
        for made in self._mades:
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

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the trainable weights, float32 arrays, in a fixed order."""
        return [v.numpy().copy() for v in self._variables]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set the trainable weights (same order and shapes as :meth:`get_weights`)."""
        if len(weights) != len(self._variables):
            raise ValueError(f"expected {len(self._variables)} weight arrays, got {len(weights)}")
        for v, w, m in zip(self._variables, weights, self._masks):
            w = np.asarray(w, dtype=np.float32)
            if w.shape != tuple(v.shape):
                raise ValueError(f"weight {v.name}: shape {w.shape}, expected {tuple(v.shape)}")
            v.assign(w if m is None else w * m)

    # ----------------------------------------------------------- flow math (TF)
    def _flow_inverse(self, z, c):
        """z (flow space) -> base noise and log|det d noise / dz|, in TF."""
        tf, _ = _tf()
        ildj = tf.zeros(tf.shape(z)[:-1], dtype=z.dtype)
        for b in reversed(self._bijectors):
            kwargs = {"conditional_input": c} if b.name.startswith("maf") else {}
            ildj += b.inverse_log_det_jacobian(z, event_ndims=1, **kwargs)
            z = b.inverse(z, **kwargs)
        return z, ildj

    def _flow_log_prob(self, z, c):
        """log q(z | c) in flow space (standard-normal base), in TF."""
        tf, _ = _tf()
        eps, ildj = self._flow_inverse(z, c)
        d = tf.cast(tf.shape(z)[-1], z.dtype)
        return -0.5 * tf.reduce_sum(eps ** 2, axis=-1) - 0.5 * d * math.log(2 * math.pi) + ildj

    def _flow_forward(self, eps, c):
        """Base noise -> z (flow space), in TF."""
        z = eps
        for b in self._bijectors:
            kwargs = {"conditional_input": c} if b.name.startswith("maf") else {}
            z = b.forward(z, **kwargs)
        return z

    def _flow_forward_log_det(self, eps, c):
        """Base noise -> [z, log|det dz/d eps|] (N, d + 1), in TF.

        The log-determinant is minus that of the inverse map evaluated at z: the MAF's
        inverse is one parallel pass per layer, where its forward pass is d sequential ones.
        """
        tf, _ = _tf()
        z = self._flow_forward(eps, c)
        _, ildj = self._flow_inverse(z, c)
        return tf.concat([z, -ildj[:, None]], axis=-1)

    def _compiled_fn(self, name: str):
        """The tf.function for "log_prob", "forward" or "forward_log_det": XLA-compiled per
        padded shape, or (``jit_compile=False``) traced once for any number of rows."""
        if name not in self._compiled:
            tf, _ = _tf()
            fn = {"log_prob": self._flow_log_prob, "forward": self._flow_forward,
                  "forward_log_det": self._flow_forward_log_det}[name]
            if self.config.jit_compile:
                self._compiled[name] = tf.function(fn, jit_compile=True, autograph=False)
            else:
                spec = [tf.TensorSpec([None, self.d_theta], tf.float32),
                        tf.TensorSpec([None, self.d_x], tf.float32)]
                self._compiled[name] = tf.function(fn, input_signature=spec, autograph=False)
        return self._compiled[name]

    def _run_chunked(self, name: str, a: np.ndarray, c: np.ndarray, chunk: int,
                     min_bucket: int = _MIN_BUCKET) -> np.ndarray:
        """Apply a compiled function to float32 rows, chunk by chunk (padded under XLA)."""
        tf, _ = _tf()
        if int(chunk) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk}")
        fn = self._compiled_fn(name)
        n = a.shape[0]
        out = None
        for start, stop, size in _pieces(n, int(chunk), pad=self.config.jit_compile,
                                         min_bucket=min_bucket):
            a_pad = np.zeros((size, a.shape[1]), np.float32)
            c_pad = np.zeros((size, c.shape[1]), np.float32)
            a_pad[: stop - start] = a[start:stop]
            c_pad[: stop - start] = c[start:stop]
            res = fn(tf.constant(a_pad), tf.constant(c_pad)).numpy()[: stop - start]
            if out is None:
                out = np.empty((n,) + res.shape[1:], dtype=res.dtype)
            out[start:stop] = res
        if out is None:  # no rows
            width = {"forward": a.shape[1], "forward_log_det": a.shape[1] + 1}.get(name)
            return np.empty((0,) if width is None else (0, width), np.float32)
        return out

    # ------------------------------------------------------- theta <-> flow space
    def _log_dz_dtheta(self, y: np.ndarray) -> np.ndarray:
        """log |det dz / dtheta| (N,) of the box map, from the unbounded y = z y_std + y_mean
        (exact even where theta rounds onto a face of the box)."""
        return np.sum(_log_dy_du_from_y(y, self.config.box_transform)
                      - np.log(self.high - self.low) - np.log(self._y_std), axis=1)

    def _theta_to_z(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta (N, d) -> flow-space z (N, d) and log|dz/dtheta| (N,), float64."""
        u = np.clip((theta - self.low) / (self.high - self.low), BOX_EPS, 1.0 - BOX_EPS)
        y = _unbound(u, self.config.box_transform)
        return (y - self._y_mean) / self._y_std, self._log_dz_dtheta(y)

    def _z_to_theta(self, z: np.ndarray) -> np.ndarray:
        u = _bound(z * self._y_std + self._y_mean, self.config.box_transform)
        return np.clip(self.low + u * (self.high - self.low), self.low, self.high)

    def _rows_with_x(self, a, name: str, x) -> tuple[np.ndarray, np.ndarray]:
        """``a`` as (N, d_theta) and ``x`` as (N, d_x), a single x row broadcast to all N."""
        a = _as_2d(a, name, self.d_theta)
        x = _as_2d(x, "x", self.d_x)
        if x.shape[0] == 1 and a.shape[0] != 1:
            x = np.broadcast_to(x, (a.shape[0], self.d_x))
        if x.shape[0] != a.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows but x has {x.shape[0]}")
        return a, x

    def _standardise_x(self, x: np.ndarray) -> np.ndarray:
        return (x - self._x_mean) / self._x_std

    # ------------------------------------------------------------------ public
    def in_box(self, theta) -> np.ndarray:
        """Boolean (N,): rows of ``theta`` inside the closed box ``[low, high]``."""
        theta = _as_2d(theta, "theta", self.d_theta)
        return np.all((theta >= self.low) & (theta <= self.high), axis=1)

    def log_prob(self, theta, x, chunk_size: int = 16384) -> np.ndarray:
        """Log density of theta given x, in theta space.

        Parameters
        ----------
        theta : array_like of shape (N, d_theta) or (d_theta,)
            Parameters, in the units of ``low``/``high``.
        x : array_like of shape (N, d_x) or (d_x,)
            Conditioning data; a single row is broadcast to all N thetas.
        chunk_size : int
            Rows evaluated at once (bounds memory).

        Returns
        -------
        ndarray of shape (N,)
            log q(theta | x) in nats, with the Jacobians of the box reparametrisation
            included; ``-inf`` where theta is outside the box.
        """
        theta, x = self._rows_with_x(theta, "theta", x)
        inside = np.all((theta >= self.low) & (theta <= self.high), axis=1)
        z, logdet = self._theta_to_z(theta)
        c = self._standardise_x(x)
        lp = self._run_chunked("log_prob", z.astype(np.float32), c.astype(np.float32),
                               int(chunk_size)).astype(np.float64)
        return np.where(inside, lp + logdet, -np.inf)

    def _draw_flow_space(self, x_obs, n, seed, chunk_size):
        """Base noise pushed through the flow: flow-space z (n_obs * n, d) float32, the
        standardised x of each row, the rows that overflowed, n_obs and n."""
        x_obs = _as_2d(x_obs, "x_obs", self.d_x)
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        n = int(n)
        n_obs = x_obs.shape[0]
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n_obs * n, self.d_theta), dtype=np.float32)
        c = np.repeat(self._standardise_x(x_obs).astype(np.float32), n, axis=0)
        z = self._run_chunked("forward", eps, c, int(chunk_size))
        return z, c, ~np.all(np.isfinite(z), axis=1), n_obs, n

    def sample_and_log_prob(self, x_obs, n: int, seed=None, chunk_size: int = 16384):
        """Draw samples and the flow's log density at each, for importance sampling.

        :meth:`log_prob` of a sample maps it back from theta, where a draw within
        ``BOX_EPS`` of a face (or that rounds onto it) is moved inside first; its density is
        then that of a different point, too low by up to the box Jacobian's ratio, and the
        draw's importance weight too high. Here the density is evaluated at the flow-space
        point actually drawn, with the squashing map's Jacobian computed from it.

        Parameters
        ----------
        x_obs : array_like of shape (n_obs, d_x) or (d_x,)
        n : int
            Samples per observation.
        seed : int, numpy Generator or None
        chunk_size : int

        Returns
        -------
        theta : ndarray of shape (n_obs, n, d_theta)
            As :meth:`sample` (NaN rows where the flow overflowed).
        log_q : ndarray of shape (n_obs, n)
            log q(theta | x) in theta space (NaN where theta is).
        """
        z, c, bad, n_obs, n = self._draw_flow_space(x_obs, n, seed, chunk_size)
        z = np.where(bad[:, None], 0.0, z).astype(np.float32)
        lp_z = self._run_chunked("log_prob", z, c, int(chunk_size)).astype(np.float64)
        z64 = z.astype(np.float64)
        log_q = lp_z + self._log_dz_dtheta(z64 * self._y_std + self._y_mean)
        theta = self._z_to_theta(z64)
        theta[bad] = np.nan
        log_q[bad | ~np.isfinite(log_q)] = np.nan
        return theta.reshape(n_obs, n, self.d_theta), log_q.reshape(n_obs, n)

    def push_forward(self, eps, x, chunk_size: int = 16384):
        """Map base noise to theta, with the log-Jacobian of the map (for NeuTra MCMC).

        theta(eps) is the map :meth:`sample` applies to standard-normal noise, so a density
        p(theta) becomes p(theta(eps)) |det d theta / d eps| over eps, which is nearly a
        standard normal where q(theta | x) is close to p (Hoffman et al. 2019).

        Parameters
        ----------
        eps : array_like of shape (N, d_theta) or (d_theta,)
            Base-noise coordinates.
        x : array_like of shape (N, d_x) or (d_x,)
            Conditioning data; a single row is broadcast to all N.
        chunk_size : int
            Rows evaluated at once.

        Returns
        -------
        theta : ndarray of shape (N, d_theta)
            In the closed box ``[low, high]`` (float64); NaN rows where the flow overflowed.
        log_det : ndarray of shape (N,)
            log |det d theta / d eps| in nats (float64), computed from the flow-space point
            (finite even where theta rounds onto a face of the box); -inf where theta is NaN.

        Notes
        -----
        The flow itself runs in float32, so log_det carries ~1e-5 nats of rounding. Fewer
        than 16 rows are padded to 16 rather than 256 under XLA: an ensemble MCMC calls
        this with a few rows thousands of times.
        """
        eps, x = self._rows_with_x(eps, "eps", x)
        c = self._standardise_x(x).astype(np.float32)
        out = self._run_chunked("forward_log_det", eps.astype(np.float32), c, int(chunk_size),
                                min_bucket=16).astype(np.float64)
        return self._theta_from_pushed(out[:, :-1], out[:, -1])

    def _theta_from_pushed(self, z: np.ndarray, log_det_z: np.ndarray):
        """Flow-space z (N, d) and log |det dz/d eps| (N,) -> theta (N, d) and
        log |det dtheta/d eps| (N,): NaN and -inf where either input is not finite."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bad = ~(np.all(np.isfinite(z), axis=1) & np.isfinite(log_det_z))
            z = np.where(bad[:, None], 0.0, z)
            log_det = log_det_z - self._log_dz_dtheta(z * self._y_std + self._y_mean)
        theta = self._z_to_theta(z)
        theta[bad] = np.nan
        return theta, np.where(bad | ~np.isfinite(log_det), -np.inf, log_det)

    def sample(self, x_obs, n: int, seed=None, chunk_size: int = 16384,
               nan_policy: str = "raise") -> np.ndarray:
        """Draw posterior samples for each observation.

        Parameters
        ----------
        x_obs : array_like of shape (n_obs, d_x) or (d_x,)
            Observations to condition on.
        n : int
            Samples per observation.
        seed : int, numpy Generator or None
            Seeds the base noise (drawn with numpy): the same seed gives the same samples.
        chunk_size : int
            Rows (observation x sample pairs) pushed through the flow at once.
        nan_policy : {"raise", "nan"}
            What to do when the flow overflows (x far outside the training data): raise
            RuntimeError, or return those samples as NaN.

        Returns
        -------
        ndarray of shape (n_obs, n, d_theta)
            Samples, always inside the closed box ``[low, high]`` (or NaN, see above).
        """
        z, _, bad, n_obs, n = self._draw_flow_space(x_obs, n, seed, chunk_size)
        z = z.astype(np.float64)
        if bad.any() and nan_policy == "raise":
            raise RuntimeError("the flow produced NaN samples (diverged weights or extreme x); "
                               "pass nan_policy='nan' to get NaN rows instead")
        theta = self._z_to_theta(np.where(bad[:, None], 0.0, z).reshape(n_obs * n, self.d_theta))
        theta[bad] = np.nan
        return theta.reshape(n_obs, n, self.d_theta)

    # ---------------------------------------------------------------- training
    @classmethod
    def fit(cls, theta, x, low, high, config: FlowConfig | None = None,
            checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
            callback: Callable[[int, dict], None] | None = None,
            init: "ConditionalFlow | None" = None) -> "ConditionalFlow":
        """Train a flow by maximum likelihood on simulated pairs.

        Parameters
        ----------
        theta : array_like of shape (N, d_theta)
            Parameters drawn from the prior; all inside ``[low, high]``.
        x : array_like of shape (N, d_x)
            Simulated data for each theta.
        low, high : float or array_like of shape (d_theta,)
            The support box (the prior's), ``low < high``.
        config : FlowConfig, optional
            Defaults to ``FlowConfig.preset("default")``.
        checkpoint_dir : path, optional
            Write checkpoints here every ``config.checkpoint_every`` epochs (and at the
            end). If it already holds a checkpoint of the same data and config, training
            resumes from it; a checkpoint of other data or settings is an error
            (``max_epochs`` and ``checkpoint_every`` may differ).
        progress : bool
            Show a tqdm bar over epochs.
        callback : callable, optional
            ``callback(epoch, history_entry)`` after each epoch (after checkpointing);
            raising from it (e.g. :class:`TrainingInterrupted`) stops training.
        init : ConditionalFlow, optional
            Start from this trained flow's weights rather than random ones: fine-tuning on
            more simulations. Its standardisation, permutations and box are kept, so
            ``config`` must agree with it on the architecture fields (``n_transforms``,
            ``hidden_units``, ``activation``, ``box_transform``, ``transform``, spline
            settings) and ``low``/``high`` must equal its box. Epochs, the step-size schedule
            and early stopping start afresh from ``config``. A checkpoint resumes only with
            the same ``init``.

        Returns
        -------
        ConditionalFlow
            With the weights of the epoch of lowest validation loss, and ``history``.

        Raises
        ------
        ValueError
            Non-finite or mis-shaped inputs, ``low >= high``, theta outside the box, too
            few simulations, or a checkpoint that does not match.
        """
        config = FlowConfig.preset("default") if config is None else config
        if not isinstance(config, FlowConfig):
            raise TypeError(f"config must be a FlowConfig, got {type(config).__name__}")
        theta = _as_2d(theta, "theta")
        x = _as_2d(x, "x")
        if theta.shape[0] != x.shape[0]:
            raise ValueError(f"theta has {theta.shape[0]} rows but x has {x.shape[0]}")
        d = theta.shape[1]
        low, high = cls._check_box(low, high, d)
        outside = ~np.all((theta >= low) & (theta <= high), axis=1)
        if outside.any():
            i = int(np.nonzero(outside)[0][0])
            raise ValueError(f"{int(outside.sum())} training thetas lie outside the box "
                             f"[low, high], e.g. row {i}: {theta[i]}")
        n = theta.shape[0]
        n_val = int(round(config.validation_fraction * n))
        if n_val < 1 or n - n_val < 2:
            raise ValueError(f"need more simulations: {n} with validation_fraction "
                             f"{config.validation_fraction} leaves {n_val} for validation")

        if init is not None:
            flow = cls._warm_start(init, config, low, high, x.shape[1])
        else:
            # Normalisation from the training data (all of it, as sbi does).
            width = high - low
            u = np.clip((theta - low) / width, BOX_EPS, 1.0 - BOX_EPS)
            y = _unbound(u, config.box_transform)
            y_mean, y_std = y.mean(axis=0), y.std(axis=0)
            y_std = np.where(y_std > 1e-12, y_std, 1.0)
            x_mean, x_std = x.mean(axis=0), x.std(axis=0)
            x_std = np.where(x_std > 1e-12 * np.maximum(1.0, np.abs(x_mean)), x_std, 1.0)
            flow = cls(config, low, high, y_mean, y_std, x_mean, x_std)
        flow.data_hash = _hash_arrays(theta, x, low, high)
        flow._train(theta, x, checkpoint_dir, progress, callback)
        return flow

    @classmethod
    def _warm_start(cls, init: "ConditionalFlow", config: FlowConfig, low: np.ndarray,
                    high: np.ndarray, d_x: int) -> "ConditionalFlow":
        """A new flow with ``config`` holding ``init``'s weights, standardisation and box."""
        if not isinstance(init, ConditionalFlow):
            raise TypeError("init must be a single ConditionalFlow (for a mixture, pass one "
                            f"of its members), got {type(init).__name__}")
        if init.d_theta != low.size or init.d_x != d_x:
            raise ValueError(f"init has d_theta={init.d_theta}, d_x={init.d_x}; the data "
                             f"have {low.size} and {d_x}")
        if not (np.array_equal(init.low, low) and np.array_equal(init.high, high)):
            raise ValueError(f"init was trained on the box low={init.low}, high={init.high}, "
                             f"not low={low}, high={high}")
        old, new = init.config.to_dict(), config.to_dict()
        differ = [k for k in _ARCHITECTURE_FIELDS if old.get(k) != new.get(k)]
        if differ:
            raise ValueError("config must keep init's architecture; it differs in "
                             + ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})"
                                         for k in differ))
        weights = init.get_weights()
        flow = cls(config, init.low, init.high, init._y_mean, init._y_std, init._x_mean,
                   init._x_std, permutations=init._permutations, weights=weights)
        flow.init_weights_sha256 = _hash_arrays(*weights)
        return flow

    @staticmethod
    def _check_box(low, high, d: int) -> tuple[np.ndarray, np.ndarray]:
        low = np.broadcast_to(np.asarray(low, dtype=np.float64), (d,)).copy()
        high = np.broadcast_to(np.asarray(high, dtype=np.float64), (d,)).copy()
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("low and high must be finite")
        if np.any(low >= high):
            raise ValueError(f"need low < high in every dimension, got low={low}, high={high}")
        return low, high

    def _resume_key(self) -> str:
        cfg = {k: v for k, v in self.config.to_dict().items() if k not in _RESUMABLE_FIELDS
               and not (k in _LEGACY_DEFAULTS and v == _LEGACY_DEFAULTS[k])}
        if self.init_weights_sha256 is not None:
            cfg["init_weights_sha256"] = self.init_weights_sha256
        return _sha256_bytes(json.dumps(cfg, sort_keys=True).encode())

    def _train(self, theta, x, checkpoint_dir, progress, callback) -> None:
        tf, _ = _tf()
        from tqdm.auto import tqdm

        cfg = self.config
        n = theta.shape[0]
        split = np.random.default_rng([cfg.seed, 0]).permutation(n)
        n_val = int(round(cfg.validation_fraction * n))
        val_idx, tr_idx = np.sort(split[:n_val]), np.sort(split[n_val:])

        z_all, logdet_all = self._theta_to_z(theta)
        c_all = self._standardise_x(x)
        z_tr = tf.constant(z_all[tr_idx].astype(np.float32))
        c_tr = tf.constant(c_all[tr_idx].astype(np.float32))
        z_val, c_val = z_all[val_idx].astype(np.float32), c_all[val_idx].astype(np.float32)
        # Losses are reported in theta space: flow-space NLL minus the mean log-Jacobian.
        jac_tr, jac_val = float(logdet_all[tr_idx].mean()), float(logdet_all[val_idx].mean())

        n_tr = len(tr_idx)
        bs = min(cfg.batch_size, n_tr)
        n_batches = -(-n_tr // bs)
        step_fn, adam_state = self._make_train_step(bs)

        # ---- state, possibly from a checkpoint
        state = dict(epoch=0, best_val=math.inf, best_epoch=None, bad_epochs=0, history=[],
                     finished=False, learning_rate=cfg.learning_rate, lr_bad_epochs=0)
        best_weights = self.get_weights()
        ckpt_path = None
        if checkpoint_dir is not None:
            ckpt_dir = Path(checkpoint_dir)
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            ckpt_path = ckpt_dir / _CHECKPOINT_NAME
            if ckpt_path.exists():
                best_weights = self._restore_checkpoint(ckpt_path, state, adam_state)

        def write_checkpoint():
            if ckpt_path is None:
                return
            meta = dict(format=_CHECKPOINT_FORMAT, data_hash=self.data_hash,
                        resume_key=self._resume_key(), config=cfg.to_dict(), **state)
            arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
            for i, w in enumerate(self.get_weights()):
                arrays[f"w{i}"] = w
            for i, w in enumerate(best_weights):
                arrays[f"best{i}"] = w
            for i, (m, v) in enumerate(zip(adam_state["m"], adam_state["v"])):
                arrays[f"m{i}"], arrays[f"v{i}"] = m.numpy(), v.numpy()
            arrays["adam_step"] = np.array(adam_state["step"].numpy())
            _atomic_write_bytes(ckpt_path, _npz_bytes(arrays))

        bar = tqdm(total=cfg.max_epochs, initial=state["epoch"], disable=not progress,
                   desc="flow", unit="epoch", leave=False)
        try:
            while not state["finished"] and state["epoch"] < cfg.max_epochs:
                epoch = state["epoch"] + 1
                t0 = time.perf_counter()
                order = np.random.default_rng([cfg.seed, 3, epoch]).permutation(n_tr)
                pad = n_batches * bs - n_tr
                idx = np.concatenate([order, np.zeros(pad, np.int64)]).reshape(n_batches, bs)
                wts = np.concatenate([np.ones(n_tr), np.zeros(pad)]).reshape(n_batches, bs)
                total = float(step_fn(z_tr, c_tr, tf.constant(idx.astype(np.int32)),
                                      tf.constant(wts.astype(np.float32))))
                train_loss = total / n_tr - jac_tr
                val_lp = self._run_chunked("log_prob", z_val, c_val, 16384)
                val_loss = -float(np.mean(val_lp)) - jac_val
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    raise RuntimeError(
                        f"training diverged at epoch {epoch} (train loss {train_loss}, "
                        f"val loss {val_loss}); try a smaller learning_rate")
                entry = dict(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                             seconds=time.perf_counter() - t0,
                             learning_rate=state["learning_rate"])
                state["history"].append(entry)
                state["epoch"] = epoch
                if val_loss < state["best_val"]:
                    state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0,
                                 lr_bad_epochs=0)
                    best_weights = self.get_weights()
                else:
                    state["bad_epochs"] += 1
                    state["lr_bad_epochs"] += 1
                    if (cfg.lr_patience and state["lr_bad_epochs"] >= cfg.lr_patience
                            and state["learning_rate"] > cfg.min_learning_rate):
                        state["learning_rate"] = max(state["learning_rate"] * cfg.lr_factor,
                                                     cfg.min_learning_rate)
                        state["lr_bad_epochs"] = 0
                        adam_state["lr"].assign(state["learning_rate"])
                if state["bad_epochs"] >= cfg.patience:
                    state["finished"] = True
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}",
                                best=f"{state['best_val']:.3f}")
                if (state["finished"] or epoch % cfg.checkpoint_every == 0
                        or epoch == cfg.max_epochs):
                    write_checkpoint()
                if callback is not None:
                    callback(epoch, entry)
        finally:
            bar.close()

        self.set_weights(best_weights)
        self.history = list(state["history"])
        self.best_epoch = state["best_epoch"]
        self.best_val_loss = state["best_val"] if state["best_epoch"] is not None else None

    def _restore_checkpoint(self, path: Path, state: dict, adam_state: dict) -> list[np.ndarray]:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
        if meta.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a ConditionalFlow checkpoint")
        if meta["data_hash"] != self.data_hash:
            raise ValueError(f"checkpoint {path} was written for other training data; "
                             "refusing to resume (use another checkpoint_dir)")
        if meta["resume_key"] != self._resume_key():
            raise ValueError(f"checkpoint {path} was written with another FlowConfig "
                             f"({meta['config']}); refusing to resume")
        n_var = len(self._variables)
        self.set_weights([arrays[f"w{i}"] for i in range(n_var)])
        for i in range(n_var):
            adam_state["m"][i].assign(arrays[f"m{i}"])
            adam_state["v"][i].assign(arrays[f"v{i}"])
        adam_state["step"].assign(arrays["adam_step"])
        for key in ("epoch", "best_val", "best_epoch", "bad_epochs", "history", "finished"):
            state[key] = meta[key]
        # Checkpoints from before the step-size schedule resume at the configured step.
        state["learning_rate"] = meta.get("learning_rate", self.config.learning_rate)
        state["lr_bad_epochs"] = meta.get("lr_bad_epochs", 0)
        adam_state["lr"].assign(state["learning_rate"])
        return [arrays[f"best{i}"] for i in range(n_var)]

    def _make_train_step(self, batch_size: int):
        """Compiled function running one epoch of Adam steps; returns the summed NLL."""
        tf, _ = _tf()
        cfg = self.config
        variables = self._variables
        masks = [None if m is None else tf.constant(m) for m in self._masks]
        adam = dict(m=[tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
                    v=[tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
                    step=tf.Variable(0, dtype=tf.int64, trainable=False),
                    lr=tf.Variable(cfg.learning_rate, dtype=tf.float32, trainable=False))
        lr, b1, b2, eps = adam["lr"], 0.9, 0.999, 1e-8
        # Decoupled weight decay acts on kernels (rank 2), not on biases.
        decays = [cfg.weight_decay if len(v.shape) > 1 else 0.0 for v in variables]

        def epoch_fn(z, c, idx, wts):
            # An explicit while loop (no AutoGraph, so nothing depends on reading this
            # file's source at run time); the Adam updates run before the next step.
            def body(i, total):
                zb, cb, wb = tf.gather(z, idx[i]), tf.gather(c, idx[i]), wts[i]
                with tf.GradientTape() as tape:
                    nll = -self._flow_log_prob(zb, cb)
                    loss = tf.reduce_sum(wb * nll) / tf.reduce_sum(wb)
                grads = tape.gradient(loss, variables)
                grads, _ = tf.clip_by_global_norm(grads, cfg.clip_norm)
                step = adam["step"].assign_add(1)
                t = tf.cast(step, tf.float32)
                corr = tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
                updates = []
                for var, g, m, v, mask, wd in zip(variables, grads, adam["m"], adam["v"],
                                                  masks, decays):
                    if mask is not None:
                        g = g * mask
                    m_new = m.assign(b1 * m + (1.0 - b1) * g)
                    v_new = v.assign(b2 * v + (1.0 - b2) * tf.square(g))
                    delta = lr * corr * m_new / (tf.sqrt(v_new) + eps)
                    if wd:
                        delta += lr * wd * var
                    updates.append(var.assign_sub(delta))
                with tf.control_dependencies(updates):
                    return i + 1, total + tf.reduce_sum(wb * nll)

            n_steps = tf.shape(idx)[0]
            _, total = tf.while_loop(lambda i, _: i < n_steps, body,
                                     (tf.constant(0), tf.constant(0.0, tf.float32)))
            return total

        return tf.function(epoch_fn, jit_compile=cfg.jit_compile, autograph=False), adam

    # ------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the flow to a folder: ``weights.npz``, ``flow.json``, ``manifest.json``.

        ``flow.json`` holds the config, box, normalisation, permutations, training
        history and library versions; ``manifest.json`` the SHA-256 of the other two,
        checked by :meth:`load`. Files are written atomically.

        Returns
        -------
        pathlib.Path
            The folder.
        """
        tf, tfp = _tf()
        from provabgs_sbi._version import __version__

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = _npz_bytes({f"w{i:03d}": w for i, w in enumerate(self.get_weights())})
        meta = dict(
            format=_FORMAT, config=self.config.to_dict(), d_theta=self.d_theta, d_x=self.d_x,
            low=self.low.tolist(), high=self.high.tolist(),
            y_mean=self._y_mean.tolist(), y_std=self._y_std.tolist(),
            x_mean=self._x_mean.tolist(), x_std=self._x_std.tolist(),
            permutations=[p.tolist() for p in self._permutations],
            box_eps=BOX_EPS, min_scale=_MIN_SCALE, history=self.history,
            best_epoch=self.best_epoch, best_val_loss=self.best_val_loss,
            training_data_sha256=self.data_hash,
            init_weights_sha256=self.init_weights_sha256,
            versions={"provabgs_sbi": __version__, "tensorflow": tf.__version__,
                      "tensorflow_probability": tfp.__version__, "numpy": np.__version__},
        )
        meta_bytes = json.dumps(meta, indent=1).encode()
        manifest = dict(format=_FORMAT, files={"weights.npz": _sha256_bytes(weights),
                                               "flow.json": _sha256_bytes(meta_bytes)})
        _atomic_write_bytes(path / "weights.npz", weights)
        _atomic_write_bytes(path / "flow.json", meta_bytes)
        _atomic_write_bytes(path / "manifest.json", json.dumps(manifest, indent=1).encode())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ConditionalFlow":
        """Read a flow written by :meth:`save`, verifying every file's SHA-256.

        Raises
        ------
        FileNotFoundError
            A file is missing.
        ChecksumError
            A file does not match its hash in ``manifest.json``.
        """
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no manifest.json in {path}: not a saved ConditionalFlow")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != _FORMAT:
            raise ValueError(f"{path} holds format {manifest.get('format')!r}, "
                             f"expected {_FORMAT!r}")
        for name in ("weights.npz", "flow.json"):
            expected = manifest["files"].get(name)
            if expected is None:
                raise ChecksumError(f"manifest in {path} lists no hash for {name}")
            got = _sha256_file(path / name)
            if got != expected:
                raise ChecksumError(f"{path / name} has SHA-256 {got}, but the manifest "
                                    f"records {expected}: the file was changed or corrupted")
        meta = json.loads((path / "flow.json").read_text())
        with np.load(path / "weights.npz") as f:
            weights = [f[k] for k in sorted(f.files)]
        flow = cls(FlowConfig.from_dict(meta["config"]), meta["low"], meta["high"],
                   meta["y_mean"], meta["y_std"], meta["x_mean"], meta["x_std"],
                   permutations=meta["permutations"], weights=weights)
        flow.history = meta["history"]
        flow.best_epoch = meta["best_epoch"]
        flow.best_val_loss = meta["best_val_loss"]
        flow.data_hash = meta["training_data_sha256"]
        flow.init_weights_sha256 = meta.get("init_weights_sha256")
        return flow

    def __repr__(self) -> str:
        c = self.config
        return (f"ConditionalFlow(d_theta={self.d_theta}, d_x={self.d_x}, "
                f"n_transforms={c.n_transforms}, hidden_units={c.hidden_units})")

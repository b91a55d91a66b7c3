"""The conditional flow q(theta | x) on a box of parameters: :class:`ConditionalFlow`.

The flow never sees theta itself: it models a standardised unbounded image of the box
coordinate,

    u = (theta - low) / (high - low)            in [0, 1]
    y = box_map.forward(u)                       unbounded (``FlowConfig.box_transform``)
    z = (y - mean_y) / std_y                     ~ zero mean, unit variance

with ``mean_y, std_y`` taken from the training set (the maps:
:mod:`~provabgs_sbi.inference.flows.box_maps`). Samples are mapped back through the map's
inverse and so can never leave the box. :meth:`ConditionalFlow.log_prob` returns the
density in theta space, Jacobians of the box map and of both affine maps included, and
``-inf`` outside the box; points on the boundary are moved ``BOX_EPS * (high - low)``
inside first. The conditioning data x are standardised with the training mean and
standard deviation. The density on z is a masked autoregressive flow
(:mod:`~provabgs_sbi.inference.flows.network`) or, with ``FlowConfig.family="coupling"``,
a coupling flow (:mod:`~provabgs_sbi.inference.flows.coupling`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from provabgs_sbi.inference.flows.arrays import as_2d, check_box
from provabgs_sbi.inference.flows.bucketing import MIN_BUCKET, compile_flow_fn, run_chunked
from provabgs_sbi.inference.flows.box_maps import BOX_EPS, box_map
from provabgs_sbi.inference.flows.config import FlowConfig
from provabgs_sbi.inference.flows.coupling import Coupling, coupling_permutations
from provabgs_sbi.inference.flows.network import MAF, make_permutations
from provabgs_sbi.inference.flows.storage import load_flow_folder, save_flow
from provabgs_sbi.inference.flows.training import fit_flow

__all__ = ["ConditionalFlow"]

#: The network class and the seeded permutations between its blocks, by ``FlowConfig.family``.
_NETWORKS = {"maf": (MAF, make_permutations), "coupling": (Coupling, coupling_permutations)}


class ConditionalFlow:
    """Conditional normalizing flow q(theta | x) with support on a box: a masked
    autoregressive flow or a coupling flow (``config.family``).

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
    x_whiten : array_like of shape (k, k), optional
        With ``config.whiten_columns`` (k of them): the matrix applied to those standardised
        columns (ZCA whitening, from :func:`~provabgs_sbi.inference.flows.training.zca_matrix`);
        default the identity (an untrained flow).
    permutations : list of int arrays, optional
        The n_transforms - 1 permutations between blocks (default: seeded by config.seed,
        random for a MAF, alternating halves for a coupling flow).
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
                 weights: list[np.ndarray] | None = None, x_whiten=None):
        if not isinstance(config, FlowConfig):
            raise TypeError(f"config must be a FlowConfig, got {type(config).__name__}")
        self.config = config
        low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.low, self.high = check_box(low, high, low.size)
        self.d_theta = self.low.size
        self._y_mean = np.asarray(y_mean, dtype=np.float64).reshape(self.d_theta)
        self._y_std = np.asarray(y_std, dtype=np.float64).reshape(self.d_theta)
        self._x_mean = np.asarray(x_mean, dtype=np.float64).reshape(-1)
        self._x_std = np.asarray(x_std, dtype=np.float64).reshape(-1)
        self.d_x = self._x_mean.size
        self._x_whiten = self._check_whiten(config, self.d_x, x_whiten)
        network, default_permutations = _NETWORKS[config.family]
        if permutations is None:
            permutations = default_permutations(self.d_theta, config)
        self._permutations = [np.asarray(p, dtype=np.int32) for p in permutations]
        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_val_loss: float | None = None
        self.data_hash: str | None = None
        #: SHA-256 of the weights a warm-started fit began from (None: random start).
        self.init_weights_sha256: str | None = None
        self._box_map = box_map(config.box_transform)
        self._compiled: dict = {}
        self._net = network(config, self.d_theta, self.d_x, self._permutations)
        if weights is None:
            self._net.init_weights(np.random.default_rng([config.seed, 1]))
        else:
            self.set_weights(weights)


    # ----------------------------------------------------------------- network
    @property
    def _mades(self) -> list:
        """The MADE of each block (tfp ``AutoregressiveNetwork``; MAF only)."""
        return self._net.mades

    @property
    def _bijectors(self) -> list:
        """The blocks and permutations, in the order applied to base noise (MAF only)."""
        return self._net.bijectors

    @property
    def _masks(self) -> list:
        """The MADE mask of each weight (None where unmasked)."""
        return self._net.masks

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the trainable weights, float32 arrays, in a fixed order."""
        return self._net.get_weights()

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set the trainable weights (same order and shapes as :meth:`get_weights`)."""
        self._net.set_weights(weights)

    def _run_compiled(self, name: str, a: np.ndarray, c: np.ndarray, chunk: int,
                      min_bucket: int = MIN_BUCKET) -> np.ndarray:
        """Apply the network's "log_prob", "forward" or "forward_log_det" to float32 rows
        ``a`` (N, d_theta) given ``c`` (N, d_x), chunk by chunk (padded under XLA)."""
        if name not in self._compiled:
            fn = {"log_prob": self._net.log_prob, "forward": self._net.forward,
                  "forward_log_det": self._net.forward_log_det}[name]
            self._compiled[name] = compile_flow_fn(fn, self.config.jit_compile, self.d_theta,
                                                   self.d_x)
        width = {"forward": a.shape[1], "forward_log_det": a.shape[1] + 1}.get(name)
        return run_chunked(self._compiled[name], a, c, chunk, pad=self.config.jit_compile,
                           empty_shape=(0,) if width is None else (0, width),
                           min_bucket=min_bucket)

    # ------------------------------------------------------- theta <-> flow space
    def _log_dz_dtheta(self, y: np.ndarray) -> np.ndarray:
        """log |det dz / dtheta| (N,) of the box map, from the unbounded y = z y_std + y_mean
        (exact even where theta rounds onto a face of the box)."""
        return np.sum(self._box_map.log_det(y)
                      - np.log(self.high - self.low) - np.log(self._y_std), axis=1)

    def _theta_to_z(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta (N, d) -> flow-space z (N, d) and log|dz/dtheta| (N,), float64."""
        u = np.clip((theta - self.low) / (self.high - self.low), BOX_EPS, 1.0 - BOX_EPS)
        y = self._box_map.forward(u)
        return (y - self._y_mean) / self._y_std, self._log_dz_dtheta(y)

    def _z_to_theta(self, z: np.ndarray) -> np.ndarray:
        """Flow-space z (N, d) -> theta (N, d), clipped to the closed box."""
        u = self._box_map.inverse(z * self._y_std + self._y_mean)
        return np.clip(self.low + u * (self.high - self.low), self.low, self.high)

    def _rows_with_x(self, a, name: str, x) -> tuple[np.ndarray, np.ndarray]:
        """``a`` as (N, d_theta) and ``x`` as (N, d_x), a single x row broadcast to all N."""
        a = as_2d(a, name, self.d_theta)
        x = as_2d(x, "x", self.d_x)
        if x.shape[0] == 1 and a.shape[0] != 1:
            x = np.broadcast_to(x, (a.shape[0], self.d_x))
        if x.shape[0] != a.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows but x has {x.shape[0]}")
        return a, x

    @staticmethod
    def _check_whiten(config: FlowConfig, d_x: int, x_whiten):
        """The whitening matrix of ``config.whiten_columns`` as float64 (k, k), or None."""
        cols = config.whiten_columns
        if not cols:
            if x_whiten is not None:
                raise ValueError("x_whiten needs config.whiten_columns")
            return None
        if max(cols) >= d_x:
            raise ValueError(f"whiten_columns {list(cols)} name columns beyond x's {d_x}")
        w = np.eye(len(cols)) if x_whiten is None else np.asarray(x_whiten, dtype=np.float64)
        if w.shape != (len(cols), len(cols)) or not np.all(np.isfinite(w)):
            raise ValueError(f"x_whiten must be a finite ({len(cols)}, {len(cols)}) matrix, got "
                             f"shape {w.shape}")
        return w

    def _standardise_x(self, x: np.ndarray) -> np.ndarray:
        """What the networks see of x (N, d_x): standardised, and whitened in
        ``config.whiten_columns``."""
        c = (x - self._x_mean) / self._x_std
        if self._x_whiten is not None:
            cols = list(self.config.whiten_columns)
            c[:, cols] = c[:, cols] @ self._x_whiten
        return c

    # ------------------------------------------------------------------ public
    def in_box(self, theta) -> np.ndarray:
        """Boolean (N,): rows of ``theta`` inside the closed box ``[low, high]``."""
        theta = as_2d(theta, "theta", self.d_theta)
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
        lp = self._run_compiled("log_prob", z.astype(np.float32), c.astype(np.float32),
                               int(chunk_size)).astype(np.float64)
        return np.where(inside, lp + logdet, -np.inf)

    def _draw_flow_space(self, x_obs, n, seed, chunk_size):
        """Base noise pushed through the flow: flow-space z (n_obs * n, d) float32, the
        standardised x of each row, the rows that overflowed, n_obs and n."""
        x_obs = as_2d(x_obs, "x_obs", self.d_x)
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        n = int(n)
        n_obs = x_obs.shape[0]
        rng = np.random.default_rng(seed)
        eps = rng.standard_normal((n_obs * n, self.d_theta), dtype=np.float32)
        c = np.repeat(self._standardise_x(x_obs).astype(np.float32), n, axis=0)
        z = self._run_compiled("forward", eps, c, int(chunk_size))
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
        lp_z = self._run_compiled("log_prob", z, c, int(chunk_size)).astype(np.float64)
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
        out = self._run_compiled("forward_log_det", eps.astype(np.float32), c, int(chunk_size),
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
    def fit(cls, theta, x, low, high, config: FlowConfig | str | tuple | None = None,
            checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
            callback: Callable[[int, dict], None] | None = None,
            init: "ConditionalFlow | None" = None, init_inputs=None) -> "ConditionalFlow":
        """Train a flow by maximum likelihood on simulated pairs.

        Parameters
        ----------
        theta : array_like of shape (N, d_theta)
            Parameters drawn from the prior; all inside ``[low, high]``.
        x : array_like of shape (N, d_x)
            Simulated data for each theta.
        low, high : float or array_like of shape (d_theta,)
            The support box (the prior's), ``low < high``.
        config : FlowConfig or "auto", optional
            Default (None or ``"auto"``): the procedure of
            :mod:`~provabgs_sbi.inference.flows.auto`: two small MAFs, affine and spline
            blocks, sized and trained by rules of ``N`` (:func:`~provabgs_sbi.inference.flows.auto.auto_candidates`)
            on the same validation split; the one of lower validation loss is returned,
            its ``config.auto_rule`` recording both losses. A sequence of FlowConfig
            is trained the same way (each, then the lowest validation loss kept). With
            ``init`` and no config, ``init``'s settings.
        checkpoint_dir : path, optional
            Write checkpoints here every ``config.checkpoint_every`` epochs (and at the
            end). If it already holds a checkpoint of the same data and config, training
            resumes from it; a checkpoint of other data or settings is an error
            (``max_epochs`` and ``checkpoint_every`` may differ). The default procedure
            keeps each candidate's checkpoints in a subfolder (``affine``, ``spline``).
        progress : bool
            Show a tqdm bar over epochs.
        callback : callable, optional
            ``callback(epoch, history_entry)`` after each epoch (after checkpointing);
            raising from it (e.g. :class:`TrainingInterrupted`) stops training.
        init : ConditionalFlow, optional
            Start from this trained flow's weights rather than random ones: fine-tuning on
            more simulations. Its standardisation, permutations and box are kept, so
            ``config`` must agree with it on the other architecture fields
            (``hidden_units``, ``activation``, ``box_transform``, ``transform``, spline
            settings) and ``low``/``high`` must equal its box. Epochs, the step-size schedule
            and early stopping start afresh from ``config``. A checkpoint resumes only with
            the same ``init``. Two changes are allowed, each starting as exactly ``init``:
            other ``whiten_columns``, and (MAF) more ``n_transforms``, the new blocks
            added on the base side as identity maps (the same density; draws from a
            given seed differ).
        init_inputs : sequence of int, optional
            With ``init`` (a MAF) of fewer conditioning inputs than ``x`` has: for each column
            of ``x``, the column of ``init``'s input carrying the same quantity, or -1 for a
            new one. The flow standardises ``x`` afresh and starts as exactly ``init`` on
            inputs ``init`` could see (new columns start with zero weights).

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
        return fit_flow(cls, theta, x, low, high, config=config, checkpoint_dir=checkpoint_dir,
                        progress=progress, callback=callback, init=init,
                        init_inputs=init_inputs)

    # ------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the flow to a folder: ``weights.npz``, ``flow.json``, ``manifest.json``.

        ``flow.json`` holds the config, box, normalisation, permutations, training
        history and library versions; ``manifest.json`` the SHA-256 of the other two,
        checked by :meth:`load` (:mod:`~provabgs_sbi.inference.flows.storage`). Files are
        written atomically.

        Returns
        -------
        pathlib.Path
            The folder.
        """
        return save_flow(self, path)

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
        return load_flow_folder(cls, path)

    def __repr__(self) -> str:
        c = self.config
        return (f"ConditionalFlow(d_theta={self.d_theta}, d_x={self.d_x}, family={c.family!r}, "
                f"n_transforms={c.n_transforms}, hidden_units={c.hidden_units})")

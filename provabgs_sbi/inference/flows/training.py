"""Maximum-likelihood training of a conditional flow on simulated pairs (theta, x).

A plain :class:`tf.GradientTape` loop: Adam (optionally with decoupled weight decay),
gradient-norm clipping, a seeded train/validation split, a step size lowered when the
validation loss stalls, and early stopping with the best weights kept. The steps of one
epoch run inside one ``tf.function`` (XLA-compiled with ``FlowConfig.jit_compile``, several
times faster on CPU than one Python call per step). With a checkpoint folder, training
writes :mod:`~provabgs_sbi.inference.flows.checkpoints` and resumes from them, ending where
an uninterrupted run would.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from provabgs_sbi.inference.flows.arrays import as_2d, check_box
from provabgs_sbi.inference.flows.auto import auto_candidates, selection_record
from provabgs_sbi.inference.flows.blocks import tf_modules
from provabgs_sbi.inference.flows.box_maps import BOX_EPS, box_map
from provabgs_sbi.inference.flows.checkpoints import (CHECKPOINT_NAME, read_checkpoint,
                                                      write_checkpoint)
from provabgs_sbi.inference.flows.config import ARCHITECTURE_FIELDS, FlowConfig
from provabgs_sbi.io.hashing import hash_arrays

__all__ = ["TrainingInterrupted", "fit_flow", "zca_matrix"]

#: Adam's moment decay rates and denominator offset.
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8


class TrainingInterrupted(RuntimeError):
    """Raise from a ``fit`` callback to stop training (the last checkpoint is kept)."""


def fit_flow(cls, theta, x, low, high, config: FlowConfig | None = None,
             checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
             callback: Callable[[int, dict], None] | None = None, init=None,
             init_inputs=None):
    """Check the data, build (or warm-start) a flow of class ``cls`` and train it.

    See :meth:`~provabgs_sbi.inference.flows.ConditionalFlow.fit`, which calls this with
    its class, for the parameters.
    """
    theta = as_2d(theta, "theta")
    x = as_2d(x, "x")
    if theta.shape[0] != x.shape[0]:
        raise ValueError(f"theta has {theta.shape[0]} rows but x has {x.shape[0]}")
    if config is None and init is not None:
        config = init.config          # a warm start keeps its settings
    if config is None or (isinstance(config, str) and config == "auto"):
        config = auto_candidates(theta.shape[0], theta.shape[1], x.shape[1])
    if isinstance(config, (tuple, list)):
        if init is not None:
            raise ValueError("a warm start keeps init's settings: pass config=None (init's) "
                             "or one FlowConfig with its architecture, not candidates")
        return _fit_candidates(cls, tuple(config), theta, x, low, high, checkpoint_dir,
                               progress, callback)
    if not isinstance(config, FlowConfig):
        raise TypeError(f"config must be a FlowConfig, None or 'auto', got {config!r}")
    d = theta.shape[1]
    low, high = check_box(low, high, d)
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
        # started with init's whitening and blocks, then mapped to config's whitening
        # (_rewhiten) and given config's extra blocks on the base side (_deepen)
        as_init = dataclasses.replace(config, whiten_columns=init.config.whiten_columns,
                                      n_transforms=init.config.n_transforms)
        if init_inputs is not None:
            flow = _warm_start_widened(cls, init, as_init, low, high, x, init_inputs)
        else:
            flow = _warm_start(cls, init, as_init, low, high, x.shape[1])
        if flow.config.whiten_columns != config.whiten_columns:
            flow = _rewhiten(cls, flow, dataclasses.replace(as_init, whiten_columns=
                                                            config.whiten_columns), x)
        if flow.config.n_transforms != config.n_transforms:
            flow = _deepen(cls, flow, config)
    else:
        # Normalisation from the training data (all of it, as sbi does).
        width = high - low
        u = np.clip((theta - low) / width, BOX_EPS, 1.0 - BOX_EPS)
        y = box_map(config.box_transform).forward(u)
        y_mean, y_std = y.mean(axis=0), y.std(axis=0)
        y_std = np.where(y_std > 1e-12, y_std, 1.0)
        x_mean, x_std = _standardisation(x)
        flow = cls(config, low, high, y_mean, y_std, x_mean, x_std,
                   x_whiten=_whitening(config, (x - x_mean) / x_std))
    flow.data_hash = hash_arrays(theta, x, low, high)
    _train(flow, theta, x, checkpoint_dir, progress, callback)
    return flow


def _fit_candidates(cls, candidates, theta, x, low, high, checkpoint_dir, progress,
                    callback):
    """Train each candidate config on the same data, keep the lowest best validation loss,
    and record every candidate's loss in the kept flow's ``config.auto_rule``.

    The default procedure (:mod:`~provabgs_sbi.inference.flows.auto`) passes its affine and
    spline candidates; they share the seed, hence the validation split.
    """
    if not candidates or not all(isinstance(c, FlowConfig) for c in candidates):
        raise TypeError("config candidates must be a non-empty sequence of FlowConfig")
    names = [c.transform for c in candidates]
    if len(set(names)) < len(names):
        names = [f"{name}{i}" for i, name in enumerate(names)]
    flows, losses = [], {}
    for name, cfg in zip(names, candidates):
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / name
        flow = fit_flow(cls, theta, x, low, high, config=cfg, checkpoint_dir=ckpt,
                        progress=progress, callback=callback)
        flows.append(flow)
        losses[name] = flow.best_val_loss if flow.best_val_loss is not None else math.inf
    best = flows[int(np.argmin([losses[name] for name in names]))]
    rule = best.config.auto_rule or "selected"
    best.config = dataclasses.replace(best.config, auto_rule=selection_record(losses, rule))
    return best


def _check_init(cls, init, config: FlowConfig, low: np.ndarray, high: np.ndarray, d_x: int):
    """Refuse an ``init`` of another class, size, box or architecture than ``config``."""
    if not isinstance(init, cls):
        raise TypeError("init must be a single ConditionalFlow (for a mixture, pass one "
                        f"of its members), got {type(init).__name__}")
    if init.d_theta != low.size or init.d_x != d_x:
        raise ValueError(f"init has d_theta={init.d_theta}, d_x={init.d_x}; the data "
                         f"have {low.size} and {d_x}")
    if not (np.array_equal(init.low, low) and np.array_equal(init.high, high)):
        raise ValueError(f"init was trained on the box low={init.low}, high={init.high}, "
                         f"not low={low}, high={high}")
    old, new = init.config.to_dict(), config.to_dict()
    differ = [k for k in ARCHITECTURE_FIELDS if old.get(k) != new.get(k)]
    if differ:
        raise ValueError("config must keep init's architecture; it differs in "
                         + ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})"
                                     for k in differ))


def _warm_start(cls, init, config: FlowConfig, low: np.ndarray, high: np.ndarray, d_x: int):
    """A new ``cls`` flow with ``config`` holding ``init``'s weights, standardisation and box."""
    _check_init(cls, init, config, low, high, d_x)
    weights = init.get_weights()
    flow = cls(config, init.low, init.high, init._y_mean, init._y_std, init._x_mean,
               init._x_std, permutations=init._permutations, weights=weights,
               x_whiten=init._x_whiten)
    flow.init_weights_sha256 = hash_arrays(*weights)
    return flow


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column of x (std 1 for a constant column)."""
    x_mean, x_std = x.mean(axis=0), x.std(axis=0)
    return x_mean, np.where(x_std > 1e-12 * np.maximum(1.0, np.abs(x_mean)), x_std, 1.0)


def zca_matrix(s: np.ndarray, rel_floor: float = 1e-6) -> np.ndarray:
    """ZCA whitening matrix W of standardised columns ``s`` (N, k): ``s @ W`` has unit
    covariance and stays closest to ``s`` of all whitenings (Kessy, Lewin & Strimmer 2018,
    "Optimal whitening and decorrelation"), so each whitened column still reads as its own
    quantity.

    W = V diag(lambda^(-1/2)) V^T from the eigendecomposition of the covariance, with the
    eigenvalues floored at ``rel_floor`` times the largest (a column that is a linear
    combination of others is not blown up).

    Returns
    -------
    ndarray of shape (k, k), float64, symmetric
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2 or s.shape[0] <= s.shape[1]:
        raise ValueError(f"need more rows than columns (at least 2) to whiten, got {s.shape}")
    lam, v = np.linalg.eigh(np.cov(s, rowvar=False))
    lam = np.maximum(lam, rel_floor * lam.max())
    return (v / np.sqrt(lam)) @ v.T


def _whitening(config: FlowConfig, s: np.ndarray):
    """``config``'s whitening matrix from standardised inputs ``s`` (N, d_x), or None."""
    cols = list(config.whiten_columns)
    if not cols:
        return None
    if max(cols) >= s.shape[1]:
        raise ValueError(f"whiten_columns {cols} name columns beyond x's {s.shape[1]}")
    return zca_matrix(s[:, cols])


def _map_conditional_kernels(weights, d_x: int, fn) -> list[np.ndarray]:
    """A MAF's weights with every MADE layer's conditional kernel and bias replaced by
    ``fn(cond, bias) -> (cond, bias)`` (float32 out).

    Each MADE layer holds (masked kernel, bias of shape (units,), conditional kernel of
    shape (d_x, units)); the conditioning enters every layer through the last.

    Raises
    ------
    ValueError
        Weights not in that layout.
    """
    if len(weights) % 3:
        raise ValueError("unexpected MADE layout; cannot map its conditional kernels")
    new = []
    for i in range(0, len(weights), 3):
        kernel, bias, cond = weights[i:i + 3]
        if bias.ndim != 1 or cond.shape != (d_x, bias.size):
            raise ValueError("unexpected MADE layout; cannot map its conditional kernels")
        cond, bias = fn(cond, bias)
        new += [kernel, np.asarray(bias, np.float32), np.asarray(cond, np.float32)]
    return new


def _block_matrix(d_x: int, cols, w) -> np.ndarray:
    """The (d_x, d_x) matrix of whitening ``w`` on columns ``cols`` (identity elsewhere)."""
    p = np.eye(d_x)
    if cols:
        p[np.ix_(list(cols), list(cols))] = w
    return p


def _rewhiten(cls, flow, config: FlowConfig, x: np.ndarray):
    """``flow`` with ``config``'s whitening (computed from ``x``), computing exactly what
    ``flow`` did.

    Row vectors: the networks see c = s P with s the standardised x and P the whitening
    (identity outside its columns). Every MADE layer's conditional kernel K enters as c K,
    so with c_old = c_new P_new^-1 P_old the new kernel is P_new^-1 P_old K_old.
    """
    if config.family != "maf" or flow.config.family != "maf":
        raise ValueError("changing whiten_columns in a warm start needs MAF flows")
    d = flow.d_x
    w_new = _whitening(config, (x - flow._x_mean) / flow._x_std)
    m = np.linalg.solve(_block_matrix(d, config.whiten_columns, w_new),
                        _block_matrix(d, flow.config.whiten_columns, flow._x_whiten))
    new = _map_conditional_kernels(
        flow.get_weights(), d, lambda cond, bias: (m @ cond.astype(np.float64), bias))
    out = cls(config, flow.low, flow.high, flow._y_mean, flow._y_std, flow._x_mean,
              flow._x_std, permutations=flow._permutations, weights=new, x_whiten=w_new)
    out.init_weights_sha256 = flow.init_weights_sha256
    return out


def _deepen(cls, flow, config: FlowConfig):
    """``flow`` with blocks added on the base side up to ``config.n_transforms``, each new
    block starting as the identity map, so the deeper flow has exactly ``flow``'s density.

    A trained flow gains capacity without losing its training: the new MADEs' hidden layers
    get the seeded initialisation of a fresh flow of ``config``, their output layers
    (masked kernel, bias, conditional kernel) start at zero, which the blocks' maps read as
    the identity (zero shift, unit scale; an identity spline). They go before the first old
    block, where the base noise enters: between them stand permutations (those a fresh flow
    of ``config`` would have there), which leave a standard-normal base standard normal,
    so the density is unchanged (on the data side they would permute the output). The old
    blocks keep their weights and permutations. Draws from a given seed differ from
    ``flow``'s; their distribution does not.

    Raises
    ------
    ValueError
        Fewer blocks than ``flow``, or not MAF flows.
    """
    old_k, new_k = flow.config.n_transforms, config.n_transforms
    if new_k < old_k:
        raise ValueError(f"a warm start can add blocks, not remove them ({old_k} -> {new_k})")
    if config.family != "maf" or flow.config.family != "maf":
        raise ValueError("adding blocks to a warm start needs MAF flows")
    added = new_k - old_k
    fresh = cls(config, flow.low, flow.high, flow._y_mean, flow._y_std, flow._x_mean,
                flow._x_std, x_whiten=flow._x_whiten)
    old, seeded = flow.get_weights(), fresh.get_weights()
    per_block = len(old) // old_k
    new = []
    for k in range(added):
        made = seeded[k * per_block:(k + 1) * per_block]
        new += made[:-3] + [np.zeros_like(w) for w in made[-3:]]
    perms = list(fresh._permutations[:added]) + list(flow._permutations)
    out = cls(config, flow.low, flow.high, flow._y_mean, flow._y_std, flow._x_mean,
              flow._x_std, permutations=perms, weights=new + old, x_whiten=flow._x_whiten)
    out.init_weights_sha256 = flow.init_weights_sha256
    return out


def _warm_start_widened(cls, init, config: FlowConfig, low, high, x: np.ndarray, init_inputs):
    """A new MAF with more conditioning inputs than ``init`` that starts as ``init``.

    Column j of the new input ``x`` carries the same quantity as column ``init_inputs[j]`` of
    ``init``'s input, or is new (``-1``). The new flow standardises x with its own mean and
    standard deviation; the conditional kernels of every MADE layer are rescaled (and the
    layer's bias shifted) so that on inputs ``init`` could see, the new flow computes exactly
    what ``init`` did, whatever the new columns hold: their kernel rows start at zero.

    This lets a mask-aware posterior (magnitudes, sigma_eff, z, present bits) start from a
    SEDflow posterior (magnitudes, errors, z) trained for many epochs, rather than from
    random weights.
    """
    init_inputs = np.asarray(init_inputs, dtype=np.int64).reshape(-1)
    if init_inputs.size != x.shape[1]:
        raise ValueError(f"init_inputs must give one entry per column of x ({x.shape[1]}), "
                         f"got {init_inputs.size}")
    used = init_inputs[init_inputs >= 0]
    if np.any(used >= init.d_x) or np.any(init_inputs < -1) or len(set(used)) != init.d_x:
        raise ValueError(f"init_inputs must use each of init's {init.d_x} inputs once (and -1 "
                         f"for new ones), got {init_inputs.tolist()}")
    if config.family != "maf" or init.config.family != "maf":
        raise ValueError("widening the inputs of a warm start needs MAF flows")
    if init.config.whiten_columns:
        raise ValueError("widening the inputs of a warm start needs an init without "
                         "whiten_columns")
    _check_init(cls, init, config, low, high, init.d_x)
    x_mean, x_std = _standardisation(x)
    old = init.get_weights()

    # old_c = (x - m_old) / s_old and x = m_new + s_new c_new, so row j of the new kernel is
    # the old row scaled by s_new / s_old and the bias gains old_row (m_new - m_old) / s_old.
    def widen(cond, bias):
        rows = np.zeros((x.shape[1], bias.size), np.float64)
        bias = bias.astype(np.float64).copy()
        for j, k in enumerate(init_inputs):
            if k < 0:
                continue
            rows[j] = cond[k] * (x_std[j] / init._x_std[k])
            bias += cond[k] * ((x_mean[j] - init._x_mean[k]) / init._x_std[k])
        return rows, bias

    new = _map_conditional_kernels(old, init.d_x, widen)
    flow = cls(config, init.low, init.high, init._y_mean, init._y_std, x_mean, x_std,
               permutations=init._permutations, weights=new)
    flow.init_weights_sha256 = hash_arrays(*old)
    return flow


def _train(flow, theta, x, checkpoint_dir, progress, callback) -> None:
    """The epoch loop: sets ``flow``'s best weights, ``history``, ``best_epoch`` and
    ``best_val_loss``."""
    tf, _ = tf_modules()
    from provabgs_sbi.progress import progress_bar

    cfg = flow.config
    n = theta.shape[0]
    split = np.random.default_rng([cfg.seed, 0]).permutation(n)
    n_val = int(round(cfg.validation_fraction * n))
    val_idx, tr_idx = np.sort(split[:n_val]), np.sort(split[n_val:])

    z_all, logdet_all = flow._theta_to_z(theta)
    c_all = flow._standardise_x(x)
    z_tr = tf.constant(z_all[tr_idx].astype(np.float32))
    c_tr = tf.constant(c_all[tr_idx].astype(np.float32))
    z_val, c_val = z_all[val_idx].astype(np.float32), c_all[val_idx].astype(np.float32)
    # Losses are reported in theta space: flow-space NLL minus the mean log-Jacobian.
    jac_tr, jac_val = float(logdet_all[tr_idx].mean()), float(logdet_all[val_idx].mean())

    n_tr = len(tr_idx)
    bs = min(cfg.batch_size, n_tr)
    n_batches = -(-n_tr // bs)
    step_fn, adam_state = _make_train_step(flow, bs)

    # ---- state, possibly from a checkpoint
    state = dict(epoch=0, best_val=math.inf, best_epoch=None, bad_epochs=0, history=[],
                 finished=False, learning_rate=cfg.learning_rate, lr_bad_epochs=0)
    best_weights = flow.get_weights()
    ckpt_path = None
    if checkpoint_dir is not None:
        ckpt_dir = Path(checkpoint_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt_path = ckpt_dir / CHECKPOINT_NAME
        if ckpt_path.exists():
            best_weights = read_checkpoint(ckpt_path, flow, state, adam_state)

    bar = progress_bar(total=cfg.max_epochs, initial=state["epoch"], disable=not progress,
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
            val_lp = flow._run_compiled("log_prob", z_val, c_val, 16384)
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
                best_weights = flow.get_weights()
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
            # postfix first, without a draw of its own: the update draws the epoch once
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}",
                            best=f"{state['best_val']:.3f}", refresh=False)
            bar.update(1)
            if ckpt_path is not None and (state["finished"] or epoch % cfg.checkpoint_every == 0
                                          or epoch == cfg.max_epochs):
                write_checkpoint(ckpt_path, flow, state, best_weights, adam_state)
            if callback is not None:
                callback(epoch, entry)
    finally:
        bar.close()

    flow.set_weights(best_weights)
    flow.history = list(state["history"])
    flow.best_epoch = state["best_epoch"]
    flow.best_val_loss = state["best_val"] if state["best_epoch"] is not None else None


def _make_train_step(flow, batch_size: int):
    """Compiled function running one epoch of Adam steps (returns the summed NLL), and
    Adam's state: ``m``, ``v`` (one tf.Variable per weight), ``step`` and ``lr``."""
    tf, _ = tf_modules()
    cfg = flow.config
    net = flow._net
    variables = net.variables
    masks = [None if m is None else tf.constant(m) for m in net.masks]
    adam = dict(m=[tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
                v=[tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
                step=tf.Variable(0, dtype=tf.int64, trainable=False),
                lr=tf.Variable(cfg.learning_rate, dtype=tf.float32, trainable=False))
    lr, b1, b2, eps = adam["lr"], _ADAM_BETA1, _ADAM_BETA2, _ADAM_EPS
    # Decoupled weight decay acts on kernels (rank 2), not on biases.
    decays = [cfg.weight_decay if len(v.shape) > 1 else 0.0 for v in variables]

    def epoch_fn(z, c, idx, wts):
        # An explicit while loop (no AutoGraph, so nothing depends on reading this
        # file's source at run time); the Adam updates run before the next step.
        def body(i, total):
            zb, cb, wb = tf.gather(z, idx[i]), tf.gather(c, idx[i]), wts[i]
            with tf.GradientTape() as tape:
                nll = -net.log_prob(zb, cb)
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

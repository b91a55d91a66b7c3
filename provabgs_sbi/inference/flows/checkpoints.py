"""Training checkpoints of a conditional flow: one ``checkpoint.npz`` per run, written
atomically, holding the weights, the best weights so far, Adam's moments and the loop's
state, with a resume key that refuses to continue a run of other data or settings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.io.atomic import atomic_write_bytes, npz_bytes
from provabgs_sbi.io.hashing import sha256_bytes

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "read_checkpoint", "resume_key",
           "write_checkpoint"]

CHECKPOINT_FORMAT = "provabgs_sbi.ConditionalFlow.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.npz"
#: Config fields that may change between an interrupted run and its resumption.
_RESUMABLE_FIELDS = ("max_epochs", "checkpoint_every", "lr_patience", "lr_factor",
                     "min_learning_rate")
#: Fields added after checkpoints were first written, with the value that reproduces the
#: older training: a config holding that value keeps the resume key it had before the field.
_LEGACY_DEFAULTS = {"box_transform": "logit", "weight_decay": 0.0, "family": "maf",
                    "auto_rule": ""}
#: Loop state restored from a checkpoint as written.
_STATE_KEYS = ("epoch", "best_val", "best_epoch", "bad_epochs", "history", "finished")


def resume_key(flow) -> str:
    """SHA-256 of the settings a resumed run must share with the interrupted one: the
    config less the resumable fields (and legacy defaults), plus the warm start's weights."""
    cfg = {k: v for k, v in flow.config.to_dict().items() if k not in _RESUMABLE_FIELDS
           and not (k in _LEGACY_DEFAULTS and v == _LEGACY_DEFAULTS[k])}
    if flow.init_weights_sha256 is not None:
        cfg["init_weights_sha256"] = flow.init_weights_sha256
    return sha256_bytes(json.dumps(cfg, sort_keys=True).encode())


def write_checkpoint(path: Path, flow, state: dict, best_weights: list, adam: dict) -> None:
    """Write ``flow``'s training state to ``path`` atomically.

    Parameters
    ----------
    path : pathlib.Path
        The ``checkpoint.npz`` file.
    flow : ConditionalFlow
        Being trained (its current weights, data hash and config are saved).
    state : dict
        The loop's state (epoch, best_val, history, learning_rate, ...; JSON-ready).
    best_weights : list of ndarray
        Weights of the best epoch so far.
    adam : dict
        Adam's ``m``, ``v`` (lists of tf.Variable) and ``step``.
    """
    meta = dict(format=CHECKPOINT_FORMAT, data_hash=flow.data_hash,
                resume_key=resume_key(flow), config=flow.config.to_dict(), **state)
    arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for i, w in enumerate(flow.get_weights()):
        arrays[f"w{i}"] = w
    for i, w in enumerate(best_weights):
        arrays[f"best{i}"] = w
    for i, (m, v) in enumerate(zip(adam["m"], adam["v"])):
        arrays[f"m{i}"], arrays[f"v{i}"] = m.numpy(), v.numpy()
    arrays["adam_step"] = np.array(adam["step"].numpy())
    atomic_write_bytes(path, npz_bytes(arrays))


def read_checkpoint(path: Path, flow, state: dict, adam: dict) -> list[np.ndarray]:
    """Restore a checkpoint written by :func:`write_checkpoint` into ``flow``, ``state``
    and ``adam`` (in place), after checking it belongs to this run.

    Returns
    -------
    list of ndarray
        The best weights so far.

    Raises
    ------
    ValueError
        Not a checkpoint, or one written for other data or another config.
    """
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a ConditionalFlow checkpoint")
    if meta["data_hash"] != flow.data_hash:
        raise ValueError(f"checkpoint {path} was written for other training data; "
                         "refusing to resume (use another checkpoint_dir)")
    if meta["resume_key"] != resume_key(flow):
        raise ValueError(f"checkpoint {path} was written with another FlowConfig "
                         f"({meta['config']}); refusing to resume")
    n_var = len(adam["m"])
    flow.set_weights([arrays[f"w{i}"] for i in range(n_var)])
    for i in range(n_var):
        adam["m"][i].assign(arrays[f"m{i}"])
        adam["v"][i].assign(arrays[f"v{i}"])
    adam["step"].assign(arrays["adam_step"])
    for key in _STATE_KEYS:
        state[key] = meta[key]
    # Checkpoints from before the step-size schedule resume at the configured step.
    state["learning_rate"] = meta.get("learning_rate", flow.config.learning_rate)
    state["lr_bad_epochs"] = meta.get("lr_bad_epochs", 0)
    adam["lr"].assign(state["learning_rate"])
    return [arrays[f"best{i}"] for i in range(n_var)]

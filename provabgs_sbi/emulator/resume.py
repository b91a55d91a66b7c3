"""What makes emulator training resumable: the PCA basis and the network's checkpoint,
both kept in the work folder beside the training spectra.

The three long steps of :func:`~provabgs_sbi.emulator.training.train_emulator` on 10^6
spectra take ~10 min (spectra), ~15 min (the PCA scatter matrix) and an hour or more (the
network). The spectra resume by chunk (:mod:`.trainset`); this module does the same for the
other two:

- **PCA basis** (``pca_<key>.npz``): the standardisation and basis,
  keyed by the two spectra files' settings and ``n_pca``. The coefficients are not stored
  (10^6 x n_pca floats): recomputing them is one pass over the files.
- **Network checkpoint** (``network_<key>.npz``), written atomically after every epoch:
  current and best weights, Adam's state, the phase and epoch, the patience counter, the
  shuffling generator's state, the history and the minutes spent. A run interrupted after
  epoch k and resumed gives the weights of an uninterrupted run. The key covers every
  setting that shapes training except the wall-clock budget (``max_minutes``) and the size
  of the final validation (``n_validate``): a run that stopped on its budget continues
  when rerun with a larger one.

Keys are part of the file names, so runs with other settings in the same work folder
never meet; a finished run's checkpoint is kept (a rerun then goes straight to validation).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from provabgs_sbi.io.atomic import atomic_write_bytes, npz_bytes
from provabgs_sbi.io.hashing import sha256_bytes

__all__ = ["NETWORK_FORMAT", "PCA_FORMAT", "network_checkpoint_path", "pca_cache_path",
           "read_network_checkpoint", "read_pca_cache", "write_network_checkpoint",
           "write_pca_cache"]

PCA_FORMAT = "provabgs_sbi.emulator.pca/1"
NETWORK_FORMAT = "provabgs_sbi.emulator.network_checkpoint/1"
#: EmulatorConfig fields a resumed network run may change.
RESUMABLE_FIELDS = ("max_minutes", "n_validate")


def _key(obj) -> str:
    return sha256_bytes(json.dumps(obj, sort_keys=True).encode())[:16]


def _meta_array(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


def _read(path: Path, fmt: str) -> tuple[dict, dict]:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    if meta.get("format") != fmt:
        raise ValueError(f"{path} is not a {fmt} file (format {meta.get('format')!r})")
    return meta, arrays


# --------------------------------------------------------------------------- PCA basis
def pca_cache_path(work: Path, train_settings: str, val_settings: str, n_pca: int,
                   chunk: int) -> Path:
    """Where the PCA basis of these spectra files is cached.

    Parameters
    ----------
    work : pathlib.Path
        The work folder.
    train_settings, val_settings : str
        The ``settings`` attribute of the training and validation spectra files (what
        made them: sizes, seeds, SSP table hash, grid).
    n_pca, chunk : int
    """
    return Path(work) / f"pca_{_key([train_settings, val_settings, int(n_pca), int(chunk)])}.npz"


def write_pca_cache(path: Path, shift, scale, basis) -> None:
    """Store a PCA basis (atomically): ``shift``, ``scale`` (n_wave,), ``basis``
    (n_pca, n_wave)."""
    meta = {"format": PCA_FORMAT}
    atomic_write_bytes(path, npz_bytes({"meta": _meta_array(meta), "shift": shift,
                                         "scale": scale, "basis": basis}))


def read_pca_cache(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(shift, scale, basis)`` from :func:`write_pca_cache`, or None when
    ``path`` does not exist."""
    if not Path(path).exists():
        return None
    _, a = _read(Path(path), PCA_FORMAT)
    return a["shift"], a["scale"], a["basis"]


# ------------------------------------------------------------------ network checkpoint
def network_checkpoint_path(work: Path, config_dict: dict, data_hash: str) -> Path:
    """Where the network checkpoint of this run lives.

    Parameters
    ----------
    work : pathlib.Path
    config_dict : dict
        ``EmulatorConfig.to_dict()``; the fields of :data:`RESUMABLE_FIELDS` are left out
        of the key.
    data_hash : str
        Hash of the network's training data (PCA coefficients and inputs).
    """
    cfg = {k: v for k, v in config_dict.items() if k not in RESUMABLE_FIELDS}
    return Path(work) / f"network_{_key([cfg, data_hash])}.npz"


def write_network_checkpoint(path: Path, state: dict, weights, best_weights,
                             optimizer_values) -> None:
    """Write the training loop's state atomically.

    Parameters
    ----------
    path : pathlib.Path
    state : dict
        JSON-ready loop state (phase, epoch, stale, best, minutes, history, rng, finished,
        out_of_time).
    weights, best_weights : list of ndarray
        Current and best network variables.
    optimizer_values : list of ndarray
        The optimiser's variables (step count, first and second moments).
    """
    arrays = {"meta": _meta_array({"format": NETWORK_FORMAT, **state})}
    arrays.update({f"w{i}": w for i, w in enumerate(weights)})
    arrays.update({f"best{i}": w for i, w in enumerate(best_weights)})
    arrays.update({f"opt{i}": w for i, w in enumerate(optimizer_values)})
    atomic_write_bytes(path, npz_bytes(arrays))


def read_network_checkpoint(path: Path, n_weights: int, n_optimizer: int):
    """``(state, weights, best_weights, optimizer_values)`` from
    :func:`write_network_checkpoint`, or None when ``path`` does not exist.

    Raises
    ------
    ValueError
        A file of another format or with another number of variables.
    """
    if not Path(path).exists():
        return None
    state, a = _read(Path(path), NETWORK_FORMAT)
    state.pop("format")
    n_w = sum(k.startswith("w") for k in a)
    n_o = sum(k.startswith("opt") for k in a)
    if n_w != n_weights or n_o != n_optimizer:
        raise ValueError(f"{path} holds {n_w} weights and {n_o} optimiser variables; this "
                         f"network has {n_weights} and {n_optimizer}")
    return (state, [a[f"w{i}"] for i in range(n_w)], [a[f"best{i}"] for i in range(n_w)],
            [a[f"opt{i}"] for i in range(n_o)])

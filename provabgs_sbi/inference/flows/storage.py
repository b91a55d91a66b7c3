"""A conditional flow on disk: one folder with ``weights.npz``, ``flow.json`` and
``manifest.json``.

``flow.json`` holds the config, box, standardisation (and whitening), permutations,
training history and library versions; ``manifest.json`` is
``{"format": "provabgs_sbi.ConditionalFlow/1", "files": {name: SHA-256}}`` for the other
two, checked on load through
:func:`provabgs_sbi.io.artifacts.verify_files` (the package's one manifest check). The
committed posteriors' member folders have this layout, so it stays as it is.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from provabgs_sbi._version import __version__
from provabgs_sbi.inference.flows.blocks import MIN_SCALE, tf_modules
from provabgs_sbi.inference.flows.box_maps import BOX_EPS
from provabgs_sbi.inference.flows.config import FlowConfig
from provabgs_sbi.io.artifacts import MANIFEST, read_format_file, verify_files
from provabgs_sbi.io.atomic import atomic_write_bytes, npz_bytes
from provabgs_sbi.io.hashing import sha256_bytes

__all__ = ["FLOW_FORMAT", "load_flow_folder", "save_flow"]

FLOW_FORMAT = "provabgs_sbi.ConditionalFlow/1"
_WEIGHTS, _META = "weights.npz", "flow.json"


def save_flow(flow, path: str | os.PathLike) -> Path:
    """Write ``flow`` (a ConditionalFlow) to the folder ``path``, files atomically.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    tf, tfp = tf_modules()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = npz_bytes({f"w{i:03d}": w for i, w in enumerate(flow.get_weights())})
    meta = dict(
        format=FLOW_FORMAT, config=flow.config.to_dict(), d_theta=flow.d_theta, d_x=flow.d_x,
        low=flow.low.tolist(), high=flow.high.tolist(),
        y_mean=flow._y_mean.tolist(), y_std=flow._y_std.tolist(),
        x_mean=flow._x_mean.tolist(), x_std=flow._x_std.tolist(),
        **({} if flow._x_whiten is None else {"x_whiten": flow._x_whiten.tolist()}),
        permutations=[p.tolist() for p in flow._permutations],
        box_eps=BOX_EPS, min_scale=MIN_SCALE, history=flow.history,
        best_epoch=flow.best_epoch, best_val_loss=flow.best_val_loss,
        training_data_sha256=flow.data_hash,
        init_weights_sha256=flow.init_weights_sha256,
        versions={"provabgs_sbi": __version__, "tensorflow": tf.__version__,
                  "tensorflow_probability": tfp.__version__, "numpy": np.__version__},
    )
    meta_bytes = json.dumps(meta, indent=1).encode()
    manifest = dict(format=FLOW_FORMAT, files={_WEIGHTS: sha256_bytes(weights),
                                               _META: sha256_bytes(meta_bytes)})
    atomic_write_bytes(path / _WEIGHTS, weights)
    atomic_write_bytes(path / _META, meta_bytes)
    atomic_write_bytes(path / MANIFEST, json.dumps(manifest, indent=1).encode())
    return path


def load_flow_folder(cls, path: str | os.PathLike):
    """Read a flow written by :func:`save_flow` as a ``cls``, verifying both files.

    Raises
    ------
    FileNotFoundError
        No manifest, or a file is missing.
    ValueError
        The manifest names another format.
    provabgs_sbi.io.artifacts.ChecksumError
        A file does not match its hash in ``manifest.json``.
    """
    path = Path(path)
    manifest = read_format_file(path / MANIFEST, FLOW_FORMAT, "a saved ConditionalFlow")
    verify_files(path, {name: manifest["files"].get(name) for name in (_WEIGHTS, _META)},
                 path / MANIFEST)
    meta = json.loads((path / _META).read_text())
    with np.load(path / _WEIGHTS) as f:
        weights = [f[k] for k in sorted(f.files)]
    flow = cls(FlowConfig.from_dict(meta["config"]), meta["low"], meta["high"],
               meta["y_mean"], meta["y_std"], meta["x_mean"], meta["x_std"],
               permutations=meta["permutations"], weights=weights,
               x_whiten=meta.get("x_whiten"))
    flow.history = meta["history"]
    flow.best_epoch = meta["best_epoch"]
    flow.best_val_loss = meta["best_val_loss"]
    flow.data_hash = meta["training_data_sha256"]
    flow.init_weights_sha256 = meta.get("init_weights_sha256")
    return flow

"""Running the flow's TensorFlow functions on numpy rows, chunk by chunk.

Each function is traced once, for any number of rows (an ``input_signature`` with an
unknown row dimension). Under XLA (``FlowConfig.jit_compile``) every distinct input shape
still costs a compilation of that one trace, so rows are cut into chunks and a partial chunk
is padded (:func:`provabgs_sbi.xla_shapes.pieces`: to the full chunk in a call of several
chunks, else to one of a few bucket sizes, quarter-octave steps from 256 rows); without XLA
nothing is padded.

Tracing per shape, as a ``tf.function`` without a signature does, traced the Python code
again for every bucket a call met; a catalog fitted in chunks meets several (the rows per
call vary with the galaxies per chunk and each ensemble member's share of the draws), so
TensorFlow warned of "tf.function retracing" after a few hundred galaxies. XLA compiles the
one trace at each concrete shape to the same program as a trace made at that shape: samples
are bit-identical to those of the per-shape traces.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from provabgs_sbi.inference.flows.blocks import tf_modules
from provabgs_sbi.xla_shapes import MIN_BUCKET, bucket, pieces

__all__ = ["MIN_BUCKET", "bucket", "compile_flow_fn", "pieces", "run_chunked"]

def compile_flow_fn(fn: Callable, jit_compile: bool, d_theta: int, d_x: int):
    """``fn(a, c)`` of float32 tensors (N, d_theta) and (N, d_x) as a ``tf.function``
    traced once for any number of rows; with ``jit_compile``, XLA-compiled per shape
    (pad the rows with :func:`run_chunked` to keep the shapes few)."""
    tf, _ = tf_modules()
    spec = [tf.TensorSpec([None, d_theta], tf.float32), tf.TensorSpec([None, d_x], tf.float32)]
    # TensorFlow's retracing warning counts the traces of all tf.functions made from one
    # Python function together (keyed by its code): the first traces of five flows' (five
    # ensemble members') MAF.forward would read as one function retraced five times. A
    # partial (without __wrapped__) is keyed by itself, so each flow's function is counted
    # on its own.
    own = functools.partial(fn)
    own.__name__ = getattr(fn, "__name__", "flow_fn")
    return tf.function(own, input_signature=spec, jit_compile=True if jit_compile else None,
                       autograph=False)


def run_chunked(fn, a: np.ndarray, c: np.ndarray, chunk: int, pad: bool,
                empty_shape: tuple, min_bucket: int = MIN_BUCKET) -> np.ndarray:
    """Apply a compiled function to float32 rows, chunk by chunk.

    Parameters
    ----------
    fn : tf.function
        From :func:`compile_flow_fn`.
    a : ndarray of shape (N, d_theta), float32
    c : ndarray of shape (N, d_x), float32
    chunk : int
        Rows per call (>= 1).
    pad : bool
        Pad a partial chunk to a bucket size (under XLA).
    empty_shape : tuple
        Shape of the result when there are no rows, e.g. ``(0,)``.
    min_bucket : int
        Smallest padded size.

    Returns
    -------
    ndarray of shape (N, ...)
        The function's rows, padding dropped.
    """
    tf, _ = tf_modules()
    if int(chunk) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk}")
    n = a.shape[0]
    out = None
    for start, stop, size in pieces(n, int(chunk), pad=pad, min_bucket=min_bucket):
        a_pad = np.zeros((size, a.shape[1]), np.float32)
        c_pad = np.zeros((size, c.shape[1]), np.float32)
        a_pad[: stop - start] = a[start:stop]
        c_pad[: stop - start] = c[start:stop]
        res = fn(tf.constant(a_pad), tf.constant(c_pad)).numpy()[: stop - start]
        if out is None:
            out = np.empty((n,) + res.shape[1:], dtype=res.dtype)
        out[start:stop] = res
    if out is None:  # no rows
        return np.empty(empty_shape, np.float32)
    return out

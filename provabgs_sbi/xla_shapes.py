"""Row counts for XLA-compiled functions: few distinct shapes, little padding.

An XLA-compiled TensorFlow function is compiled again for every input shape it meets, and
one compilation of a flow's sampler or the emulator's photometry costs seconds on a CPU
(5-20 s on the 2-core machine of ``docs/results/speed.md``), far more than evaluating a
chunk. Callers cut their rows into chunks of a fixed size and pad the last, partial chunk:

* a call of several chunks pads its last one to the full chunk, so every call of that
  size class meets one shape (a catalog fit's chunks meet a new remainder every time);
* a call of one partial chunk is padded to a :func:`bucket` size (quarter-octave steps),
  so small calls do not pay for a whole chunk.

Padding rows are computed and dropped; every row's result is the same whatever the
padding (each row is computed independently).
"""
from __future__ import annotations

import math

__all__ = ["MIN_BUCKET", "bucket", "pieces"]

#: Smallest padded chunk for the compiled sample/log_prob functions.
MIN_BUCKET = 256


def bucket(rows: int, minimum: int = MIN_BUCKET) -> int:
    """Smallest padded size >= rows: 256 x 2^(k/4) rounded up to a multiple of 64.

    Quarter-octave steps waste at most ~19% of the work on padding while an
    XLA-compiled function sees only a few distinct shapes (each costs a compilation).
    Fewer than ``minimum`` rows are padded to ``minimum`` (smaller for the MCMC's
    repeated calls of a few rows each, see
    :meth:`~provabgs_sbi.inference.flows.ConditionalFlow.push_forward`).
    """
    if rows <= minimum:
        return minimum
    if rows <= MIN_BUCKET:
        return MIN_BUCKET
    k = math.ceil(4 * math.log2(rows / MIN_BUCKET))
    while True:
        size = 64 * math.ceil(MIN_BUCKET * 2.0 ** (k / 4) / 64)
        if size >= rows:
            return size
        k += 1


def pieces(n: int, chunk: int, pad: bool,
           min_bucket: int = MIN_BUCKET) -> list[tuple[int, int, int]]:
    """Split ``n`` rows into (start, stop, size) pieces of at most ``chunk`` rows.

    Parameters
    ----------
    n : int
        Rows in all.
    chunk : int
        Rows per piece (>= 1).
    pad : bool
        Give the last, partial piece a padded ``size``: ``chunk`` when there are several
        pieces, else :func:`bucket` of its length (at most ``chunk``). Without, ``size``
        is the piece's length.
    min_bucket : int
        Smallest padded size of a lone partial piece.

    Returns
    -------
    list of (start, stop, size)
        Rows ``start:stop`` are computed in an array of ``size`` rows.
    """
    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        size = stop - start
        if pad and size < chunk:
            size = chunk if n > chunk else min(bucket(size, min_bucket), chunk)
        out.append((start, stop, size))
    return out

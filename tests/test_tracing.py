"""The flow's TensorFlow functions are traced once per flow, whatever the row counts.

Under XLA the rows of a call are padded to one of a few bucket sizes, and each size was
once a new trace: a catalog fitted in chunks of varying size (ensemble members draw
varying shares of the samples) made TensorFlow warn "N out of the last N calls to
<bound method MAF.forward ...> triggered tf.function retracing". TensorFlow logs that
warning through the ``tensorflow`` Python logger (from
``tensorflow.python.eager.polymorphic_function``), which these tests listen to.
"""
from __future__ import annotations

import io
import logging
from contextlib import contextmanager

import numpy as np
import pytest

from provabgs_sbi.inference.flows.blocks import tf_modules

RETRACING = "triggered tf.function retracing"


@contextmanager
def tensorflow_warnings():
    """A StringIO that receives the ``tensorflow`` logger's warnings meanwhile (whatever
    level an earlier test or the command line's quieting left it at)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Doubler:
    """Stands for MAF: one method (one code object) that many flows compile. (Only one test
    compiles it: TensorFlow keys its retracing statistics by code, and warns at most twice
    per key in a process. The flows' own functions may have been warned about by earlier
    tests, so their tracing counts are checked too.)"""

    def forward(self, a, c):
        tf, _ = tf_modules()
        return 2.0 * a + tf.reduce_sum(c, axis=-1, keepdims=True)


def _per_shape(a, c):
    """Traced per shape below (its own code: TensorFlow warns at most twice per code)."""
    return a + c


def test_the_capture_sees_tensorflows_retracing_warning():
    """The check can fail: a function traced per shape is reported."""
    tf, _ = tf_modules()
    fn = tf.function(_per_shape, autograph=False)
    with tensorflow_warnings() as out:
        for n in range(1, 7):
            fn(tf.zeros([n, 1]), tf.zeros([n, 1]))
    assert RETRACING in out.getvalue()


def test_compiled_flow_functions_trace_once_for_any_row_count():
    from provabgs_sbi.inference.flows.bucketing import compile_flow_fn, run_chunked

    rng = np.random.default_rng(0)
    fns = [compile_flow_fn(Doubler().forward, True, 1, 2) for _ in range(6)]
    with tensorflow_warnings() as out:
        for n in (1, 300, 700, 1500, 2900):           # five bucket sizes (and two chunks)
            a = rng.standard_normal((n, 1)).astype(np.float32)
            c = rng.standard_normal((n, 2)).astype(np.float32)
            # six flows' functions of one code, first called in a row (as an ensemble's
            # members): TensorFlow must not count them as one function traced six times
            for fn in fns:
                got = run_chunked(fn, a, c, 2048, pad=True, empty_shape=(0, 1))
                np.testing.assert_array_equal(got, 2 * a + c.sum(1, keepdims=True))
    assert [fn.experimental_get_tracing_count() for fn in fns] == [1] * 6
    assert RETRACING not in out.getvalue(), out.getvalue()


@pytest.fixture(scope="module")
def xla_ensemble():
    """Two untrained 'tiny' flows, XLA on (as the default flows)."""
    from provabgs_sbi.inference.ensemble import FlowEnsemble
    from provabgs_sbi.inference.flows import ConditionalFlow, FlowConfig

    def member(seed):
        cfg = FlowConfig.preset("tiny", seed=seed, jit_compile=True)
        return ConditionalFlow(cfg, [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0], [1.0])

    return FlowEnsemble([member(0), member(1)])


def test_an_xla_ensemble_evaluates_varying_row_counts_without_retracing(xla_ensemble):
    """Three bucket sizes (256, 320, 704 rows) through two members: six traces of one
    method under per-shape tracing, which TensorFlow reported; now one per member."""
    rng = np.random.default_rng(1)
    with tensorflow_warnings() as out:
        for n in (100, 300, 700, 300):
            theta = rng.uniform(0.1, 0.9, size=(n, 2))
            lp = xla_ensemble.log_prob(theta, rng.uniform(-1, 1, size=(n, 1)))
            assert lp.shape == (n,) and np.all(np.isfinite(lp))
    assert RETRACING not in out.getvalue(), out.getvalue()
    for member in xla_ensemble.members:
        assert member._compiled["log_prob"].experimental_get_tracing_count() == 1


def test_pieces_give_one_shape_per_call_size_class():
    """A call of several chunks pads its last one to the full chunk (one XLA shape whatever
    its remainder); a lone partial chunk is padded to a quarter-octave bucket, never past
    the chunk; without padding every piece keeps its length."""
    from provabgs_sbi.xla_shapes import bucket, pieces

    for n in (16385, 20000, 500_001, 1_000_000):
        got = pieces(n, 16384, pad=True)
        assert {size for *_, size in got} == {16384}
        assert got[0][0] == 0 and got[-1][1] == n
        assert all(b[0] == a[1] for a, b in zip(got, got[1:]))
    for n in (1, 255, 257, 5000, 16000):
        [(start, stop, size)] = pieces(n, 16384, pad=True)
        assert (start, stop) == (0, n) and size == min(bucket(n), 16384) >= n
    assert pieces(10, 4, pad=False) == [(0, 4, 4), (4, 8, 4), (8, 10, 2)]
    assert pieces(10, 4, pad=True) == [(0, 4, 4), (4, 8, 4), (8, 10, 4)]

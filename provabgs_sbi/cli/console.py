"""A quiet console for the command line.

TensorFlow and the libraries under it (absl, XLA, oneDNN, CUDA) write log lines to the
process's standard error: C++ lines such as ``I0000 00:00:17... cpu_feature_guard.cc:227]
This TensorFlow binary is optimized ...``, some of them written while the shared libraries
load, before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``; and Python warnings such as
``tf.function`` retracing. None of them is about the user's data, so the ``provabgs-sbi``
command hides them unless ``--verbose`` is given:

1. ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set) and the ``tensorflow`` and ``absl``
   Python loggers at ERROR, before TensorFlow is imported;
2. file descriptor 2 goes through a pipe whose reader drops lines in the native log
   formats (:data:`NATIVE_LOG_LINE`) and passes every other line on; Python's own
   ``sys.stderr`` (tracebacks, progress bars, warnings) keeps writing to the terminal
   directly, and :mod:`faulthandler` reports a crash there.

Numerical settings (``TF_ENABLE_ONEDNN_OPTS``, XLA flags, devices) are not touched.
"""
from __future__ import annotations

import atexit
import faulthandler
import logging
import os
import re
import sys
import threading

#: Set before TensorFlow is imported, unless the user set them: 3 hides C++ INFO, WARNING
#: and ERROR lines (FATAL ones stay).
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
#: Python loggers raised to ERROR (``tf.function`` retracing warnings come from the first).
QUIET_LOGGERS = ("tensorflow", "absl")
#: A native log line (bytes): absl/glog ``I0000 00:00:1796086786.063536   12409 file.cc:31]``
#: or TensorFlow's ``2026-01-01 12:00:00.000000: I tensorflow/.../file.cc:31]`` at INFO,
#: WARNING or ERROR level (FATAL lines are kept), absl's and glog's notes that logging is
#: not initialised yet, and the second line of TensorFlow's CPU-instructions notice.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [^\s\]]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|WARNING: Logging before InitGoogleLogging\(\) is written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate"
    rb" compiler flags\.)")


def quiet_environment() -> None:
    """Steps 1 of the module docstring: environment variables and Python loggers."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


class NativeStderrFilter:
    """Route file descriptor 2 through a pipe and drop native log lines (step 2).

    Parameters
    ----------
    pattern : re.Pattern of bytes
        Lines (without their newline) that match are dropped.

    Notes
    -----
    :meth:`close` (registered with :mod:`atexit` by :func:`quiet_console`) puts the
    original descriptor back and forwards what is left in the pipe.
    """

    def __init__(self, pattern: re.Pattern = NATIVE_LOG_LINE):
        self.pattern = pattern
        sys.stderr.flush()
        self.original = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        # Python's own writes bypass the filter, so progress bars update at once.
        sys.stderr = open(os.dup(self.original), "w", buffering=1,
                          encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace")
        self._thread = threading.Thread(target=self._pump, name="stderr-filter", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line + b"\n" for line in lines if not self.pattern.match(line)]
            if kept:
                os.write(self.original, b"".join(kept))
        if pending and not self.pattern.match(pending):
            os.write(self.original, pending)
        os.close(self._read)

    def close(self, timeout: float = 2.0) -> None:
        """Restore descriptor 2; the pump sees end of file and forwards the rest."""
        sys.stderr.flush()
        os.dup2(self.original, 2)
        self._thread.join(timeout)


def quiet_console() -> NativeStderrFilter | None:
    """Hide TensorFlow's, absl's, XLA's and CUDA's log lines for the rest of this process.

    Call it before TensorFlow is imported (the command line does, unless ``--verbose``).

    Returns
    -------
    NativeStderrFilter or None
        Already registered to close at exit; None when the process has no usable standard
        error (then only step 1 applies).
    """
    quiet_environment()
    if sys.stderr is None:
        return None
    try:
        stderr_filter = NativeStderrFilter()
    except OSError:                        # descriptor 2 closed
        return None
    faulthandler.enable(file=sys.stderr)
    atexit.register(stderr_filter.close)
    return stderr_filter

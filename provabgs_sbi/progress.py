"""Progress bars that draw their final state once.

A plain ``tqdm`` bar draws its last state twice when it reaches its total: once by the
``update`` (or the loop step) that reaches it and again by ``close()``, which redraws the
bar with the overall rate before its newline. On a terminal the second draw overwrites the
first, but a log file or a pipe keeps both ``100%`` lines. :func:`progress_bar` returns a
``tqdm.auto`` bar that leaves the completed state to ``close()`` alone, so every bar of the
package ends with one ``100%`` line; a bar closed before its total (an error, an
interruption) still shows its last state, drawn by ``close()`` as before.

``tqdm.auto`` (which picks the notebook widget in Jupyter) is imported on the first bar,
not with this module: it costs about 0.1 s (it imports ``asyncio``).
"""
from __future__ import annotations

import functools

__all__ = ["progress_bar"]


@functools.lru_cache(maxsize=None)
def _bar_class() -> type:
    """The ``tqdm.auto.tqdm`` subclass whose ``display`` skips a completed state until
    ``close()``."""
    from tqdm.auto import tqdm

    class OnceAtTotal(tqdm):
        """``tqdm.auto.tqdm`` that draws the state at (or past) its total only when closed."""

        _closing = False

        def display(self, *args, **kwargs):
            if (not self._closing and self.total is not None
                    and self.n >= self.total):
                return False        # close() draws it (tqdm ignores the result elsewhere)
            return super().display(*args, **kwargs)

        def close(self):
            self._closing = True
            try:
                super().close()
            finally:
                self._closing = False

    return OnceAtTotal


def progress_bar(iterable=None, *, total=None, desc=None, unit="it", initial=0,
                 disable=False, **kwargs):
    """A ``tqdm.auto`` progress bar whose final state is drawn once, by ``close()``.

    Use it as ``tqdm``: call ``update`` and ``close`` on it, use it as a context manager
    (``with progress_bar(total=n) as bar``), or iterate over it (``for item in
    progress_bar(items)``; the loop closes it).

    Parameters
    ----------
    iterable : iterable, optional
        Items to iterate over; ``total`` defaults to its length when it has one.
    total : int or float, optional
        Number of expected steps. Without it (and without a sized ``iterable``) the bar
        shows counts only, and every state is drawn as ``tqdm`` would.
    desc : str, optional
        Label before the bar.
    unit : str, default "it"
        Name of one step.
    initial : int or float, default 0
        Steps already done (a resumed job): the bar starts there.
    disable : bool, default False
        Draw nothing (the bar still counts).
    **kwargs
        Passed to ``tqdm.auto.tqdm`` (``leave``, ``position``, ``file``, ...).

    Returns
    -------
    tqdm.auto.tqdm
        The bar (an instance of a ``tqdm.auto.tqdm`` subclass).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with progress_bar(total=3, desc="demo", file=out) as bar:
    ...     for _ in range(3):
    ...         bar.update(1)
    >>> out.getvalue().count("100%")
    1
    """
    return _bar_class()(iterable, total=total, desc=desc, unit=unit, initial=initial,
                        disable=disable, **kwargs)

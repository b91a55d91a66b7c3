"""matplotlib for the figures, which are written as PNG files."""
from __future__ import annotations

import sys


def pyplot():
    """``matplotlib.pyplot``, imported on first use so that importing a figure module costs
    nothing.

    Outside a Jupyter kernel the non-interactive Agg backend is selected (the figures are
    only saved, and no window should open from a command-line job); inside one the
    notebook's own backend is left alone, so figures still show inline.
    """
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

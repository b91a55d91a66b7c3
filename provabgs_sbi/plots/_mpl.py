"""matplotlib for the figures: pyplot on the non-interactive Agg backend (PNG files only)."""
from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend selected (imported on first use, so that
    importing a figure module costs nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

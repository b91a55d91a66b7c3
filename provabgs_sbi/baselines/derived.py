"""Derived properties of posterior samples (surviving mass, SFRs, mass-weighted Z, ...)."""
from __future__ import annotations

import numpy as np

#: Rows per call of ``derived`` (bounds memory for 10^5+ samples).
_DERIVED_CHUNK = 20000


def derived_source(model, derived_model=None):
    """What computes the derived properties of a model's samples.

    Parameters
    ----------
    model : object
        The sampled model.
    derived_model : object, optional
        Has ``derived(theta, z)``; used when given.

    Returns
    -------
    object or None
        ``derived_model``; else ``model`` if it has ``derived``; else ``model.burst_model``
        (the emulator's SEDModel) if that has it; else None.

    Raises
    ------
    ValueError
        ``derived_model`` has no ``derived`` method.
    """
    if derived_model is not None:
        if not callable(getattr(derived_model, "derived", None)):
            raise ValueError("derived_model must have a derived(theta, z) method (e.g. a SEDModel)")
        return derived_model
    if callable(getattr(model, "derived", None)):
        return model
    burst = getattr(model, "burst_model", None)           # the Emulator's SSP model
    if burst is not None and callable(getattr(burst, "derived", None)):
        return burst
    return None


def derived_properties(source, samples, z) -> dict:
    """``source.derived`` of physical samples at one redshift, in chunks that bound memory.

    Parameters
    ----------
    source : object
        Has ``derived(theta (N, 12), z (N,)) -> dict of (N,)``.
    samples : ndarray of shape (n, 12)
    z : float

    Returns
    -------
    dict of ndarray of shape (n,)
    """
    parts: dict[str, list] = {}
    for s in range(0, len(samples), _DERIVED_CHUNK):
        chunk = samples[s:s + _DERIVED_CHUNK]
        for k, v in source.derived(chunk, np.full(len(chunk), z)).items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


__all__ = ["derived_properties", "derived_source"]

"""Continuing a trained emulator's network, optionally with a pixel-weighted loss.

A network trained on the mean squared ln L over all pixels spends its capacity where most
pixels are: its largest errors sit in a few pixels where the spectrum changes fastest
with the parameters (the cores of strong stellar absorption lines, Ca II K at 3933 A and
Mg II at 2800 A; ``benchmarks/emulator_pixel_errors.py``), several times the median
pixel's. Weighting those pixels more in the loss trades a little accuracy elsewhere for a
flatter error across the spectrum, which is what the accuracy goal (the worst pixel's
99th percentile) asks for.

The weights are measured, not chosen by hand: the starting network's 99th percentile
|d ln L| per pixel on the validation spectra, e_j, gives

    w_j = clip((e_j / median_j e_j) ** power, 1, w_max),   normalised to mean 1,

so ``power = 2`` would make every pixel's contribution to the loss equal at the start
(up to ``w_max``). The fine-tuned network keeps the starting one's PCA basis and
standardisations, so only the network weights change.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from provabgs_sbi.emulator.core import Emulator
from provabgs_sbi.emulator.inputs import extend_warped_inputs
from provabgs_sbi.emulator.network import SpeculatorNetwork

__all__ = ["load_start", "pixel_error_weights", "pixel_errors", "start_pixel_weights"]

#: EmulatorConfig fields the starting emulator must share with the continued one.
SHARED_FIELDS = ("sps", "wave_min", "wave_max", "resolution", "n_pca", "hidden", "input_mode",
                 "exact_lines")


def load_start(config) -> tuple[SpeculatorNetwork, str]:
    """The network of ``config.init_from`` and its manifest's SHA-256.

    Raises
    ------
    ValueError
        If that emulator has more than one network bin or differs from ``config`` in any
        of :data:`SHARED_FIELDS`.
    """
    emu = Emulator.load(Path(config.init_from))
    if len(emu.networks) != 1:
        raise ValueError(f"{config.init_from}: can only continue a one-bin emulator, this one "
                         f"has {len(emu.networks)}")
    # manifests leave out exact_lines when it is False (EmulatorConfig.to_dict)
    theirs = {"exact_lines": False, **emu.info.get("config", {})}
    ours = {"exact_lines": False, **config.to_dict()}
    differ = [k for k in SHARED_FIELDS if theirs.get(k) != ours.get(k)]
    if differ:
        raise ValueError(f"{config.init_from} was trained with other "
                         + ", ".join(f"{k} ({theirs.get(k)!r}, here {ours.get(k)!r})"
                                     for k in differ))
    return emu.networks[0], emu.manifest_sha256


def pixel_errors(net: SpeculatorNetwork, spectra_path, input_mode: str, q: float = 99.0,
                 chunk: int = 5000) -> np.ndarray:
    """The ``q``-th percentile over rows of |network ln L - ln L| per pixel, shape (n_wave,).

    Parameters
    ----------
    net : SpeculatorNetwork
    spectra_path : path-like
        Training-spectra file (:func:`~provabgs_sbi.emulator.trainset.make_training_spectra`).
    input_mode : str
        The network's input convention (the file holds the ``"warped"`` inputs).
    """
    with h5py.File(spectra_path, "r") as fh:
        x = extend_warped_inputs(fh["inputs"][:], input_mode)
        d = fh["ln_lum"]
        err = np.empty(d.shape, dtype=np.float32)
        for s in range(0, d.shape[0], chunk):
            err[s:s + chunk] = np.abs(net.ln_spectrum(x[s:s + chunk]) - d[s:s + chunk])
    return np.percentile(err, q, axis=0)


def pixel_error_weights(errors, power: float, w_max: float, where=None) -> np.ndarray:
    """Loss weights per pixel from the errors ``errors`` (n_wave,), mean 1.

    ``clip((errors / median(errors)) ** power, 1, w_max)`` normalised to mean 1; all ones
    for ``power = 0``. ``where`` (boolean, n_wave) limits the weighting to those pixels
    (the others keep weight 1 before the normalisation), e.g. the wavelengths an accuracy
    goal is set on; the median is the whole spectrum's.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 1 or not np.all(np.isfinite(errors)) or np.any(errors < 0):
        raise ValueError("errors must be a finite, non-negative 1-d array")
    if power < 0 or w_max < 1:
        raise ValueError(f"need power >= 0 and w_max >= 1, got {power}, {w_max}")
    med = np.median(errors)
    if med <= 0:
        raise ValueError("the median pixel error is zero: nothing to weight against")
    w = np.clip((errors / med) ** power, 1.0, w_max)
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if where.shape != errors.shape:
            raise ValueError("where must have the shape of errors")
        w[~where] = 1.0
    return w / w.mean()


def start_pixel_weights(config, start: SpeculatorNetwork, val_path, wave) -> tuple[np.ndarray, str]:
    """The loss weights (n_wave,) of ``config`` (an ``EmulatorConfig`` with
    ``pixel_weight_power > 0``) from the starting network's errors on ``val_path``, and a
    one-line summary for the training log. ``wave`` is the emulator grid (Angstrom)."""
    errors = pixel_errors(start, val_path, config.input_mode)
    where = None
    if config.pixel_weight_wave is not None:
        lo, hi = config.pixel_weight_wave
        where = (wave >= lo) & (wave <= hi)
    weights = pixel_error_weights(errors, config.pixel_weight_power, config.pixel_weight_max,
                                  where)
    worst = int(np.argmax(errors if where is None else np.where(where, errors, -1.0)))
    summary = (f"pixel weights from the starting network's p99 |d ln L| (median "
               f"{np.median(errors):.2e}, worst weighted pixel {errors[worst]:.2e} at "
               f"{wave[worst]:.0f} A): {int(np.sum(weights > weights.min() * 1.0001))} pixels "
               f"weighted above the rest, largest/smallest {weights.max() / weights.min():.1f}")
    return weights, summary

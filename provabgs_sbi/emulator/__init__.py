"""Speculator-style neural emulator of the SED model (PCA + MLP), trained once per SPS
configuration; see :class:`Emulator`."""
from .core import INPUT_NAMES, Emulator, nmf_inputs
from .network import SpeculatorNetwork

__all__ = ["Emulator", "INPUT_NAMES", "SpeculatorNetwork", "nmf_inputs"]

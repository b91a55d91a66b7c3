"""Speculator-style neural emulator of the SED model (PCA + MLP), trained once per SPS
configuration; see :class:`Emulator`."""
from provabgs_sbi.emulator.core import Emulator
from provabgs_sbi.emulator.inputs import INPUT_NAMES, nmf_inputs
from provabgs_sbi.emulator.network import SpeculatorNetwork

__all__ = ["Emulator", "INPUT_NAMES", "SpeculatorNetwork", "nmf_inputs"]

"""Figures: SEDs, emulator errors, calibration diagnostics and SEDflow's paper figures.
"""

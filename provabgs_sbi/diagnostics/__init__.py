"""Calibration and agreement statistics: SBC, p-p curves, coverage, TARP, two-sample
tests.
"""

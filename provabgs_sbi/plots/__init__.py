"""Figures (matplotlib, Agg backend, PNG files), one module per kind of figure.

:mod:`~provabgs_sbi.plots.sed` (a galaxy's spectrum and photometry),
:mod:`~provabgs_sbi.plots.catalog` (a fitted catalog's posterior medians),
:mod:`~provabgs_sbi.plots.emulator` (emulator errors), :mod:`~provabgs_sbi.plots.validation`
(p-p, SBC, TARP, median offsets), :mod:`~provabgs_sbi.plots.noise` (the noise model) and
:mod:`~provabgs_sbi.plots.paper` (SEDflow's figures 1 and 2). They draw numbers computed
elsewhere; matplotlib is imported on first use (:mod:`~provabgs_sbi.plots._mpl`).
"""

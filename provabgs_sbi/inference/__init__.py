"""Amortized inference: the conditional flows, their mixtures, training sets, the noise
model, the :class:`~provabgs_sbi.inference.posterior.Posterior` and its posterior
predictive check.
"""

"""Reference posteriors to check the amortized one against: zeus MCMC and importance
sampling of the flow's draws, sharing one likelihood.
"""

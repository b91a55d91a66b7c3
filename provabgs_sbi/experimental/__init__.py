"""Methods kept for study that no shipped artifact or default workflow uses. Measured and
documented as not helping (see the docs' MCMC page); their API may change or go.
"""

"""The jobs a user runs: train a posterior, fit a catalog, validate, compare with MCMC and
the main job. Each composes the lower layers; the CLI calls them.
"""

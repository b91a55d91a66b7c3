"""The package version, in a module of its own so that low modules can record it without
importing the package face (which imports everything)."""
__version__ = "0.1.0"

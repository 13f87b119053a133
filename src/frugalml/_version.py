"""The package version, read by setuptools and reported in every run's environment."""

__version__ = "0.1.0"

"""Datasets: the `Dataset` type, built-in zoo datasets, and loading from files."""

from frugalml.datasets._dataset import Dataset
from frugalml.datasets._load import load_dataset
from frugalml.datasets._zoo import STDLIB_FAMILIES, ZOO_DATASETS

__all__ = ["STDLIB_FAMILIES", "ZOO_DATASETS", "Dataset", "load_dataset"]

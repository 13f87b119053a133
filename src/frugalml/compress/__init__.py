"""Compression: one config dataclass and one registered handler per technique, composed by a Recipe.

    >>> from frugalml.compress import compress, Recipe, DropLayers, Distill, QuantizeDynamic
    >>> small = compress("zoo:minilm", Recipe([DropLayers(keep=3), Distill(epochs=1), QuantizeDynamic()]))
    >>> save_model(small, "out/minilm-small")
"""

from frugalml.compress._api import CompressResult, compress, compress_to_dir, measure_fidelity
from frugalml.compress._base import CONFIG_TYPES, StepRecord, TechniqueConfig, register_handler
from frugalml.compress.artifact import load_artifact, read_key_file, save_model
from frugalml.compress.distill import Distill
from frugalml.compress.gpu import QuantizeWeights, Sparsify24
from frugalml.compress.lowrank import LowRank
from frugalml.compress.prune import DropLayers, PruneMagnitude, PruneStructured
from frugalml.compress.quantize import CastPrecision, QuantizeDynamic, QuantizeStatic
from frugalml.compress.recipe import Recipe
from frugalml.compress.runtime import ExportOnnx

__all__ = [
    "compress", "compress_to_dir", "CompressResult", "measure_fidelity", "Recipe", "save_model", "load_artifact", "read_key_file",
    "QuantizeDynamic", "QuantizeStatic", "CastPrecision", "PruneMagnitude", "PruneStructured", "DropLayers",
    "Distill", "LowRank", "ExportOnnx", "QuantizeWeights", "Sparsify24", "TechniqueConfig", "StepRecord", "register_handler", "CONFIG_TYPES",
]

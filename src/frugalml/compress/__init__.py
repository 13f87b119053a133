"""Compression: one config dataclass and one registered handler per technique, composed by a Recipe.

    >>> from frugalml.compress import compress, save_model, Recipe, DropLayers, Distill, QuantizeDynamic
    >>> small = compress("zoo:minilm", Recipe([DropLayers(keep=3), Distill(epochs=1), QuantizeDynamic()]))
    >>> save_model(small, "out/minilm-small")
"""

from frugalml.compress._api import (
    CompressResult,
    compress,
    compress_headline,
    compress_to_dir,
    measure_fidelity,
)
from frugalml.compress._base import (
    CONFIG_TYPES,
    StepRecord,
    TechniqueConfig,
    register_handler,
)
from frugalml.compress.artifact import load_artifact, read_key_file, save_model
from frugalml.compress.distill import Distill
from frugalml.compress.gpu import QuantizeWeights, Sparsify24
from frugalml.compress.lowrank import LowRank
from frugalml.compress.prune import DropLayers, PruneMagnitude, PruneStructured
from frugalml.compress.quantize import CastPrecision, QuantizeDynamic, QuantizeStatic
from frugalml.compress.recipe import Recipe
from frugalml.compress.runtime import Compile, ExportOnnx

__all__ = [
    "CONFIG_TYPES",
    "CastPrecision",
    "CompressResult",
    "Distill",
    "DropLayers",
    "ExportOnnx",
    "Compile",
    "LowRank",
    "PruneMagnitude",
    "PruneStructured",
    "QuantizeDynamic",
    "QuantizeStatic",
    "QuantizeWeights",
    "Recipe",
    "Sparsify24",
    "StepRecord",
    "TechniqueConfig",
    "compress",
    "compress_headline",
    "compress_to_dir",
    "load_artifact",
    "measure_fidelity",
    "read_key_file",
    "register_handler",
    "save_model",
]

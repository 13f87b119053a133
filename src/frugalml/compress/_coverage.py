"""What a technique leaves as it was: layers holding weights that it does not cover.

Each technique works on some kinds of layers (dynamic INT8 on matrix products, low-rank on Linear
layers, ...). The layers with weights outside that set are listed in the step's record, with the
reason, so that a model that comes out larger or slower than expected says where its weights went
instead of leaving them out silently. A PyTorch layer "holds weights" when it has a parameter of two or
more dimensions of its own (biases and norm scales are vectors); an ONNX node when it reads a float
initializer of two or more dimensions directly, not through a DequantizeLinear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from frugalml.compress._base import StepRecord

__all__ = ["float_weights", "list_uncovered_layers", "list_uncovered_nodes"]


def _kind(sub: nn.Module) -> str:
    if isinstance(sub, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding lookup"
    if isinstance(sub, nn.modules.conv._ConvNd):
        return "convolution"
    return type(sub).__name__


def list_uncovered_layers(record: StepRecord, module: nn.Module, covered: tuple[type[nn.Module], ...],
                          scope: str, *, hints: dict[str, str] | None = None) -> None:
    """Record each layer of ``module`` with weights that is none of ``covered``; ``scope`` says what
    the technique covers ("dynamic INT8 covers Linear layers only"), ``hints`` adds advice per kind
    of layer ("convolution", "embedding lookup" or the class name)."""
    listed = {s["layer"] for s in record.skipped}
    for name, sub in module.named_modules():
        name = name or "(model)"
        if isinstance(sub, covered) or name in listed:
            continue
        if any(p.dim() >= 2 for p in sub.parameters(recurse=False)):
            hint = (hints or {}).get(_kind(sub))
            record.skip(name, f"{_kind(sub)}: {scope}" + (f" ({hint})" if hint else ""))


def float_weights(model: Any) -> set[str]:
    """Names of the float initializers of two or more dimensions of an ONNX model: its weight matrices."""
    import onnx

    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)
    return {i.name for i in model.graph.initializer if i.data_type in floats and len(i.dims) >= 2}


def list_uncovered_nodes(record: StepRecord, path: Path, scope: str, *, hints: dict[str, str] | None = None) -> None:
    """Record each node of the ONNX model at ``path`` that still reads float weights directly;
    ``hints`` adds advice per operator type ("Conv": "quantize_static covers convolutions")."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = float_weights(model)
    listed = {s["layer"] for s in record.skipped}
    for index, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if name in listed or node.op_type == "DequantizeLinear" or not any(i in weights for i in node.input):
            continue
        kind = "embedding lookup (Gather)" if node.op_type == "Gather" else node.op_type
        hint = (hints or {}).get(node.op_type)
        record.skip(name, f"{kind}: {scope}" + (f" ({hint})" if hint else ""))

"""Runtime optimization: export to ONNX and optimize the graph for ONNX Runtime.

``optimize: transformer`` runs ONNX Runtime's transformer optimizer on BERT-style encoders, which
fuses attention, LayerNorm, GELU and bias-add patterns into single operators; ``graph`` applies
ONNX Runtime's portable (extended) graph optimizations offline to any model; ``none`` only exports.
Length bucketing (sorting texts by length and padding each batch to its longest item) is an
inference option of ``ModelHandle.predict(..., bucket=True)``, not a change to the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_in,
    register_handler,
)
from frugalml.compress.quantize import ensure_onnx, onnx_handle
from frugalml.models import ModelHandle

__all__ = ["ExportOnnx"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ExportOnnx(TechniqueConfig):
    """Export to ONNX and optimize the graph (see the module docstring for ``optimize``)."""

    technique: ClassVar[str] = "export_onnx"
    version: ClassVar[int] = 1
    produces_onnx: ClassVar[bool] = True
    needs_torch: ClassVar[bool] = False
    optimize: str = "auto"

    def __post_init__(self) -> None:
        check_in(self.optimize, "optimize", ("auto", "transformer", "graph", "none"))


def _graph_optimize(src: Path, dst: Path) -> Path:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # EXTENDED, not ALL: ALL adds layout changes specific to this machine's CPU.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def _transformer_optimize(src: Path, dst: Path, handle: ModelHandle) -> Path:
    from onnxruntime.transformers.optimizer import optimize_model

    meta = handle.metadata
    model = optimize_model(str(src), model_type="bert", num_heads=int(meta.get("num_heads") or 0),
                           hidden_size=int(meta.get("hidden_size") or 0), opt_level=1, use_gpu=False)
    model.save_model_to_file(str(dst))
    return dst


@register_handler(ExportOnnx)
def _export(handle: ModelHandle, config: ExportOnnx, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    src = ensure_onnx(handle, ctx, "export")
    mode = config.optimize
    if mode == "auto":
        mode = "transformer" if handle.input_spec.kind == "text" and handle.metadata.get("hidden_size") else "graph"
    if mode == "none":
        out = src
    elif mode == "transformer":
        out = _transformer_optimize(src, Path(ctx.workdir) / "optimized.onnx", handle)
    else:
        out = _graph_optimize(src, Path(ctx.workdir) / "optimized.onnx")
    import onnx

    ops_before = {n.op_type for n in onnx.load(str(src), load_external_data=False).graph.node}
    graph = onnx.load(str(out), load_external_data=False).graph
    fused = sorted({n.op_type for n in graph.node} - ops_before)
    record.changed = [f"graph: {len(graph.node)} nodes"]
    record.structure = {"optimize": mode}
    record.metrics = {"optimize": mode, "fused_ops": fused, "nodes": len(graph.node)}
    return onnx_handle(handle, out, note=f"onnx export, {mode} optimization")

"""Runtime optimization: export to ONNX and optimize the graph for ONNX Runtime.

``optimize: transformer`` runs ONNX Runtime's transformer optimizer on BERT-style encoders, which
fuses attention, LayerNorm, GELU and bias-add patterns into single operators; ``graph`` applies
ONNX Runtime's portable (extended) graph optimizations offline to any model; ``none`` only exports.
Length bucketing (sorting texts by length and padding each batch to its longest item) is an
inference option of ``ModelHandle.predict(..., bucket=True)``, not a change to the model.

``compile`` wraps a PyTorch model in ``torch.compile`` (TorchInductor kernels, fused element-wise
ops). On a GPU, ``mode: reduce-overhead`` also records CUDA graphs, one per input shape: a whole
forward pass becomes one launch, where small batches otherwise pay one CPU-side launch per
kernel. Compiled code is not a file format: an
artifact stores the plain weights and the compile options, and loading compiles again (the first
call after loading, and the first call at each new shape, pays the compile time).
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_in,
    register_handler,
)
from frugalml.compress.quantize import ensure_onnx, onnx_handle
from frugalml.models import ModelHandle

__all__ = ["MODES", "Compile", "ExportOnnx", "apply_compile", "is_compiled", "mark_compiled", "uses_cudagraphs"]

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

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
    # These fusions fold a Gemm, Conv or MatMul and what follows it into one com.microsoft operator
    # (FusedGemm, FusedConv, FusedMatMul) that no quantizer of ONNX Runtime takes, so a quantize step
    # after this one would leave those layers in float. Every session applies them again when it
    # loads the model, so leaving them out of the file costs no speed.
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"], disabled_optimizers=_UNQUANTIZABLE)
    return dst


_UNQUANTIZABLE = ["GemmActivationFusion", "ConvActivationFusion", "ConvAddActivationFusion", "MatMulScaleFusion"]


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


@dataclass(frozen=True, kw_only=True)
class Compile(TechniqueConfig):
    """``torch.compile`` the model (see the module docstring).

    Attributes:
        mode: ``default``, ``reduce-overhead`` (CUDA graphs on GPUs), ``max-autotune`` (searches
            kernel configurations, and CUDA graphs; slow to compile) or ``max-autotune-no-cudagraphs``.
        dynamic: compile for varying batch / sequence sizes up front (``None``: PyTorch decides after
            it sees a second shape).
        backend: ``inductor`` (generated kernels; needs a C++ compiler on CPUs) or ``aot_eager``.
    """

    technique: ClassVar[str] = "compile"
    version: ClassVar[int] = 1
    mode: str = "default"
    dynamic: bool | None = None
    backend: str = "inductor"

    def __post_init__(self) -> None:
        check_in(self.mode, "mode", MODES)
        check_in(self.backend, "backend", ("inductor", "aot_eager"))
        if self.dynamic is not None and not isinstance(self.dynamic, bool):
            from frugalml.errors import InvalidArgumentError

            raise InvalidArgumentError("dynamic", self.dynamic, "must be true, false or null", "Write dynamic: true.")


_RECOMPILE_LIMIT = 256


def apply_compile(module: Any, options: dict[str, Any]) -> Any:
    import torch

    mode = options.get("mode", "default")
    backend = options.get("backend", "inductor")
    # Dynamo keeps at most ``recompile_limit`` (default 8) compiled versions per Python function
    # and then runs it eagerly, without an error. Every model of one class shares its forward's
    # code object, and each model instance and input shape is a version: a search that compiles a
    # dozen candidates, each measured at several shapes, would time most of them uncompiled.
    dynamo = torch._dynamo.config
    dynamo.recompile_limit = max(dynamo.recompile_limit, _RECOMPILE_LIMIT)
    dynamo.accumulated_recompile_limit = max(dynamo.accumulated_recompile_limit, 4 * _RECOMPILE_LIMIT)
    compiled = torch.compile(module, mode=mode, dynamic=options.get("dynamic"), backend=backend)
    # Read by the runner: CUDA-graph outputs live in a pool the next replay overwrites, so every
    # call must begin a new step (see TorchRunner.__call__). Kept beside the module, not on it: the
    # compiled wrapper forwards attribute writes to the plain module it wraps.
    _CUDAGRAPHS[compiled] = backend == "inductor" and mode in ("reduce-overhead", "max-autotune")
    return compiled


_CUDAGRAPHS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def mark_compiled(module: Any, *, cudagraphs: bool = False) -> Any:
    """Record ``module`` as compiled by frugalml (a wrapper that compiles inside, such as
    ``quantize_dynamic backend: inductor``), so servers warm up its shapes before taking traffic."""
    _CUDAGRAPHS[module] = cudagraphs
    return module


def is_compiled(module: Any) -> bool:
    """Whether ``module`` came from :func:`apply_compile` (a ``compile`` step, or its replay on load)."""
    try:
        return module in _CUDAGRAPHS
    except TypeError:  # not weak-referenceable: not one of ours
        return False


def uses_cudagraphs(module: Any) -> bool:
    """Whether ``module`` was compiled by :func:`apply_compile` in a mode that records CUDA graphs."""
    return is_compiled(module) and _CUDAGRAPHS[module]


@register_handler(Compile)
def _compile(handle: ModelHandle, config: Compile, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    import torch

    from frugalml.compress.quantize import _with_module
    from frugalml.errors import InvalidArgumentError

    plain = getattr(handle.module, "_orig_mod", handle.module)
    options = {"mode": config.mode, "dynamic": config.dynamic, "backend": config.backend}
    compiled = apply_compile(plain, options)
    new = _with_module(handle, compiled)
    sample = ctx.calibration[:2] if ctx.calibration is not None else handle.example_inputs[:2]
    ctx.progress(f"torch.compile ({config.backend}, {config.mode}): compiling")
    started = time.perf_counter()
    try:
        # Compile now, not at the user's first call: failures (no C++ compiler, an untraceable op)
        # belong to the compress step that asked for it.
        new.predict(sample, batch_size=2, seq_len=ctx.seq_len if handle.input_spec.kind == "text" else None,
                    device=ctx.device)
    except Exception as exc:  # noqa: BLE001 - dynamo and inductor fail in many ways
        torch._dynamo.reset()
        raise InvalidArgumentError("compile", config.backend, f"torch.compile failed ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:200]})",
                                   "Use backend: aot_eager, or export_onnx instead.") from None
    record.changed = ["module"]
    record.structure = {"compile": options}
    record.metrics = {"compile_s": time.perf_counter() - started, "device": ctx.device,
                      "note": "compiled code is rebuilt when the artifact is loaded; the first call compiles"}
    return new

"""torchao weight quantization (INT8 weight-only, INT8 dynamic, INT4 weight-only, FP8) and 2:4
semi-structured sparsity (PyTorch's sparse semi-structured tensors, Ampere and newer).

They run where ``compress(..., device=)`` says: INT8 weight-only and INT8 dynamic on the CPU or a
GPU; INT4, FP8 and 2:4 only on a CUDA GPU (elsewhere they are an error that says so, never a silent
no-op). Layers whose shapes the kernels cannot take (dimensions not multiples of the kernel's tile)
are skipped and listed. The results hold tensor subclasses rather than plain weights, so an artifact
stores the float weights from before the step and replays it on load (:func:`replay_gpu_step`):
quantization and 2:4 compression are deterministic functions of those weights.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_in,
    check_int,
    check_names,
    handler_for,
    register_handler,
)
from frugalml.compress._int8 import wide_sums
from frugalml.compress.quantize import _with_module
from frugalml.errors import InvalidArgumentError, MeasurementError
from frugalml.models import ModelHandle

__all__ = ["REPLAYED_TECHNIQUES", "QuantizeWeights", "Sparsify24", "mask_24", "replay_gpu_step"]


log = logging.getLogger(__name__)

_CUDA_ONLY = {"int4", "fp8"}
# Techniques whose results hold tensor subclasses: artifacts store the floats before them and replay them.
REPLAYED_TECHNIQUES = ("quantize_weights", "sparsify_24")


def _require_cuda(technique: str, device: str) -> None:
    if device != "cuda":
        raise MeasurementError("technique", technique, "needs a CUDA GPU (device cuda)",
                               "Compress with --device cuda (device='cuda') on a machine with an NVIDIA GPU, "
                               "or use quantize_weights dtype int8 / quantize_dynamic on the CPU.")
    if not torch.cuda.is_available():
        raise MeasurementError("technique", technique, "needs a CUDA GPU and none is visible",
                               "Run it on a machine with an NVIDIA GPU, or use quantize_dynamic on the CPU.")


@dataclass(frozen=True, kw_only=True)
class QuantizeWeights(TechniqueConfig):
    """torchao quantization of Linear layers.

    Attributes:
        dtype: ``int8`` (INT8 weights, float activations), ``int8_dynamic`` (INT8 weights and
            activations quantized per token at run time: INT8 tensor-core matmuls), ``int4`` (INT4
            weights in groups; CUDA), ``fp8`` (dynamic FP8 activations and weights; CUDA, Hopper / Ada).
        group_size: INT4 group size.
        exclude: layer names left alone.
    """

    technique: ClassVar[str] = "quantize_weights"
    version: ClassVar[int] = 1
    dtype: str = "int8"
    group_size: int = 128
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_in(self.dtype, "dtype", ("int8", "int8_dynamic", "int4", "fp8"))
        if self.group_size not in (32, 64, 128, 256):
            raise InvalidArgumentError("group_size", self.group_size, "must be 32, 64, 128 or 256", "Use 128.")
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


@dataclass(frozen=True, kw_only=True)
class Sparsify24(TechniqueConfig):
    """2:4 semi-structured sparsity: in every group of 4 consecutive weights of a row the 2 smallest
    become zero, and the weight is stored in the compressed format sparse tensor cores read.

    Attributes:
        recover_epochs: distillation epochs from the original with the 2:4 pattern fixed (the zeros
            stay zero while the other weights adapt), before compressing (0: none).
        recover_items: training items for that recovery (0: all).
        exclude: layer names left dense.
    """

    technique: ClassVar[str] = "sparsify_24"
    version: ClassVar[int] = 1
    recover_epochs: int = 0
    recover_items: int = 0
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_int(self.recover_epochs, "recover_epochs", minimum=0)
        check_int(self.recover_items, "recover_items", minimum=0)
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


def _linears(module: nn.Module, exclude: tuple[str, ...], record: StepRecord) -> list[str]:
    names = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            if any(e == name or e in name for e in exclude):
                record.skip(name, "excluded by the recipe")
            else:
                names.append(name)
    return names


def _torchao_config(dtype: str, group_size: int) -> Any:
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int4WeightOnlyConfig,
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
        )
    except ImportError as exc:
        raise MeasurementError("technique", "quantize_weights", f"torchao is not usable here ({exc})",
                               "Run: pip install torchao (matching your torch version).") from None
    return {"int8": Int8WeightOnlyConfig, "int8_dynamic": Int8DynamicActivationInt8WeightConfig,
            "int4": lambda: Int4WeightOnlyConfig(group_size=group_size),
            "fp8": Float8DynamicActivationFloat8WeightConfig}[dtype]()


def _quantize_module(module: nn.Module, dtype: str, names: set[str], group_size: int, device: str) -> nn.Module:
    """torchao-quantize the Linear layers ``names`` of a copy of ``module`` on ``device``."""
    from torchao.quantization import quantize_

    module = copy.deepcopy(module).to(device)
    if dtype in ("int4", "fp8"):
        module = module.to(torch.bfloat16)  # the INT4 and FP8 kernels take bf16 activations
    quantize_(module, _torchao_config(dtype, group_size),
              filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in names)
    return module


def mask_24(weight: torch.Tensor) -> torch.Tensor:
    """The 2:4 keep-mask of a 2-D weight (rows x cols, cols a multiple of 4): in every group of 4
    consecutive weights of a row, True for the 2 of largest magnitude."""
    groups = weight.detach().abs().reshape(-1, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.topk(2, dim=1).indices, True)
    return keep.reshape(weight.shape)


def _compress_24(module: nn.Module, names: list[str]) -> nn.Module:
    """A copy of ``module`` on the GPU whose layers ``names`` (already 2:4-sparse) hold compressed
    semi-structured weights."""
    from torch.sparse import to_sparse_semi_structured

    module = copy.deepcopy(module).cuda()
    if not any(p.dtype in (torch.float16, torch.bfloat16) for p in module.parameters()):
        module = module.to(torch.float16)  # sparse tensor cores take fp16 / bf16 / int8
    for name in names:
        sub = module.get_submodule(name)
        sub.weight = nn.Parameter(to_sparse_semi_structured(sub.weight.detach()), requires_grad=False)
    return module


def replay_gpu_step(module: nn.Module, structure: dict[str, Any]) -> nn.Module:
    """Re-apply a saved quantize_weights / sparsify_24 step (its record's ``structure``) to the float
    weights stored before it: how an artifact is loaded."""
    if "sparse_24" in structure:
        _require_cuda("sparsify_24", "cuda")
        return _compress_24(module, list(structure["sparse_24"]))
    dtype = structure["dtype"]
    device = structure.get("device", "cuda")
    if dtype in _CUDA_ONLY or device == "cuda":
        if not torch.cuda.is_available():
            raise MeasurementError("model", f"quantize_weights {dtype}", "was quantized on a CUDA GPU and loads only "
                                   "on one; none is visible", "Load it on a machine with an NVIDIA GPU.")
    return _quantize_module(module, dtype, set(structure["quantized"]), int(structure.get("group_size", 128)), device)


@register_handler(QuantizeWeights)
def _quantize_weights(handle: ModelHandle, config: QuantizeWeights, ctx: CompressContext,
                      record: StepRecord) -> ModelHandle:
    if config.dtype in _CUDA_ONLY:
        _require_cuda(f"quantize_weights {config.dtype}", ctx.device)
    names = _linears(handle.module, config.exclude, record)
    chosen = set()
    for name in names:
        sub = handle.module.get_submodule(name)
        # INT4 packs groups along the input dimension; FP8 and INT8 matmuls want 16-aligned shapes.
        tile = {"int8": 1, "int8_dynamic": 16, "int4": config.group_size, "fp8": 16}[config.dtype]
        if sub.in_features % tile or (config.dtype != "int8" and sub.out_features % 16):
            record.skip(name, f"shape {sub.out_features}x{sub.in_features} does not fit the {config.dtype} kernel")
        else:
            chosen.add(name)
    if not chosen:
        raise InvalidArgumentError("exclude", list(config.exclude), f"leaves no Linear layer that the {config.dtype} "
                                   "kernel takes", "Exclude fewer layers, or use another dtype.")
    module = _quantize_module(handle.module, config.dtype, chosen, config.group_size, ctx.device)
    record.changed = sorted(chosen)
    record.structure = {"dtype": config.dtype, "quantized": sorted(chosen), "group_size": config.group_size,
                        "device": ctx.device}
    if config.dtype == "int8_dynamic" and ctx.device == "cpu" and not wide_sums("inductor"):
        # Measured, not guessed: without VNNI its CPU INT8 matmuls were 20x slower than FP32.
        record.metrics["note"] = ("torchao's INT8 matmuls on a CPU without VNNI ran zoo:minilm at 0.05x the speed "
                                  "of FP32 (benchmarks/results/compress_minilm_cpu_2026-11-30_avx2.json); "
                                  "quantize_dynamic is the fast INT8 on such CPUs")
        log.warning("quantize_weights int8_dynamic: %s", record.metrics["note"])
    return _with_module(handle, module)


@register_handler(Sparsify24)
def _sparsify(handle: ModelHandle, config: Sparsify24, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    _require_cuda(config.technique, ctx.device)
    dense = copy.deepcopy(handle.module)
    sparse: list[str] = []
    for name in _linears(dense, config.exclude, record):
        sub = dense.get_submodule(name)
        rows, cols = sub.weight.shape
        if rows % 64 or cols % 64:
            record.skip(name, f"shape {rows}x{cols}: semi-structured kernels need multiples of 64")
            continue
        with torch.no_grad():
            sub.weight.mul_(mask_24(sub.weight).to(sub.weight.dtype))
        sparse.append(name)
    if not sparse:
        raise InvalidArgumentError("exclude", list(config.exclude), "leaves no Linear layer with both dimensions a "
                                   "multiple of 64", "Exclude fewer layers.")
    if config.recover_epochs:
        from frugalml.compress.distill import Distill

        ctx.progress(f"sparsify_24: recovering quality with the 2:4 pattern fixed ({config.recover_epochs} epochs)")
        recover = Distill(epochs=config.recover_epochs, max_items=config.recover_items, keep_zeros=True)
        sub_record = StepRecord(technique="distill", config=recover.to_dict())
        dtype = next((p.dtype for p in dense.parameters() if p.is_floating_point()), torch.float32)
        # Distillation trains in fp32; the recovered weights go back to the precision chosen before.
        dense = handler_for(recover)(_with_module(handle, dense), recover, ctx, sub_record).module.to(dtype)
        record.metrics = {"recovery": sub_record.metrics}
    module = _compress_24(dense, sorted(sparse))
    record.changed = sorted(sparse)
    record.structure = {"sparse_24": sorted(sparse)}
    new = _with_module(handle, module)
    new.metadata["_float_module"] = dense  # the masked (and recovered) dense weights: what an artifact stores
    return new

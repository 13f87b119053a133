"""GPU techniques: weight-only INT8 / INT4 and FP8 quantization (torchao), and 2:4 semi-structured
sparsity (PyTorch's sparse semi-structured tensors, Ampere and newer).

These need a CUDA GPU: on a machine without one they are an error that says so, never a silent
no-op. Layers whose shapes the kernels cannot take (dimensions not multiples of the kernel's tile)
are skipped and listed. Results are in-memory PyTorch models; they are measured with
``frugal profile --device cuda`` and saved by exporting their float source (see artifact.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_in,
    check_names,
    register_handler,
)
from frugalml.compress.quantize import _with_module
from frugalml.errors import InvalidArgumentError, MeasurementError
from frugalml.models import ModelHandle

__all__ = ["QuantizeWeights", "Sparsify24"]


def _require_cuda(technique: str) -> None:
    if not torch.cuda.is_available():
        raise MeasurementError("technique", technique, "needs a CUDA GPU and none is visible",
                               "Run it on a machine with an NVIDIA GPU, or use quantize_dynamic on the CPU.")


@dataclass(frozen=True, kw_only=True)
class QuantizeWeights(TechniqueConfig):
    """torchao quantization of Linear layers on CUDA.

    Attributes:
        dtype: ``int8`` (weight-only), ``int4`` (weight-only, grouped), ``fp8`` (dynamic FP8
            activations and weights; Hopper / Ada GPUs).
        group_size: INT4 group size.
        exclude: layer names left alone.
    """

    technique: ClassVar[str] = "quantize_weights"
    version: ClassVar[int] = 1
    dtype: str = "int8"
    group_size: int = 128
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_in(self.dtype, "dtype", ("int8", "int4", "fp8"))
        if self.group_size not in (32, 64, 128, 256):
            raise InvalidArgumentError("group_size", self.group_size, "must be 32, 64, 128 or 256", "Use 128.")
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


@dataclass(frozen=True, kw_only=True)
class Sparsify24(TechniqueConfig):
    """2:4 semi-structured sparsity: in every group of 4 weights the 2 smallest become zero, and the
    weight is stored in the compressed format sparse tensor cores read. Loses quality that
    ``distill`` (placed before it, on a magnitude-pruned model) can recover."""

    technique: ClassVar[str] = "sparsify_24"
    version: ClassVar[int] = 1
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
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


@register_handler(QuantizeWeights)
def _quantize_weights(handle: ModelHandle, config: QuantizeWeights, ctx: CompressContext,
                      record: StepRecord) -> ModelHandle:
    _require_cuda(config.technique)
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int4WeightOnlyConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except ImportError as exc:
        raise MeasurementError("technique", config.technique, f"torchao is not usable here ({exc})",
                               "Run: pip install torchao (matching your torch version).") from None
    module = copy.deepcopy(handle.module).cuda()
    if config.dtype in ("int4", "fp8"):
        module = module.to(torch.bfloat16)  # the INT4 and FP8 kernels take bf16 activations
    names = set(_linears(module, config.exclude, record))
    tile = {"int8": 1, "int4": config.group_size, "fp8": 16}[config.dtype]
    chosen = set()
    for name in names:
        sub = module.get_submodule(name)
        if sub.in_features % tile or sub.out_features % 16 and config.dtype != "int8":
            record.skip(name, f"shape {sub.out_features}x{sub.in_features} does not fit the {config.dtype} kernel")
        else:
            chosen.add(name)
    quant_config = {"int8": lambda: Int8WeightOnlyConfig(),
                    "int4": lambda: Int4WeightOnlyConfig(group_size=config.group_size),
                    "fp8": lambda: Float8DynamicActivationFloat8WeightConfig()}[config.dtype]()
    quantize_(module, quant_config, filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in chosen)
    record.changed = sorted(chosen)
    record.structure = {"dtype": config.dtype, "quantized": sorted(chosen)}
    return _with_module(handle, module)


@register_handler(Sparsify24)
def _sparsify(handle: ModelHandle, config: Sparsify24, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    _require_cuda(config.technique)
    from torch.sparse import to_sparse_semi_structured

    module = copy.deepcopy(handle.module).cuda()
    if not any(p.dtype in (torch.float16, torch.bfloat16) for p in module.parameters()):
        module = module.to(torch.float16)  # sparse tensor cores take fp16 / bf16 / int8
    for name in _linears(module, config.exclude, record):
        sub = module.get_submodule(name)
        rows, cols = sub.weight.shape
        if rows % 64 or cols % 64:
            record.skip(name, f"shape {rows}x{cols}: semi-structured kernels need multiples of 64")
            continue
        weight = sub.weight.detach()
        groups = weight.abs().reshape(-1, 4)
        keep = torch.zeros_like(groups, dtype=torch.bool)
        keep.scatter_(1, groups.topk(2, dim=1).indices, True)  # the 2 largest of every 4
        pruned = (weight.reshape(-1, 4) * keep).reshape(rows, cols)
        sub.weight = nn.Parameter(to_sparse_semi_structured(pruned), requires_grad=False)
        record.changed.append(name)
    record.structure = {"sparse_24": record.changed}
    return _with_module(handle, module)

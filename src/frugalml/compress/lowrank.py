"""Low-rank factorization: each Linear W (out x in) becomes two, B (out x r) @ A (r x in), by
truncated SVD, with r the smallest rank that keeps ``energy`` of the squared singular values.

A layer is factorized only where r * (in + out) < in * out, i.e. where it saves parameters and
multiply-adds; the others are listed as skipped with the rank that would have been needed.
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
    check_fraction,
    check_names,
    register_handler,
)
from frugalml.compress._coverage import list_uncovered_layers
from frugalml.compress.quantize import _with_module
from frugalml.models import ModelHandle

__all__ = ["LowRank", "apply_ranks", "factorize"]


@dataclass(frozen=True, kw_only=True)
class LowRank(TechniqueConfig):
    """Truncated-SVD factorization of Linear layers.

    Attributes:
        energy: fraction of the squared singular values to keep, in (0, 1].
        exclude: layer names left whole.
    """

    technique: ClassVar[str] = "lowrank"
    version: ClassVar[int] = 1
    energy: float = 0.9
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fraction(self.energy, "energy", inclusive_high=True)
        object.__setattr__(self, "exclude", check_names(self.exclude, "exclude"))


def factorize(linear: nn.Linear, rank: int) -> nn.Sequential:
    """(out x in) -> Sequential(Linear(in, rank, no bias), Linear(rank, out)) from the top singular vectors."""
    weight = linear.weight.detach().double()
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Linear(linear.in_features, rank, bias=False)
    second = nn.Linear(rank, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * vh[:rank]).to(linear.weight.dtype))
        second.weight.copy_((u[:, :rank] * root[None, :]).to(linear.weight.dtype))
        if linear.bias is not None:
            second.bias.copy_(linear.bias)
    return nn.Sequential(first, second)


def apply_ranks(module: nn.Module, ranks: dict[str, int]) -> nn.Module:
    for name, rank in ranks.items():
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, factorize(getattr(parent, child), rank))
    return module


@register_handler(LowRank)
def _lowrank(handle: ModelHandle, config: LowRank, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    module = copy.deepcopy(handle.module)
    ranks: dict[str, int] = {}
    for name, sub in list(module.named_modules()):
        if isinstance(sub, (nn.Conv1d, nn.Conv2d)):
            record.skip(name, "convolutions are not factorized (only Linear layers)")
            continue
        if not isinstance(sub, nn.Linear):
            continue
        if any(e == name or e in name for e in config.exclude):
            record.skip(name, "excluded by the recipe")
            continue
        s = torch.linalg.svdvals(sub.weight.detach().double())
        cumulative = torch.cumsum(s**2, 0) / torch.sum(s**2)
        rank = int(torch.searchsorted(cumulative, torch.tensor(config.energy, dtype=cumulative.dtype)).item()) + 1
        rank = min(rank, len(s))
        if rank * (sub.in_features + sub.out_features) >= sub.in_features * sub.out_features:
            record.skip(name, f"rank {rank} for {config.energy:.0%} energy saves nothing at "
                              f"{sub.out_features}x{sub.in_features}")
            continue
        ranks[name] = rank
    list_uncovered_layers(record, handle.module, (nn.Linear, nn.Conv1d, nn.Conv2d), "only Linear layers are factorized")
    apply_ranks(module, ranks)
    record.changed = list(ranks)
    record.structure = {"ranks": ranks}
    return _with_module(handle, module)

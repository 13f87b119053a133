"""Measure one model for a deployment context: the numbers every budget is checked against.

The search measures each candidate this way and the gate measures the model under test the same
way, so a budget means the same thing in both: latency and throughput from :func:`frugalml.profile`
on the context's device at the batch sizes the context and the budgets name, quality from an
:class:`~frugalml.evaluate.Evaluator` against the original model, and for TinyML the flash / SRAM fit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frugalml.config import Budgets
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate import Estimate, Evaluation, Evaluator
from frugalml.gate.contexts import Context
from frugalml.measure.tinyml import Fit, tinyml_fit
from frugalml.models import ModelHandle

__all__ = ["Measured", "measure_model", "needed_batches"]

log = logging.getLogger(__name__)


@dataclass
class Measured:
    """What :func:`measure_model` found; units in the names (ms, items/s, bytes, joules)."""

    model: str
    device: str
    latency_p95_ms: dict[int, Estimate]
    latency_p50_ms: dict[int, float]
    throughput_items_per_s: dict[int, float]
    size_bytes: int
    params: int
    peak_memory_bytes: int
    energy_j_per_item: dict[int, float]
    energy_source: str
    evaluation: Evaluation | None = None
    fit: Fit | None = None

    def cost(self, context: Context) -> float:
        """The context's cost objective (see :mod:`frugalml.gate.contexts`)."""
        if context.cost == "latency_p95_ms":
            return self.latency_p95_ms[context.cost_batch].value
        if context.cost == "throughput_items_per_s":
            return self.throughput_items_per_s[context.cost_batch]
        if context.cost == "size_mb":
            return self.size_bytes / 1e6
        if self.fit is None:
            raise InvalidArgumentError("context", context.name, "needs the TinyML fit, which was not measured",
                                       "Measure with the tinyml context.")
        return self.fit.weight_bytes / 1e3

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "device": self.device,
            "latency_p95_ms": {str(b): e.to_dict() for b, e in self.latency_p95_ms.items()},
            "latency_p50_ms": {str(b): v for b, v in self.latency_p50_ms.items()},
            "throughput_items_per_s": {str(b): v for b, v in self.throughput_items_per_s.items()},
            "size_bytes": self.size_bytes, "params": self.params, "peak_memory_bytes": self.peak_memory_bytes,
            "energy_j_per_item": {str(b): v for b, v in self.energy_j_per_item.items()},
            "energy_source": self.energy_source,
            "evaluation": self.evaluation.to_dict() if self.evaluation is not None else None,
            "fit": self.fit.to_dict() if self.fit is not None else None,
        }


def needed_batches(context: Context, budgets: Budgets) -> list[int]:
    batches = set(context.batches)
    if budgets.latency_p95_ms is not None:
        batches.add(budgets.latency_p95_ms.batch)
    if budgets.throughput_items_per_s is not None:
        batches.add(budgets.throughput_items_per_s.batch)
    return sorted(batches)


def check_device(context: Context) -> None:
    if context.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidArgumentError("context", context.name, "measures on a CUDA GPU and none is available here",
                                       "Run on a machine with an NVIDIA GPU, or choose context edge-cpu.")


def measure_model(handle: ModelHandle, *, context: Context, budgets: Budgets, evaluator: Evaluator | None,
                  seq_len: int = 64, max_time_s: float = 3.0, data: Any = None,
                  on_progress: Callable[[str], None] | None = None) -> Measured:
    """Profile ``handle`` on the context's device, evaluate it, and (TinyML) estimate its fit."""
    from frugalml.measure import profile

    check_device(context)
    progress = on_progress or (lambda message: None)
    batches = needed_batches(context, budgets)
    progress(f"measuring {handle.name} at batch {', '.join(map(str, batches))}")
    p = profile(handle, data=data, batch_sizes=batches, seq_len=seq_len if handle.input_spec.kind == "text" else None,
                device=context.device, max_time_s=max_time_s, layers=False, energy_min_s=min(1.0, max_time_s / 3))
    evaluation = None
    if evaluator is not None:
        progress(f"evaluating {handle.name}")
        evaluation = evaluator.evaluate(handle)
    fit = None
    if context.int8_only or budgets.flash_kb is not None or budgets.sram_kb is not None:
        fit = tinyml_fit(handle, seq_len=seq_len)
    return Measured(
        model=handle.name, device=p.device,
        latency_p95_ms={b: Estimate(s.p95, s.p95_ci_low, s.p95_ci_high) for b, s in p.latency_ms.items()},
        latency_p50_ms={b: s.p50 for b, s in p.latency_ms.items()},
        throughput_items_per_s=dict(p.throughput_items_per_s), size_bytes=p.size_bytes, params=p.params,
        peak_memory_bytes=p.peak_memory_bytes, energy_j_per_item=dict(p.energy_j_per_item),
        energy_source=p.energy_source, evaluation=evaluation, fit=fit,
    )

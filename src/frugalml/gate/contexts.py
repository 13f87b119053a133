"""Deployment contexts: what matters where a model runs.

Each context is the efficiency priorities of one row of the Cloud / Edge / Mobile / TinyML table:
the cost the search minimises (or maximises) beside quality, the batch sizes worth measuring, the
budgets that apply unless the user sets their own, and the technique families and runtimes that
make sense on that hardware.

| context   | cost objective                      | measured at   | default budgets                             |
|-----------|-------------------------------------|---------------|---------------------------------------------|
| cloud-gpu | throughput (items/s), maximise      | batch 1, 256  | quality drop <= 0.01                        |
| edge-cpu  | p95 latency (ms), minimise          | batch 1, 32   | quality drop <= 0.01, worst group <= 0.02   |
| mobile    | size on disk (MB), minimise         | batch 1       | size <= 50 MB, quality drop <= 0.02         |
| tinyml    | weight bytes (KB), minimise; INT8   | batch 1       | flash 1 MB, SRAM 256 KB, quality drop <= 0.02 |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from frugalml.config import Budgets, DropBudget

__all__ = ["CONTEXTS", "Context", "get_context"]


@dataclass(frozen=True)
class Context:
    """A deployment context (see the module docstring)."""

    name: str
    description: str
    device: str  # cpu | cuda
    cost: str  # latency_p95_ms | throughput_items_per_s | size_mb | weight_kb
    cost_batch: int
    maximize_cost: bool
    batches: tuple[int, ...]
    budgets: Budgets
    techniques: tuple[str, ...]
    int8_only: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cost_label(self) -> str:
        units = {"latency_p95_ms": "p95 latency (ms)", "throughput_items_per_s": "throughput (items/s)",
                 "size_mb": "size (MB)", "weight_kb": "weights (KB)"}
        return f"{units[self.cost]} at batch {self.cost_batch}" if self.cost in (
            "latency_p95_ms", "throughput_items_per_s") else units[self.cost]


CONTEXTS: dict[str, Context] = {
    "cloud-gpu": Context(
        name="cloud-gpu", description="datacenter GPU serving: throughput, cost and energy at large batch",
        device="cuda", cost="throughput_items_per_s", cost_batch=256, maximize_cost=True, batches=(1, 256),
        budgets=Budgets(quality_drop=DropBudget(max=0.01)),
        techniques=("quantize", "prune", "distill", "runtime")),
    "edge-cpu": Context(
        name="edge-cpu", description="a CPU next to the user: p95 latency at batch 1, power",
        device="cpu", cost="latency_p95_ms", cost_batch=1, maximize_cost=False, batches=(1, 32),
        budgets=Budgets(quality_drop=DropBudget(max=0.01), worst_group_drop=0.02),
        techniques=("quantize", "prune", "distill", "lowrank", "runtime")),
    "mobile": Context(
        name="mobile", description="a phone: size on disk first, then energy and latency",
        device="cpu", cost="size_mb", cost_batch=1, maximize_cost=False, batches=(1,),
        budgets=Budgets(size_mb=50, quality_drop=DropBudget(max=0.02)),
        techniques=("quantize", "prune", "distill", "lowrank", "runtime")),
    "tinyml": Context(
        name="tinyml", description="a microcontroller: weights in flash, activations in SRAM, INT8 only",
        device="cpu", cost="weight_kb", cost_batch=1, maximize_cost=False, batches=(1,),
        budgets=Budgets(flash_kb=1024, sram_kb=256, quality_drop=DropBudget(max=0.02)),
        techniques=("quantize", "prune", "lowrank"), int8_only=True,
        notes=("every candidate ends in static INT8 quantization; fit is estimated from the ONNX graph",)),
}


def get_context(name: str) -> Context:
    from frugalml._validate import check_choice

    return CONTEXTS[check_choice(name, "context", tuple(CONTEXTS))]

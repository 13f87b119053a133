"""Checking measurements against budgets: one :class:`BudgetCheck` row per budget.

A row passes when the point estimate is within the limit; its confidence interval is shown beside
it, and ``uncertain`` flags a row whose interval straddles the limit (more repeats would settle it).
``margin`` is the headroom in the budget's unit: positive passes, negative fails. ``violation`` is
the same shortfall relative to the limit, the constraint value the search hands Optuna (<= 0 is
feasible).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from frugalml.config import Budgets
from frugalml.gate._measure import Measured

__all__ = ["BudgetCheck", "check_budgets", "violations"]


@dataclass(frozen=True)
class BudgetCheck:
    budget: str
    measured: float | None
    low: float | None
    high: float | None
    limit: float
    kind: str  # "max" or "min"
    unit: str
    passed: bool
    margin: float | None
    uncertain: bool = False
    note: str = ""

    @property
    def violation(self) -> float:
        """Shortfall relative to the limit (> 0 violates); an unmeasured budget counts as violated."""
        if self.measured is None:
            return 1.0
        scale = abs(self.limit) or 1.0
        return (self.measured - self.limit) / scale if self.kind == "max" else (self.limit - self.measured) / scale

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "violation": self.violation}


def _row(budget: str, measured: float | None, limit: float, kind: str, unit: str, *, low: float | None = None,
         high: float | None = None, note: str = "") -> BudgetCheck:
    if measured is None:
        return BudgetCheck(budget, None, None, None, limit, kind, unit, False, None, False, note or "not measured")
    passed = measured <= limit if kind == "max" else measured >= limit
    margin = limit - measured if kind == "max" else measured - limit
    uncertain = low is not None and high is not None and low <= limit <= high
    return BudgetCheck(budget, measured, low, high, limit, kind, unit, passed, margin, uncertain, note)


def check_budgets(m: Measured, budgets: Budgets) -> list[BudgetCheck]:
    """One row per budget set in ``budgets``."""
    rows: list[BudgetCheck] = []
    if budgets.latency_p95_ms is not None:
        b = budgets.latency_p95_ms
        est = m.latency_p95_ms.get(b.batch)
        rows.append(_row(f"latency_p95_ms@{b.batch}", est.value if est else None, b.max, "max", "ms",
                         low=est.low if est else None, high=est.high if est else None))
    if budgets.throughput_items_per_s is not None:
        b2 = budgets.throughput_items_per_s
        rows.append(_row(f"throughput_items_per_s@{b2.batch}", m.throughput_items_per_s.get(b2.batch), b2.min, "min",
                         "items/s"))
    if budgets.size_mb is not None:
        rows.append(_row("size_mb", m.size_bytes / 1e6, budgets.size_mb, "max", "MB"))
    if budgets.peak_memory_mb is not None:
        rows.append(_row("peak_memory_mb", m.peak_memory_bytes / 1e6, budgets.peak_memory_mb, "max", "MB"))
    if budgets.energy_mj_per_item is not None:
        batch = min(m.energy_j_per_item) if m.energy_j_per_item else None
        value = m.energy_j_per_item[batch] * 1e3 if batch is not None else None
        rows.append(_row(f"energy_mj_per_item@{batch}", value, budgets.energy_mj_per_item, "max", "mJ",
                         note=m.energy_source))
    ev = m.evaluation
    if budgets.min_quality is not None:
        if ev is None:
            rows.append(_row("min_quality", None, budgets.min_quality, "min", ""))
        else:
            est = ev.overall[ev.primary]
            kind = "min" if ev.higher_is_better[ev.primary] else "max"
            rows.append(_row(f"quality ({ev.primary})", est.value, budgets.min_quality, kind, "", low=est.low,
                             high=est.high))
    if budgets.quality_drop is not None:
        qd = budgets.quality_drop
        if ev is None or ev.drop is None:
            rows.append(_row("quality_drop", None, qd.max, "max", "", note="needs a reference model"))
        elif qd.relative:
            ref = abs(ev.reference[ev.primary]) if ev.reference else 0.0
            d = ev.drop[ev.primary]
            scale = ref or 1.0
            rows.append(_row(f"quality_drop ({ev.primary}, relative)", d.value / scale, qd.max, "max", "",
                             low=d.low / scale, high=d.high / scale))
        else:
            d = ev.drop[ev.primary]
            rows.append(_row(f"quality_drop ({ev.primary})", d.value, qd.max, "max", "", low=d.low, high=d.high))
    if budgets.worst_group_drop is not None:
        worst = ev.worst_group_drop if ev is not None else None
        if worst:
            from frugalml.evaluate import dropped_group

            group = dropped_group(worst)
            note = f"group {group}" if group else "no group dropped"
        else:
            note = "no group column" if ev is not None else ""
        rows.append(_row("worst_group_drop", worst[1] if worst else None, budgets.worst_group_drop, "max", "",
                         note=note))
    if budgets.subgroup_gap is not None:
        gap = ev.difference() if ev is not None else None
        rows.append(_row("subgroup_gap", gap, budgets.subgroup_gap, "max", "",
                         note="" if gap is not None else "no group column"))
    if budgets.flash_kb is not None:
        rows.append(_row("flash_kb (weights)", m.fit.weight_bytes / 1e3 if m.fit else None, budgets.flash_kb, "max",
                         "KB", note=m.fit.source if m.fit else ""))
    if budgets.sram_kb is not None:
        rows.append(_row("sram_kb (peak activations)", m.fit.peak_activation_bytes / 1e3 if m.fit else None,
                         budgets.sram_kb, "max", "KB", note=f"peak at {m.fit.peak_at}" if m.fit else ""))
    return rows


def violations(rows: list[BudgetCheck]) -> list[float]:
    return [row.violation for row in rows]

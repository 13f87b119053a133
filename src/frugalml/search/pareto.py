"""Pareto fronts and hypervolume for two objectives (quality vs cost), directions given per objective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["hypervolume_2d", "pareto_front"]


def _as_min(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64).reshape(len(points), len(maximize))
    return array * np.where(np.asarray(maximize), -1.0, 1.0)


def pareto_front(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points (no other point is at least as good everywhere and better somewhere)."""
    if len(points) == 0:
        return []
    p = _as_min(points, maximize)
    front = []
    for i in range(len(p)):
        dominated = np.any(np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1))
        if not dominated:
            front.append(i)
    return front


def hypervolume_2d(points: Sequence[Sequence[float]], maximize: Sequence[bool], reference: Sequence[float]) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (a point worse than all of them)."""
    if len(points) == 0:
        return 0.0
    p = _as_min(points, maximize)
    ref = _as_min([reference], maximize)[0]
    p = p[np.all(p < ref, axis=1)]
    if len(p) == 0:
        return 0.0
    p = p[np.argsort(p[:, 0])]
    area, best_y = 0.0, ref[1]
    for x, y in p:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(area)

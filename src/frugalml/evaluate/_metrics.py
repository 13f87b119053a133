"""Per-task quality metrics, each a function of the evaluated rows' positions.

Every metric is written as ``f(rows) -> float`` over precomputed per-item arrays, so the same
definition serves the overall value, each bootstrap resample and each subgroup (fairlearn's
MetricFrame slices the positions by group).

- classification (needs labels): accuracy, macro-F1, expected calibration error (15 equal-width
  confidence bins; lower is better), and top-1 agreement with the reference when there is one;
- embedding (needs a reference model): fidelity to it: mean cosine, 1st-percentile cosine, top-10
  retrieval agreement (each item's 10 nearest neighbours in the evaluated set under both models);
- regression (needs labels): MAE and RMSE (lower is better);
- a user callable ``metric(y_true, y_pred) -> float``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from frugalml.compress._fidelity import cosine_per_item, topk_overlap

__all__ = [
    "MetricSet",
    "callable_metrics",
    "classification_metrics",
    "embedding_metrics",
    "regression_metrics",
    "to_probabilities",
]

Rows = np.ndarray  # integer positions into the evaluated items


@dataclass
class MetricSet:
    """Named metrics over row positions; ``primary`` is the one budgets and the search use."""

    functions: dict[str, Callable[[Rows], float]]
    higher_is_better: dict[str, bool]
    primary: str


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Rows that already are probabilities stay; logits go through a (stable) softmax."""
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim == 2 and (out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        return out
    shifted = out - out.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def classification_metrics(outputs: np.ndarray, labels: np.ndarray, reference: np.ndarray | None) -> MetricSet:
    from sklearn.metrics import f1_score

    probs = to_probabilities(outputs)
    pred = probs.argmax(axis=1)
    correct = (pred == labels).astype(np.float64)
    confidence = probs.max(axis=1)
    classes = np.unique(labels)
    functions: dict[str, Callable[[Rows], float]] = {
        "accuracy": lambda r: float(correct[r].mean()),
        "macro_f1": lambda r: float(f1_score(labels[r], pred[r], labels=classes, average="macro", zero_division=0)),
        "ece": lambda r: _ece(confidence[r], correct[r]),
    }
    better = {"accuracy": True, "macro_f1": True, "ece": False}
    if reference is not None:
        agree = (pred == np.asarray(reference).argmax(axis=1)).astype(np.float64)
        functions["agreement"] = lambda r: float(agree[r].mean())
        better["agreement"] = True
    return MetricSet(functions, better, "accuracy")


def embedding_metrics(outputs: np.ndarray, reference: np.ndarray, *, k: int = 10) -> MetricSet:
    cos = cosine_per_item(outputs, reference)
    k = min(k, len(cos) - 1)
    overlap = topk_overlap(outputs, reference, k) if k >= 1 else np.ones_like(cos)
    functions: dict[str, Callable[[Rows], float]] = {
        "mean_cosine": lambda r: float(cos[r].mean()),
        "p1_cosine": lambda r: float(np.percentile(cos[r], 1)),
        f"top{k}_agreement": lambda r: float(overlap[r].mean()),
    }
    return MetricSet(functions, {name: True for name in functions}, "mean_cosine")


def regression_metrics(outputs: np.ndarray, labels: np.ndarray) -> MetricSet:
    error = np.asarray(outputs, dtype=np.float64).reshape(len(labels), -1)[:, 0] - labels.astype(np.float64)
    functions: dict[str, Callable[[Rows], float]] = {
        "mae": lambda r: float(np.abs(error[r]).mean()),
        "rmse": lambda r: float(np.sqrt((error[r] ** 2).mean())),
    }
    return MetricSet(functions, {"mae": False, "rmse": False}, "mae")


def callable_metrics(fn: Callable[[Any, Any], float], name: str, higher_is_better: bool, outputs: np.ndarray,
                     labels: np.ndarray) -> MetricSet:
    return MetricSet({name: lambda r: float(fn(labels[r], outputs[r]))}, {name: higher_is_better}, name)

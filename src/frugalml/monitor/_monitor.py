"""`monitor(reference, current)`: drift of every column, of a model's predictions and embeddings, and of
its measured efficiency over time; and `DriftWindow`, the same checks over a server's recent traffic."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.monitor._drift import PSI_WARN, FeatureDrift, column_drift, embedding_drift, holm, missing_drift

__all__ = ["DriftWindow", "MonitorReport", "efficiency_trend", "monitor"]

log = logging.getLogger(__name__)


@dataclass
class MonitorReport:
    """Drift per column (``features``, with a ``COLUMN (missing)`` entry where either side has missing
    values), the reference's columns the current data lacks (``missing_columns``), of the model's outputs
    (``predictions``), and the efficiency trend from the store (``efficiency``); ``alerts`` names what
    crossed its threshold."""

    reference: str
    current: str
    rows: tuple[int, int]
    features: list[FeatureDrift] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    predictions: FeatureDrift | None = None
    efficiency: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[str]:
        out = [f"{c} (column missing)" for c in self.missing_columns]
        out += [f.feature for f in self.features if f.level == "alert"]
        if self.predictions is not None and self.predictions.level == "alert":
            out.append(self.predictions.feature)
        if self.efficiency and self.efficiency.get("regressions"):
            out += [f"efficiency: {r}" for r in self.efficiency["regressions"]]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "current": self.current, "rows": list(self.rows),
                "features": [f.to_dict() for f in self.features], "missing_columns": self.missing_columns,
                "predictions": self.predictions.to_dict() if self.predictions else None,
                "efficiency": self.efficiency, "alerts": self.alerts, "notes": self.notes}


def _outputs(model: Any, dataset: Any, max_rows: int, seed: int) -> np.ndarray:
    items = model.items_of(dataset)
    rows = np.arange(len(items))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))
    picked = [items[i] for i in rows] if isinstance(items, list) else items[rows]
    return model.predict(picked, batch_size=64, bucket=True)


def output_drift(task: str | None, reference: np.ndarray, current: np.ndarray, *, alpha: float,
                 seed: int = 0) -> FeatureDrift:
    """Drift of a model's outputs: predicted class (classification), value (regression), or the output
    vectors by MMD (embeddings)."""
    from scipy.special import softmax

    if task == "classification":
        return column_drift("predictions", np.argmax(softmax(reference, axis=1), 1).astype(str),
                            np.argmax(softmax(current, axis=1), 1).astype(str), alpha=alpha)
    if task == "regression":
        return column_drift("predictions", reference.ravel(), current.ravel(), alpha=alpha)
    return embedding_drift("embeddings", reference, current, alpha=alpha, seed=seed)


def monitor(reference: str | Any, current: str | Any, *, model: str | Any = None, text_column: str | None = None,
            label_column: str | None = None, columns: list[str] | None = None, alpha: float = 0.01, max_model_rows: int = 2000,
            store: str | None = None, efficiency_tolerance: float = 0.1, seed: int = 0) -> MonitorReport:
    """Compare ``current`` with ``reference`` (each ``zoo:NAME``, a file, or a Dataset).

    Every shared column is checked (``columns`` to choose; a text column by its length), and its share
    of missing values where either side has some; without ``columns``, a reference column the current
    data lacks is an alert (the label column excepted: production data is often unlabelled). The
    model's inputs are the text column or the numeric columns other than ``label_column``; with a
    ``model`` (spec or ModelHandle) the drift of its predictions on both sets and its efficiency trend in
    the store (see :func:`efficiency_trend`).
    """
    from frugalml.datasets import Dataset, load_dataset

    if not 0 < alpha < 1:
        raise InvalidArgumentError("alpha", alpha, "must be between 0 and 1", "Use e.g. 0.01.")

    def load(spec: Any, argument: str, label: str | None) -> Any:
        return spec if isinstance(spec, Dataset) else load_dataset(spec, text_column=text_column,
                                                                   label_column=label, argument=argument)

    ref = load(reference, "reference", label_column)
    notes: list[str] = []
    try:
        cur = load(current, "current", label_column)
    except DataError as e:
        if label_column is None or e.argument != "label_column":
            raise
        cur = load(current, "current", None)  # unlabelled production data: compare the rest
        notes.append(f"{cur.name} has no {label_column!r} column: labels not compared")
    internal = {"_row", "split", ref.label_column}
    shared = [c for c in ref.frame.columns if c in cur.frame.columns and c != "_row"]
    report = MonitorReport(str(ref.name), str(cur.name), (len(ref), len(cur)), notes=notes)
    if columns:
        missing = [c for c in columns if c not in shared]
        if missing:
            raise DataError("columns", missing, "are not in both datasets", f"Shared columns: {', '.join(map(str, shared))}.")
        shared = list(columns)
    else:
        report.missing_columns = [str(c) for c in ref.frame.columns if c not in cur.frame.columns and c not in internal]
        extra = [str(c) for c in cur.frame.columns if c not in ref.frame.columns and c != "_row"]
        if extra:
            report.notes.append(f"{cur.name} has columns the reference lacks, not compared: {', '.join(extra)}")
    if not shared:
        raise DataError("current", str(current), "shares no column with the reference",
                        f"Reference columns: {', '.join(map(str, ref.frame.columns))}.")
    for column in shared:
        r, c = ref.frame[column].dropna(), cur.frame[column].dropna()
        if len(r) < len(ref) or len(c) < len(cur):
            report.features.append(missing_drift(str(column), len(ref) - len(r), len(ref), len(cur) - len(c), len(cur),
                                                 alpha=alpha))
        if len(r) == 0 or len(c) == 0:
            report.notes.append(f"{column}: no values on one side; only its missing share compared")
            continue
        if column == ref.text_column:
            d = column_drift(f"{column} (length)", r.astype(str).str.len().to_numpy(),
                             c.astype(str).str.len().to_numpy(), alpha=alpha)
        else:
            d = column_drift(str(column), r.to_numpy(), c.to_numpy(), alpha=alpha)
        report.features.append(d)
    report.features = holm(report.features, alpha)
    if model is not None:
        from frugalml.models import ModelHandle, load_model

        handle = model if isinstance(model, ModelHandle) else load_model(model)
        a = _outputs(handle, ref, max_model_rows, seed)
        b = _outputs(handle, cur, max_model_rows, seed)
        report.predictions = output_drift(handle.task, a, b, alpha=alpha, seed=seed)
        report.efficiency = efficiency_trend(str(handle.name), store=store, tolerance=efficiency_tolerance)
    noisy = [f for f in report.features if f.details.get("psi_noise", 0.0) >= PSI_WARN]
    if noisy:
        worst = max(f.details["psi_noise"] for f in noisy)
        report.notes.append(
            f"{len(noisy)} check(s) rest on few rows: with no drift at all their PSI would be about {worst:.2f} "
            "from sampling alone, so PSI cannot tell there and they alert only where the test confirms a shift; "
            "compare more rows for a firmer reading")
    return report


def efficiency_trend(model_name: str, *, store: str | None = None, tolerance: float = 0.1,
                     limit: int = 50) -> dict[str, Any]:
    """The model's profile runs in the store, oldest first: p50 latency at the smallest batch and energy
    per item; a regression is the latest run above the median of the earlier ones by more than
    ``tolerance`` (a fraction)."""
    from frugalml.store import open_store

    runs = open_store(store).list_runs(kind="profile", status="succeeded", name_contains=model_name, limit=limit,
                                       with_result=True)
    points = []
    for run in sorted((r for r in runs if r.name == model_name), key=lambda r: r.created):
        latency = (run.result or {}).get("latency_ms") or {}
        if not latency:
            continue
        batch = min(latency, key=int)
        energy = ((run.result or {}).get("energy_j_per_item") or {}).get(batch)
        points.append({"run": run.id, "created": run.created.isoformat(), "batch": int(batch),
                       "p50_ms": latency[batch].get("p50"), "joules_per_item": energy})
    trend: dict[str, Any] = {"model": model_name, "runs": points, "regressions": []}
    if len(points) < 2:
        trend["note"] = f"{len(points)} profile run(s) of {model_name} in the store; a trend needs 2"
        return trend
    latest, earlier = points[-1], points[:-1]
    for key, label in (("p50_ms", "p50 latency"), ("joules_per_item", "energy per item")):
        past = [p[key] for p in earlier if p.get(key) is not None and p["batch"] == latest["batch"]]
        if latest.get(key) is None or not past:
            continue
        base = float(np.median(past))
        change = latest[key] / base - 1 if base else 0.0
        trend[f"{key}_change"] = change
        if change > tolerance:
            trend["regressions"].append(f"{label} {change:+.0%} (run #{latest['run']} vs the median of "
                                        f"{len(past)} earlier)")
    return trend


class DriftWindow:
    """The server's live monitor: the last ``window`` items' features (tensor models) and outputs,
    compared with the reference every ``every`` items on a thread of its own; results go to
    ``publish(list of FeatureDrift)``."""

    def __init__(self, reference_features: np.ndarray | None, reference_outputs: np.ndarray, task: str | None, *,
                 window: int, every: int, publish: Callable[[list[FeatureDrift]], None], alpha: float = 0.01) -> None:
        self.reference_features, self.reference_outputs, self.task = reference_features, reference_outputs, task
        self.features: deque[np.ndarray] = deque(maxlen=window)
        self.outputs: deque[np.ndarray] = deque(maxlen=window)
        self.every, self.publish, self.alpha = every, publish, alpha
        self.seen = 0
        self.latest: list[FeatureDrift] = []
        self._busy = threading.Lock()

    def add(self, features: np.ndarray | None, outputs: np.ndarray) -> None:
        if features is not None:
            self.features.extend(np.asarray(features, dtype=float).reshape(len(outputs), -1))
        self.outputs.extend(outputs)
        before, self.seen = self.seen, self.seen + len(outputs)
        if self.seen // self.every > before // self.every and len(self.outputs) >= min(self.every, 50):
            if self._busy.acquire(blocking=False):
                threading.Thread(target=self._check, name="frugal-drift", daemon=True).start()

    def _check(self) -> None:
        try:
            results = []
            if self.reference_features is not None and self.features:
                cur = np.stack(self.features)
                results = holm([column_drift(f"x{j}", self.reference_features[:, j], cur[:, j], alpha=self.alpha)
                                for j in range(cur.shape[1])], self.alpha)
            results.append(output_drift(self.task, self.reference_outputs, np.stack(self.outputs), alpha=self.alpha))
            self.latest = results
            self.publish(results)
        except Exception:  # noqa: BLE001 - monitoring must never take the server down
            log.warning("live drift check failed", exc_info=True)
        finally:
            self._busy.release()

"""`evaluate(model, data, reference)`: quality overall, per subgroup, and the drop against a reference.

The result surface follows fairlearn's MetricFrame: ``.overall``, ``.by_group``, ``.difference()``,
plus ``.drop`` (how much worse than the reference, positive = worse) and the per-group drop, since
compression hurts under-represented groups first. Overall values and drops carry percentile
bootstrap confidence intervals; the drop is bootstrapped paired (the same resampled rows for the
model and the reference).

:class:`Evaluator` holds the evaluation items and the reference's outputs, so a search that
evaluates many candidates against one reference computes those once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frugalml._validate import check_choice, check_device, check_positive_int
from frugalml.datasets import Dataset, load_dataset
from frugalml.errors import DataError, InvalidArgumentError
from frugalml.evaluate._metrics import (
    MetricSet,
    callable_metrics,
    classification_metrics,
    embedding_metrics,
    regression_metrics,
)
from frugalml.models import ModelHandle, load_model

__all__ = ["Estimate", "Evaluation", "Evaluator", "dropped_group", "eval_dataset", "evaluate", "evaluation_headline"]

log = logging.getLogger(__name__)

TASKS = ("classification", "embedding", "regression")


@dataclass(frozen=True)
class Estimate:
    """A value and its confidence interval (``low``, ``high``)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass
class Evaluation:
    """Quality of one model on one dataset.

    Attributes:
        task: classification, embedding or regression.
        primary: the metric budgets and the search use (accuracy, mean_cosine, mae, or the callable's name).
        higher_is_better: each metric's direction.
        overall: each metric with its bootstrap CI.
        reference: the reference model's value of each metric, when evaluated against one.
        drop: how much worse than the reference (positive = worse), with a paired bootstrap CI.
        by_group: group -> metric -> value; empty without a group column.
        group_sizes: rows per group.
        group_drop: group -> drop of the primary metric against the reference.
        reference_by_group: group -> metric -> the reference model's value (quality before compression).
    """

    task: str
    primary: str
    higher_is_better: dict[str, bool]
    n_items: int
    overall: dict[str, Estimate]
    reference: dict[str, float] | None = None
    drop: dict[str, Estimate] | None = None
    group_column: str | None = None
    by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    group_sizes: dict[str, int] = field(default_factory=dict)
    group_drop: dict[str, float] = field(default_factory=dict)
    reference_by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    confidence: float = 0.95
    model: str | None = None  # what was evaluated, on what, against what (names, for the record)
    data: str | None = None
    reference_model: str | None = None
    run_id: int | None = None  # the ``evaluate`` run in the store, when recorded

    @property
    def quality(self) -> float:
        """The primary metric's value."""
        return self.overall[self.primary].value

    def relative_drop(self, metric: str | None = None) -> float | None:
        """The drop as a fraction of the reference's value."""
        metric = metric or self.primary
        if self.drop is None or self.reference is None or not self.reference.get(metric):
            return None
        return self.drop[metric].value / abs(self.reference[metric])

    def difference(self, metric: str | None = None) -> float | None:
        """The gap between the best and the worst group (MetricFrame's ``difference()``)."""
        metric = metric or self.primary
        values = [g[metric] for g in self.by_group.values() if metric in g]
        return float(max(values) - min(values)) if values else None

    def worst_group(self, metric: str | None = None) -> tuple[str, float] | None:
        """The group with the worst value of ``metric`` and that value."""
        metric = metric or self.primary
        if not self.by_group:
            return None
        pick = min if self.higher_is_better[metric] else max
        group = pick(self.by_group, key=lambda g: self.by_group[g][metric])
        return group, self.by_group[group][metric]

    @property
    def worst_group_drop(self) -> tuple[str, float] | None:
        """The group whose primary metric dropped most against the reference, and by how much; where no
        group dropped, that largest change is <= 0 and its group is no finding (see :func:`dropped_group`)."""
        if not self.group_drop:
            return None
        group = max(self.group_drop, key=self.group_drop.__getitem__)
        return group, self.group_drop[group]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data, "reference_model": self.reference_model, "run_id": self.run_id,
            "task": self.task, "primary": self.primary, "n_items": self.n_items, "confidence": self.confidence,
            "higher_is_better": self.higher_is_better,
            "overall": {k: v.to_dict() for k, v in self.overall.items()},
            "reference": self.reference,
            "drop": {k: v.to_dict() for k, v in self.drop.items()} if self.drop is not None else None,
            "relative_drop": self.relative_drop(),
            "group_column": self.group_column, "by_group": self.by_group, "group_sizes": self.group_sizes,
            "group_drop": self.group_drop, "reference_by_group": self.reference_by_group,
            "difference": self.difference(),
            "worst_group_drop": list(self.worst_group_drop) if self.worst_group_drop else None,
        }


def dropped_group(worst: tuple[str, float] | list[Any] | None) -> str | None:
    """The group a ``worst_group_drop`` names, or None where no group dropped (its drop <= 0: every group
    held or improved, and which of them "worst" picks is arbitrary)."""
    if not worst or worst[1] is None or float(worst[1]) <= 0:
        return None
    return str(worst[0])


def eval_dataset(data: str | Path | Dataset, *, text_column: str | None = None, label_column: str | None = None,
                 group_column: str | None = None, limit: int | None = 512, seed: int = 0) -> Dataset:
    """The rows to evaluate on: the test split when there is one, a seeded sample of at most ``limit``."""
    dataset = data if isinstance(data, Dataset) else load_dataset(
        data, text_column=text_column, label_column=label_column, group_column=group_column)
    if isinstance(data, Dataset) and group_column is not None:
        if group_column not in dataset.frame.columns:
            raise DataError("group_column", group_column, f"dataset {dataset.name} has no such column",
                            f"Use one of {', '.join(map(str, dataset.frame.columns))}.")
        dataset = Dataset(dataset.name, dataset.frame, dataset.text_column, dataset.feature_columns,
                          dataset.label_column, group_column, dataset.feature_shape)
    dataset = dataset.held_out()  # never evaluate on rows that training, calibration or distillation saw
    if limit is not None and len(dataset) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(len(dataset), size=limit, replace=False))
        dataset = dataset.subset(rows)
    return dataset


class Evaluator:
    """Evaluation items plus the reference's outputs, computed once; :meth:`evaluate` any number of models.

    Args:
        data: the evaluation dataset (``zoo:NAME``, a path or a Dataset); its test split is used.
        reference: the model to compare against (the uncompressed original), or None.
        task: overrides the model's task.
        metric: a callable ``metric(y_true, y_pred) -> float`` instead of the task's metrics.
        group_column: the column naming each row's subgroup (default: the dataset's).
        limit: evaluate a seeded sample of at most this many rows.
        seq_len: tokens per text item (padded / truncated).
        n_boot: bootstrap resamples for the confidence intervals; confidence: their level.
        device: where models run (``cpu`` or ``cuda``): the device a model is deployed on, since
            GPU-quantized models (torchao INT4 / FP8, 2:4 sparse) run only there.
    """

    def __init__(self, data: str | Path | Dataset, reference: ModelHandle | str | Path | None = None, *,
                 task: str | None = None, metric: Callable[[Any, Any], float] | None = None,
                 metric_name: str = "metric", higher_is_better: bool = True, text_column: str | None = None,
                 label_column: str | None = None, group_column: str | None = None, limit: int | None = 512,
                 seq_len: int = 64, n_boot: int = 200, confidence: float = 0.95, seed: int = 0,
                 device: str = "cpu") -> None:
        if task is not None:
            check_choice(task, "task", TASKS)
        if metric is not None and not callable(metric):
            raise InvalidArgumentError("metric", metric, "must be a callable metric(y_true, y_pred) -> float",
                                       "Pass e.g. sklearn.metrics.balanced_accuracy_score.")
        if limit is not None:
            check_positive_int(limit, "limit")
        check_positive_int(n_boot, "n_boot")
        check_positive_int(seq_len, "seq_len")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise InvalidArgumentError("seed", seed, "must be an integer >= 0", "Use e.g. seed=0.")
        check_device(device)
        if not (isinstance(confidence, float) and 0.5 <= confidence < 1):
            raise InvalidArgumentError("confidence", confidence, "must be a float in [0.5, 1)", "Use 0.95.")
        self.dataset = eval_dataset(data, text_column=text_column, label_column=label_column,
                                    group_column=group_column, limit=limit, seed=seed)
        if len(self.dataset) < 2:
            raise DataError("data", self.dataset.name, f"has {len(self.dataset)} evaluation rows",
                            "Evaluate on at least 2 rows (the bootstrap needs them).")
        self.reference = reference if isinstance(reference, ModelHandle) or reference is None else load_model(reference)
        self.task, self.metric, self.metric_name, self.higher = task, metric, metric_name, higher_is_better
        self.seq_len, self.n_boot, self.confidence, self.seed = seq_len, n_boot, confidence, seed
        self.device = device
        self.labels = self.dataset.labels()
        self.groups = self.dataset.groups()
        self._reference_outputs: np.ndarray | None = None
        self._reference_metrics: MetricSet | None = None
        # The reference's per-resample values and group table are the same for every model evaluated.
        self._reference_samples: dict[str, np.ndarray] = {}
        self._reference_groups: Any = None
        self._label_indices: dict[tuple[str, ...], np.ndarray] = {}  # by the class names that mapped them

    # ------------------------------------------------------------------ outputs
    def _outputs(self, handle: ModelHandle) -> np.ndarray:
        items = handle.items_of(self.dataset)
        seq = self.seq_len if handle.input_spec.kind == "text" else None
        return handle.predict(items, seq_len=seq, device=self.device)

    @property
    def reference_outputs(self) -> np.ndarray | None:
        if self.reference is not None and self._reference_outputs is None:
            log.info("evaluate: computing the reference outputs of %s", self.reference.name)
            self._reference_outputs = self._outputs(self.reference)
        return self._reference_outputs

    def _metric_set(self, outputs: np.ndarray, task: str, reference: np.ndarray | None,
                    handle: ModelHandle) -> MetricSet:
        if self.metric is not None:
            return callable_metrics(self.metric, self.metric_name, self.higher, outputs,
                                    self._need_labels(task, handle))
        if task == "embedding":
            if reference is None:
                raise InvalidArgumentError("reference", None, "embedding quality is fidelity to a reference model",
                                           "Pass the original model as the reference (--reference; reference= "
                                           "in Python), or a metric= callable.")
            return embedding_metrics(outputs, reference)
        if task == "regression":
            return regression_metrics(outputs, self._need_labels(task, handle))
        return classification_metrics(outputs, self._need_labels(task, handle), reference)

    def _need_labels(self, task: str, handle: ModelHandle) -> np.ndarray:
        if self.labels is None:
            raise DataError("label_column", None, f"{task} metrics need labels and {self.dataset.name} has none",
                            "Name the label column (data.label_column in frugal.yaml, --label-column).")
        if task != "classification":
            return self.labels
        # Text labels ("spam", "os") become output indices through the classes the model names; the
        # reference's, when there is one, so that every model evaluated is scored on the same indices.
        names = self.reference.class_names if self.reference is not None else None
        mine = handle.class_names
        if names is not None and mine is not None and names != mine:
            raise InvalidArgumentError("model", handle.name, f"names its classes {', '.join(mine[:8])} where the "
                                       f"reference {self.reference.name} has {', '.join(names[:8])}",
                                       "Evaluate a model derived from the reference (same classes, same order).")
        source = self.reference if names is not None else handle
        key = tuple(source.class_names or ())
        if key not in self._label_indices:
            self._label_indices[key] = source.label_indices(self.labels, column=self.dataset.label_column)
        return self._label_indices[key]

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, model: ModelHandle | str | Path) -> Evaluation:
        handle = model if isinstance(model, ModelHandle) else load_model(model)
        task = self.task or handle.task or "classification"
        if task not in TASKS:
            raise InvalidArgumentError("task", task, f"is not one of {', '.join(TASKS)}", "Pass task= explicitly.")
        outputs = self._outputs(handle)
        ref_out = self.reference_outputs
        metrics = self._metric_set(outputs, task, ref_out, handle)
        n = len(outputs)
        rows = np.arange(n)
        rng = np.random.default_rng(self.seed)
        boots = rng.integers(0, n, size=(self.n_boot, n))
        tail = (1 - self.confidence) / 2 * 100

        def interval(values: np.ndarray, point: float) -> Estimate:
            low, high = np.percentile(values, [tail, 100 - tail])
            return Estimate(point, float(low), float(high))

        samples = {m: np.array([f(b) for b in boots]) for m, f in metrics.functions.items()}
        overall = {m: interval(samples[m], f(rows)) for m, f in metrics.functions.items()}
        reference = drop = None
        if ref_out is not None:
            if self._reference_metrics is None:
                self._reference_metrics = self._metric_set(ref_out, task, ref_out, self.reference)
            ref_metrics = self._reference_metrics
            reference, drop = {}, {}
            for m, f in metrics.functions.items():
                if m not in ref_metrics.functions:
                    continue
                g = ref_metrics.functions[m]
                sign = 1.0 if metrics.higher_is_better[m] else -1.0
                reference[m] = g(rows)
                if m not in self._reference_samples:  # same seed, same resamples: computed once
                    self._reference_samples[m] = np.array([g(b) for b in boots])
                paired = sign * (self._reference_samples[m] - samples[m])
                drop[m] = interval(paired, sign * (reference[m] - overall[m].value))
        evaluation = Evaluation(task=task, primary=metrics.primary, higher_is_better=metrics.higher_is_better,
                                n_items=n, overall=overall, reference=reference, drop=drop,
                                confidence=self.confidence, model=handle.name, data=self.dataset.name,
                                reference_model=self.reference.name if self.reference is not None else None)
        if self.groups is not None:
            self._by_group(evaluation, metrics)
        return evaluation

    def _by_group(self, evaluation: Evaluation, metrics: MetricSet) -> None:
        from fairlearn.metrics import MetricFrame

        rows = np.arange(len(self.groups))

        def frame(metric_set: MetricSet) -> Any:
            # Rows stand in for y_true and y_pred: each metric reads its own per-item arrays.
            fns = {m: (lambda y_true, y_pred, f=f: f(np.asarray(y_true, dtype=np.int64)))
                   for m, f in metric_set.functions.items()}
            return MetricFrame(metrics=fns, y_true=rows, y_pred=rows, sensitive_features=self.groups)

        mf = frame(metrics)
        table = mf.by_group
        evaluation.group_column = self.dataset.group_column
        evaluation.by_group = {str(g): {m: float(table.loc[g, m]) for m in table.columns} for g in table.index}
        names, counts = np.unique(self.groups, return_counts=True)
        evaluation.group_sizes = {str(g): int(c) for g, c in zip(names, counts)}
        if self._reference_metrics is not None and metrics.primary in self._reference_metrics.functions:
            if self._reference_groups is None:
                self._reference_groups = frame(self._reference_metrics).by_group
            ref_table = self._reference_groups
            sign = 1.0 if metrics.higher_is_better[metrics.primary] else -1.0
            evaluation.reference_by_group = {str(g): {m: float(ref_table.loc[g, m]) for m in ref_table.columns}
                                              for g in ref_table.index}
            evaluation.group_drop = {str(g): float(sign * (ref_table.loc[g, metrics.primary]
                                                           - table.loc[g, metrics.primary])) for g in table.index}


def evaluate(model: ModelHandle | str | Path, data: str | Path | Dataset | None = None,
             reference: ModelHandle | str | Path | None = None, *, store: Any = None, **options: Any) -> Evaluation:
    """Evaluate ``model`` on ``data`` (default: the model's own data), against ``reference`` if given.

    Options are :class:`Evaluator`'s (``task``, ``metric``, ``text_column``, ``label_column``,
    ``group_column``, ``limit``, ``n_boot``, ...). ``store``: a store URL or Store to record the
    evaluation in, as an ``evaluate`` run; None records nothing.

        >>> ev = frugalml.evaluate(compressed, "zoo:digits-fair", reference="zoo:digits-fair-cnn")
        >>> ev.overall["accuracy"].value, ev.worst_group_drop
    """
    handle = model if isinstance(model, ModelHandle) else load_model(model)
    if data is None:
        data = handle.default_data
        if data is None:
            raise InvalidArgumentError("data", None, f"{handle.name} has no default dataset",
                                       "Pass data= (a zoo:NAME or a CSV / Parquet / JSONL path).")
    evaluator = Evaluator(data, reference, **options)  # validates everything before a run is recorded
    run = None
    if store is not None:
        from frugalml.measure.env import fingerprint
        from frugalml.store import Store, open_store

        opened = store if isinstance(store, Store) else open_store(store)
        run = opened.start_run("evaluate", name=handle.name, env=fingerprint(), config={
            "model": handle.name, "data": evaluator.dataset.name,
            "reference": evaluator.reference.name if evaluator.reference is not None else None,
            "group_column": evaluator.dataset.group_column, "items": len(evaluator.dataset),
            **{k: v for k, v in options.items() if k != "metric"}})
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        evaluation = evaluator.evaluate(handle)
    if run is not None:
        evaluation.run_id = run.id
        run.finish(result=evaluation.to_dict(), measurements=_measurements(evaluation))
    return evaluation


def _measurements(ev: Evaluation) -> list[Any]:
    """The store's rows of an evaluation: each metric, its drop, and the worst group's drop."""
    from frugalml.store import Measurement

    unit = "target" if ev.task == "regression" else "ratio"  # MAE / RMSE are in the label's own unit
    rows = [Measurement(m, e.value, unit) for m, e in ev.overall.items()]
    rows += [Measurement(f"drop:{m}", e.value, unit) for m, e in (ev.drop or {}).items()]
    worst = ev.worst_group_drop
    if worst is not None:
        rows.append(Measurement("worst_group_drop", worst[1], unit, source=str(worst[0])[:64]))
    return rows


def evaluation_headline(result: dict[str, Any]) -> str:
    """One line of an ``evaluate`` run's result (``Evaluation.to_dict()``) for run lists."""
    primary = result.get("primary")
    if primary not in (result.get("overall") or {}):
        return ""
    text = f"{primary} {result['overall'][primary]['value']:.4g}"
    drop = (result.get("drop") or {}).get(primary)
    if drop is not None:
        text += f", drop {drop['value']:.4g}"
    if result.get("worst_group_drop"):
        group = dropped_group(result["worst_group_drop"])
        text += f"; worst group {group} {result['worst_group_drop'][1]:.4g}" if group else "; no group dropped"
    return text

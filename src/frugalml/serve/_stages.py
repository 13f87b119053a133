"""What answers a batch: one model, or a cascade (a small model, escalating unsure items to a large one);
and the shadow, a candidate that sees a copy of the traffic but never answers it."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError
from frugalml.serve._metrics import ServeMetrics
from frugalml.serve._model import ServedModel

__all__ = ["Cascade", "Shadow", "Single"]

log = logging.getLogger(__name__)


class Single:
    """One model answers every item."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.spec = model.spec  # what the responses name as their model

    def __call__(self, items: list[Any]) -> list[dict[str, Any]]:
        outputs = self.model.run(items)
        return [self.model.answer(o, scores=True) for o in outputs]


class Cascade:
    """The small model answers items it is confident about (softmax probability >= ``threshold``); the
    rest go to the large model in one batch. Each answer says which stage gave it."""

    def __init__(self, small: ServedModel, large: ServedModel, threshold: float, metrics: ServeMetrics) -> None:
        if not 0 < threshold < 1:
            raise InvalidArgumentError("threshold", threshold, "must be between 0 and 1",
                                       "Use e.g. --threshold 0.9 (the small model's confidence to answer alone).")
        for m in (small, large):
            if m.task != "classification":
                raise InvalidArgumentError("cascade", m.spec, f"is a {m.task} model",
                                           "A cascade needs two classification models (the small one's confidence "
                                           "decides).")
        if small.kind != large.kind or small.n_features != large.n_features:
            raise InvalidArgumentError("cascade", f"{small.spec}:{large.spec}", "the two models take different inputs",
                                       "Cascade two models of the same input (text, or tensors of the same shape).")
        _same_classes("cascade", small, large)
        self.small, self.large, self.threshold, self.metrics = small, large, threshold, metrics
        self.model = small  # what validates inputs
        # responses name the pair, as --cascade gave it: an answer may come from either model
        self.spec = f"{small.spec}:{large.spec}"

    def __call__(self, items: list[Any]) -> list[dict[str, Any]]:
        answers = [self.small.answer(o, scores=True) | {"stage": "small"} for o in self.small.run(items)]
        hard = [i for i, a in enumerate(answers) if a["score"] < self.threshold]
        if hard:
            for i, o in zip(hard, self.large.run([items[i] for i in hard])):
                answers[i] = self.large.answer(o, scores=True) | {"stage": "large"}
        self.metrics.cascade_items.labels("small").inc(len(items) - len(hard))
        self.metrics.cascade_items.labels("large").inc(len(hard))
        return answers


def _same_classes(option: str, first: ServedModel, second: ServedModel) -> None:
    """Two classifiers whose answers are mixed or compared must mean the same class by each index."""
    if first.labels is not None and second.labels is not None and first.labels != second.labels:
        shown = ", ".join(first.labels[:6]), ", ".join(second.labels[:6])
        raise InvalidArgumentError(option, second.spec, f"names its classes {shown[1]} where {first.spec} has "
                                   f"{shown[0]}", "Pair models of one label set: a model and one compressed from it.")


def _agree(task: str, primary: dict[str, Any], shadow: dict[str, Any]) -> bool:
    if task == "classification":
        return bool(primary["index"] == shadow["index"])
    if task == "regression":
        return abs(primary["value"] - shadow["value"]) <= 1e-3 * max(1.0, abs(primary["value"]))
    a, b = np.asarray(primary["embedding"]), np.asarray(shadow["embedding"])
    cosine = float(a @ b / max(1e-12, float(np.linalg.norm(a) * np.linalg.norm(b))))
    return cosine >= 0.99


class Shadow:
    """Runs ``candidate`` on copies of the primary's batches on its own thread, after the answers are
    sent; compares. A full backlog (``max_pending`` batches) drops copies (counted); a failing candidate
    is counted and logged, never raised."""

    def __init__(self, candidate: ServedModel, primary: ServedModel, metrics: ServeMetrics, *,
                 max_pending: int = 64) -> None:
        primary_task = primary.task
        if candidate.task != primary_task:
            raise InvalidArgumentError("shadow", candidate.spec, f"is a {candidate.task} model; the primary is "
                                       f"{primary_task}", "Shadow a candidate for the same task.")
        if primary_task == "classification":
            _same_classes("shadow", primary, candidate)  # agreement compares class indices
        self.candidate, self.task, self.metrics = candidate, primary_task, metrics
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frugal-shadow")
        self._lock = threading.Lock()
        self.pending = 0
        self.counts = {"agree": 0, "disagree": 0, "error": 0, "dropped": 0}
        self.shadow_ms: list[float] = []
        self.primary_ms: list[float] = []

    def offer(self, items: list[Any], answers: list[dict[str, Any]], primary_seconds: float) -> None:
        with self._lock:
            if self.pending >= self.max_pending:
                self.counts["dropped"] += len(items)
                self.metrics.shadow.labels("dropped").inc(len(items))
                return
            self.pending += 1
        self._executor.submit(self._compare, items, answers, primary_seconds)

    def _compare(self, items: list[Any], answers: list[dict[str, Any]], primary_seconds: float) -> None:
        try:
            started = time.perf_counter()
            outputs = self.candidate.run(items)
            seconds = time.perf_counter() - started
            verdicts = [_agree(self.task, a, self.candidate.answer(o)) for a, o in zip(answers, outputs)]
            with self._lock:
                self.shadow_ms.append(1000 * seconds)
                self.primary_ms.append(1000 * primary_seconds)
                for v in verdicts:
                    self.counts["agree" if v else "disagree"] += 1
            self.metrics.shadow_latency.observe(seconds)
            self.metrics.shadow.labels("agree").inc(sum(verdicts))
            self.metrics.shadow.labels("disagree").inc(len(verdicts) - sum(verdicts))
        except Exception:  # noqa: BLE001 - a failing shadow must never reach the primary's answers
            with self._lock:
                first = self.counts["error"] == 0
                self.counts["error"] += len(items)
            # the first failure with its traceback; the rest are counted (metric frugal_shadow_total{outcome="error"})
            log.log(logging.WARNING if first else logging.DEBUG, "shadow %s failed on a batch of %d",
                    self.candidate.spec, len(items), exc_info=first)
            self.metrics.shadow.labels("error").inc(len(items))
        finally:
            with self._lock:
                self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            compared = self.counts["agree"] + self.counts["disagree"]
            return {"candidate": self.candidate.spec, **self.counts, "compared": compared,
                    "agreement": self.counts["agree"] / compared if compared else None,
                    "shadow_batch_ms_p50": statistics.median(self.shadow_ms) if self.shadow_ms else None,
                    "primary_batch_ms_p50": statistics.median(self.primary_ms) if self.primary_ms else None,
                    "batches": len(self.shadow_ms)}

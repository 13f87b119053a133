"""Active learning: which unlabelled rows to label next (`select`), and how many labels it saves
(`simulate_al`, on a labelled pool whose labels stay hidden until queried).

Strategies score each pool row from the model's predicted class probabilities p (rows x classes):

- ``uncertainty``: 1 - max p (least confident first);
- ``margin``: the gap between the two most likely classes, smallest first;
- ``entropy``: -sum p log p, largest first;
- ``bald``: mutual information between the prediction and the model's parameters, from T stochastic
  predictions (MC dropout for PyTorch models; for scikit-learn models, members of a bootstrap
  ensemble): H(mean p) - mean H(p);
- ``coreset``: k-center greedy on the features: each pick is the row farthest from everything labelled
  or picked so far (Sener & Savarese 2018);
- ``random``: uniform, the baseline every other strategy must beat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError

__all__ = ["STRATEGIES", "ALResult", "score_rows", "select_rows", "simulate_al"]

log = logging.getLogger(__name__)

STRATEGIES = ("uncertainty", "margin", "entropy", "bald", "coreset", "random")


def _entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=-1)


def score_rows(strategy: str, probs: np.ndarray | None = None, *, samples: np.ndarray | None = None) -> np.ndarray:
    """Informativeness of each row (higher = label it sooner) for the probability-based strategies.
    ``probs``: (rows, classes); ``samples``: (T, rows, classes) stochastic predictions, for ``bald``."""
    if strategy == "bald":
        if samples is None or samples.ndim != 3 or samples.shape[0] < 2:
            raise InvalidArgumentError("samples", None if samples is None else samples.shape,
                                       "bald needs at least 2 stochastic predictions (T, rows, classes)",
                                       "Use a model with dropout, or another strategy.")
        return _entropy(samples.mean(axis=0)) - _entropy(samples).mean(axis=0)
    if probs is None:
        raise InvalidArgumentError("probs", None, f"{strategy} needs predicted probabilities", "Pass probs.")
    if strategy == "uncertainty":
        return 1.0 - probs.max(axis=1)
    if strategy == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:]
        return -(top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        return _entropy(probs)
    raise InvalidArgumentError("strategy", strategy, "is not a probability-based strategy",
                               f"Use one of {', '.join(STRATEGIES)}.")


def _k_center(features: np.ndarray, labelled: np.ndarray, pool: np.ndarray, budget: int) -> np.ndarray:
    """k-center greedy: ``budget`` pool rows, each the farthest from the labelled and picked rows."""
    centers = features[labelled] if len(labelled) else features[pool[:1]]
    dist = np.full(len(pool), np.inf)
    for start in range(0, len(centers), 1024):
        block = centers[start:start + 1024]
        d = ((features[pool][:, None, :] - block[None, :, :]) ** 2).sum(-1).min(axis=1)
        dist = np.minimum(dist, d)
    picks = []
    for _ in range(min(budget, len(pool))):
        i = int(np.argmax(dist))
        picks.append(pool[i])
        dist = np.minimum(dist, ((features[pool] - features[pool[i]]) ** 2).sum(-1))
        dist[i] = -np.inf
    return np.array(picks, dtype=np.int64)


def select_rows(strategy: str, budget: int, *, pool: np.ndarray, probs: np.ndarray | None = None,
                samples: np.ndarray | None = None, features: np.ndarray | None = None,
                labelled: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """The ``budget`` pool rows to label next (indices into the data), most informative first.
    ``probs`` / ``samples`` are per pool row; ``features`` and ``labelled`` index the whole data."""
    from frugalml._validate import check_choice, check_positive_int

    check_choice(strategy, "strategy", STRATEGIES)
    check_positive_int(budget, "budget", maximum=10**9)
    pool = np.asarray(pool, dtype=np.int64)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(pool)[:budget]
    if strategy == "coreset":
        if features is None:
            raise InvalidArgumentError("features", None, "coreset needs the rows' features", "Pass features.")
        return _k_center(features, np.asarray(labelled if labelled is not None else [], dtype=np.int64), pool, budget)
    scores = score_rows(strategy, probs, samples=samples)
    return pool[np.argsort(-scores, kind="stable")[:budget]]


@dataclass
class ALResult:
    """Learning curves (labels -> test accuracy) per strategy and seed, and labels needed to reach
    ``target`` (a fraction of the full-data accuracy)."""

    full_accuracy: float
    target: float
    curves: dict[str, list[list[tuple[int, float]]]] = field(default_factory=dict)
    labels_needed: dict[str, list[int | None]] = field(default_factory=dict)

    def mean_labels_needed(self, strategy: str) -> float | None:
        values = self.labels_needed.get(strategy, [])
        return float(np.mean(values)) if values and all(v is not None for v in values) else None

    def savings(self, strategy: str, baseline: str = "random") -> float | None:
        """Fraction of the baseline's labels a strategy saves (0.4 = 40% fewer)."""
        a, b = self.mean_labels_needed(strategy), self.mean_labels_needed(baseline)
        return 1 - a / b if a is not None and b else None

    def to_dict(self) -> dict[str, Any]:
        return {"full_accuracy": self.full_accuracy, "target": self.target,
                "labels_needed": self.labels_needed,
                "mean_labels_needed": {s: self.mean_labels_needed(s) for s in self.labels_needed},
                "savings_vs_random": {s: self.savings(s) for s in self.labels_needed if s != "random"},
                "curves": {s: [[list(p) for p in c] for c in cs] for s, cs in self.curves.items()}}


def _bootstrap_samples(make: Callable[[], Any], x: np.ndarray, y: np.ndarray, x_pool: np.ndarray, n: int,
                       seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    out = []
    for _ in range(n):
        rows = rng.integers(0, len(y), len(y))
        if np.unique(y[rows]).size < classes.size:
            rows = np.r_[rows, [np.flatnonzero(y == c)[0] for c in classes]]
        m = make().fit(x[rows], y[rows])
        p = np.zeros((len(x_pool), classes.size))
        p[:, np.searchsorted(classes, m.classes_)] = m.predict_proba(x_pool)
        out.append(p)
    return np.stack(out)


def simulate_al(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                strategies: tuple[str, ...] = ("uncertainty", "margin", "entropy", "bald", "coreset", "random"),
                seeds: tuple[int, ...] = (0, 1, 2, 3, 4), initial: int = 20, batch: int = 10, max_labels: int = 600,
                target_fraction: float = 0.95, make_model: Callable[[], Any] | None = None,
                on_progress: Callable[[str], None] | None = None) -> ALResult:
    """Active learning on a labelled pool (labels hidden until queried): start from ``initial`` random
    labels, query ``batch`` rows per round by each strategy, retrain, and record test accuracy until
    ``max_labels``; labels needed = the first count reaching ``target_fraction`` of the accuracy with
    every label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    make = make_model or (lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)))
    progress = on_progress or (lambda message: None)
    full = float(make().fit(x, y).score(x_test, y_test))
    result = ALResult(full_accuracy=full, target=target_fraction * full)
    for strategy in strategies:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            labelled = rng.choice(len(y), size=initial, replace=False)
            curve: list[tuple[int, float]] = []
            needed = None
            while True:
                model = make().fit(x[labelled], y[labelled])
                acc = float(model.score(x_test, y_test))
                curve.append((len(labelled), acc))
                if needed is None and acc >= result.target:
                    needed = len(labelled)
                if len(labelled) >= max_labels or needed is not None:
                    break
                pool = np.setdiff1d(np.arange(len(y)), labelled)
                probs = samples = None
                if strategy in ("uncertainty", "margin", "entropy"):
                    probs = np.zeros((len(pool), np.unique(y).size))
                    probs[:, np.searchsorted(np.unique(y), model.classes_)] = model.predict_proba(x[pool])
                elif strategy == "bald":
                    samples = _bootstrap_samples(make, x[labelled], y[labelled], x[pool], 5, seed + len(labelled))
                picks = select_rows(strategy, batch, pool=pool, probs=probs, samples=samples, features=x,
                                    labelled=labelled, seed=seed * 7919 + len(labelled))
                labelled = np.r_[labelled, picks]
            result.curves.setdefault(strategy, []).append(curve)
            result.labels_needed.setdefault(strategy, []).append(needed)
            progress(f"{strategy} seed {seed}: {needed} labels")
    return result

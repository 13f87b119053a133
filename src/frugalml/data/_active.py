"""Active learning: which unlabelled rows to label next (`select`), and how many labels it saves
(`simulate_al`, on a labelled pool whose labels stay hidden until queried).

Strategies score each pool row from the model's predicted class probabilities p (rows x classes):

- ``uncertainty``: 1 - max p (least confident first);
- ``margin``: 1 - the gap between the two most likely classes (a small gap first);
- ``entropy``: -sum p log p, largest first;
- ``bald``: mutual information between the prediction and the model's parameters, from T stochastic
  predictions (your model's, e.g. T passes with dropout on, given as T probability files; or the quick
  model's bootstrap ensemble of 5 members): H(mean p) - mean H(p);
- ``coreset``: k-center greedy on the features: each pick is the row farthest from everything labelled
  or picked so far (Sener & Savarese 2018);
- ``random``: uniform, the baseline every other strategy must beat.

Without probabilities from the caller, the model is the quick model of :mod:`frugalml.data._quick`
(an RBF SVM on vectors, SGD logistic regression on text) fitted on the labelled rows. Measured on
zoo:digits (``benchmarks/data_active.py``): see docs/data.md.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError

__all__ = ["STRATEGIES", "ALResult", "Selection", "score_rows", "select", "select_rows", "simulate_al"]

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
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        return _entropy(probs)
    raise InvalidArgumentError("strategy", strategy, "is not a probability-based strategy",
                               f"Use one of {', '.join(STRATEGIES)}.")


def _k_center(features: np.ndarray, labelled: np.ndarray, pool: np.ndarray,
              budget: int) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy: ``budget`` pool rows, each the farthest from the labelled and picked rows, and
    each pick's squared distance to its nearest centre when picked."""
    x_pool = features[pool]
    centers = features[labelled] if len(labelled) else features[pool[:1]]
    dist = np.full(len(pool), np.inf)
    for start in range(0, len(centers), 256):  # (pool, 256, dims) at a time
        block = centers[start:start + 256]
        dist = np.minimum(dist, ((x_pool[:, None, :] - block[None, :, :]) ** 2).sum(-1).min(axis=1))
    picks, gaps = [], []
    for _ in range(min(budget, len(pool))):
        i = int(np.argmax(dist))
        picks.append(pool[i])
        gaps.append(float(dist[i]))
        dist = np.minimum(dist, ((x_pool - x_pool[i]) ** 2).sum(-1))
        dist[i] = -np.inf
    return np.array(picks, dtype=np.int64), np.array(gaps)


def select_rows(strategy: str, budget: int, *, pool: np.ndarray, probs: np.ndarray | None = None,
                samples: np.ndarray | None = None, features: np.ndarray | None = None,
                labelled: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``budget`` pool rows to label next (indices into the data), most informative first, and their
    scores (the strategy's; coreset: squared distance to the nearest centre when picked; random: NaN).
    ``probs`` / ``samples`` are per pool row; ``features`` and ``labelled`` index the whole data."""
    from frugalml._validate import check_choice, check_positive_int

    check_choice(strategy, "strategy", STRATEGIES)
    check_positive_int(budget, "budget", maximum=10**9)
    pool = np.asarray(pool, dtype=np.int64)
    if strategy == "random":
        picks = np.random.default_rng(seed).permutation(pool)[:budget]
        return picks, np.full(len(picks), np.nan)
    if strategy == "coreset":
        if features is None:
            raise InvalidArgumentError("features", None, "coreset needs the rows' features", "Pass features.")
        return _k_center(features, np.asarray(labelled if labelled is not None else [], dtype=np.int64), pool, budget)
    scores = score_rows(strategy, probs, samples=samples)
    order = np.argsort(-scores, kind="stable")[:budget]
    return pool[order], scores[order]


@dataclass
class Selection:
    """What :func:`select` chose: ``rows`` (0-based positions in the data) to label next, most informative
    first, with the strategy's ``scores`` and the model's ``predicted`` class (None for coreset/random)."""

    data: str
    strategy: str
    rows: list[int]
    scores: list[float]
    predicted: list[str | None]
    n_labelled: int
    n_unlabelled: int
    model: str

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "strategy": self.strategy, "n_labelled": self.n_labelled,
                "n_unlabelled": self.n_unlabelled, "model": self.model,
                "selected": [{"row": r, "score": None if np.isnan(s) else s, "predicted": p}
                             for r, s, p in zip(self.rows, self.scores, self.predicted)]}


def _read_probs(probs: Any, n_rows: int, pool: np.ndarray) -> np.ndarray:
    """One probability matrix (per data row or per unlabelled row) from an array or a .npy / .csv file."""
    from pathlib import Path

    name = str(probs) if isinstance(probs, (str, Path)) else "array"
    if isinstance(probs, (str, Path)):
        path = Path(probs)
        if not path.is_file():
            raise InvalidArgumentError("probs", name, "no such file", "Pass a .npy or .csv file of probabilities.")
        try:
            if path.suffix.lower() == ".npy":
                array = np.load(path, allow_pickle=False)
            else:
                import pandas as pd

                array = pd.read_csv(path).to_numpy(dtype=float)
        except (ValueError, OSError) as exc:
            raise InvalidArgumentError("probs", name, f"cannot be read ({type(exc).__name__}: {exc})",
                                       "Pass a .npy array or a CSV with one numeric column per class.") from None
    else:
        array = probs
    array = np.asarray(array, dtype=float)
    if array.ndim != 2 or array.shape[1] < 2 or array.shape[0] not in (n_rows, len(pool)):
        raise InvalidArgumentError("probs", f"{name} of shape {array.shape}", f"must be (rows, classes) with "
                                   f"{n_rows} rows (every row) or {len(pool)} (the unlabelled rows) and >= 2 classes",
                                   "Give one row of class probabilities per data row, in the data's order.")
    if not np.all(np.isfinite(array)) or array.min() < 0 or not np.allclose(array.sum(1), 1, atol=1e-3):
        raise InvalidArgumentError("probs", name, "holds values that are not probabilities (each row must be >= 0 "
                                   "and sum to 1)", "Pass softmax outputs, not logits.")
    return array[pool] if array.shape[0] == n_rows else array


def select(data: str | Any, *, label_column: str, strategy: str = "margin", budget: int = 100,
           text_column: str | None = None, probs: Any = None, seed: int = 0) -> Selection:
    """The ``budget`` unlabelled rows of ``data`` (a path, ``zoo:NAME`` or a Dataset; rows whose
    ``label_column`` is empty) to label next by ``strategy``.

    ``probs``: your model's class probabilities (an array, or a .npy / .csv path; per data row or per
    unlabelled row), or a list of several for ``bald`` (stochastic passes). Without them the quick model
    is fitted on the labelled rows.
    """
    from frugalml._validate import check_choice, check_positive_int
    from frugalml.data._quick import dense, labelled_data, predict_proba, quick_classifier, quiet
    from frugalml.datasets import Dataset, load_dataset
    from frugalml.errors import DataError

    check_choice(strategy, "strategy", STRATEGIES)
    check_positive_int(budget, "budget", maximum=10**9)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, text_column=text_column,
                                                                  label_column=label_column)
    ld = labelled_data(dataset)
    pool, labelled = ld.unlabelled, ld.labelled
    if len(pool) == 0:
        raise DataError("label_column", label_column, "has no empty labels, so there is nothing to choose from",
                        "Leave the label empty on the rows still to be labelled.")
    p = samples = None
    model = "none"
    if probs is not None and strategy in ("uncertainty", "margin", "entropy", "bald"):
        given = list(probs) if isinstance(probs, (list, tuple)) else [probs]
        arrays = [_read_probs(g, len(ld.y), pool) for g in given]
        if len({a.shape for a in arrays}) > 1:
            raise InvalidArgumentError("probs", [a.shape for a in arrays], "have different shapes",
                                       "Give every stochastic pass for the same rows and classes.")
        p, samples = arrays[0] if len(arrays) == 1 else np.mean(arrays, axis=0), np.stack(arrays)
        model = f"given ({len(arrays)} probability {'file' if len(arrays) == 1 else 'files'})"
    elif strategy in ("uncertainty", "margin", "entropy", "bald"):
        if len(np.unique(ld.y[labelled])) < 2:
            raise DataError("label_column", label_column, f"has {len(np.unique(ld.y[labelled]))} labelled classes; "
                            "the quick model needs at least 2", "Label a few rows of each class first, pass --probs "
                            "from your model, or use --strategy coreset or random.")
        est = quick_classifier(ld.kind, len(labelled), seed)
        model = type(est[-1] if hasattr(est, "steps") else est).__name__
        with quiet():
            fitted = est.fit(ld.x[labelled], ld.y[labelled])
        p = predict_proba(fitted, ld.x[pool], len(ld.classes))
        if strategy == "bald":
            samples = _bootstrap_samples(lambda: quick_classifier(ld.kind, len(labelled), seed), ld.x[labelled],
                                         ld.y[labelled], ld.x[pool], 5, seed, len(ld.classes))
            model += " (bootstrap ensemble of 5)"
    features = dense(ld.x, seed=seed) if strategy == "coreset" else None
    rows, scores = select_rows(strategy, budget, pool=pool, probs=p, samples=samples, features=features,
                               labelled=labelled, seed=seed)
    if p is not None:
        position = {int(r): i for i, r in enumerate(pool)}
        top = np.argmax(p, axis=1)
        names = ld.classes if p.shape[1] == len(ld.classes) else np.arange(p.shape[1]).astype(str)
        predicted: list[str | None] = [str(names[top[position[int(r)]]]) for r in rows]
    else:
        predicted = [None] * len(rows)
    log.info("select: %d of %d unlabelled rows by %s (%d labelled)", len(rows), len(pool), strategy, len(labelled))
    return Selection(str(dataset.name), strategy, [int(r) for r in rows], [float(v) for v in scores], predicted,
                     len(labelled), len(pool), model)


@dataclass
class ALResult:
    """Learning curves (labels -> test accuracy) per strategy and seed, and labels needed to reach
    ``target`` (``target_fraction`` of ``full_accuracy``, the accuracy with every label)."""

    full_accuracy: float
    target_fraction: float = 0.95
    config: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[list[tuple[int, float]]]] = field(default_factory=dict)
    labels_needed: dict[str, list[int | None]] = field(default_factory=dict)
    run_id: int | None = None
    seconds: float = 0.0

    @property
    def target(self) -> float:
        return self.target_fraction * self.full_accuracy

    def mean_labels_needed(self, strategy: str) -> float | None:
        """Mean over seeds; None when a seed never reached the target within ``max_labels``."""
        values = self.labels_needed.get(strategy, [])
        return float(np.mean(values)) if values and all(v is not None for v in values) else None

    def savings(self, strategy: str, baseline: str = "random") -> float | None:
        """Fraction of the baseline's labels a strategy saves (0.4 = 40% fewer)."""
        a, b = self.mean_labels_needed(strategy), self.mean_labels_needed(baseline)
        return 1 - a / b if a is not None and b else None

    def to_dict(self) -> dict[str, Any]:
        return {"full_accuracy": self.full_accuracy, "target": self.target, "target_fraction": self.target_fraction,
                "config": self.config, "labels_needed": self.labels_needed,
                "mean_labels_needed": {s: self.mean_labels_needed(s) for s in self.labels_needed},
                "savings_vs_random": {s: self.savings(s) for s in self.labels_needed if s != "random"},
                "curves": {s: [[list(p) for p in c] for c in cs] for s, cs in self.curves.items()},
                "run_id": self.run_id, "seconds": self.seconds}


def _bootstrap_samples(make: Callable[[], Any], x: Any, y: np.ndarray, x_pool: Any, n: int, seed: int,
                       n_classes: int) -> np.ndarray:
    """(n, pool rows, classes): predictions of ``n`` models fitted on bootstrap resamples of (x, y)."""
    from frugalml.data._quick import predict_proba, quiet

    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    out = []
    for _ in range(n):
        rows = rng.integers(0, len(y), len(y))
        if np.unique(y[rows]).size < classes.size:  # every class at least once, or the members disagree on classes
            rows = np.r_[rows, [np.flatnonzero(y == c)[0] for c in classes]]
        with quiet():
            member = make().fit(x[rows], y[rows])
        out.append(predict_proba(member, x_pool, n_classes))
    return np.stack(out)


def _simulate(x: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, *, kind: str, n_classes: int,
              strategies: tuple[str, ...], seeds: tuple[int, ...], initial: int, batch: int, max_labels: int,
              target_fraction: float, features: np.ndarray | None,
              progress: Callable[[int, int, str], None]) -> ALResult:
    from frugalml.data._quick import accuracy, predict_proba, quick_classifier, quiet

    def make(n_rows: int, seed: int) -> Any:
        return quick_classifier(kind, n_rows, seed)

    with quiet():
        full = accuracy(make(len(train), 0).fit(x[train], y[train]), x[test], y[test])
    result = ALResult(full_accuracy=full, target_fraction=target_fraction)
    total, done = len(strategies) * len(seeds), 0
    for strategy in strategies:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            labelled = rng.choice(train, size=initial, replace=False)  # the same start for every strategy
            curve: list[tuple[int, float]] = []
            needed = None
            while True:
                with quiet():
                    model = make(len(labelled), seed).fit(x[labelled], y[labelled])
                acc = accuracy(model, x[test], y[test])
                curve.append((len(labelled), acc))
                if needed is None and acc >= result.target:
                    needed = len(labelled)
                if len(labelled) >= max_labels or needed is not None or len(labelled) >= len(train):
                    break
                pool = np.setdiff1d(train, labelled)
                probs = samples = None
                if strategy in ("uncertainty", "margin", "entropy"):
                    probs = predict_proba(model, x[pool], n_classes)
                elif strategy == "bald":
                    samples = _bootstrap_samples(functools.partial(make, len(labelled), seed), x[labelled], y[labelled], x[pool],
                                                 5, seed + len(labelled), n_classes)
                picks, _ = select_rows(strategy, min(batch, max_labels - len(labelled)), pool=pool, probs=probs,
                                       samples=samples, features=features, labelled=labelled,
                                       seed=seed * 7919 + len(labelled))
                labelled = np.r_[labelled, picks]
            result.curves.setdefault(strategy, []).append(curve)
            result.labels_needed.setdefault(strategy, []).append(needed)
            done += 1
            progress(done, total, f"{strategy} seed {seed}: {needed if needed is not None else f'> {max_labels}'} labels")
            log.info("simulate-al: %s seed %d needs %s labels", strategy, seed, needed)
    return result


def simulate_al(data: str | Any, *, label_column: str, text_column: str | None = None, split_column: str | None = None,
                test_fraction: float = 0.25, strategies: tuple[str, ...] = STRATEGIES,
                seeds: tuple[int, ...] = (0, 1, 2, 3, 4), initial: int = 20, batch: int = 10, max_labels: int = 600,
                target_fraction: float = 0.95, store: str | None = None, record: bool = True,
                on_progress: Callable[[int, int, str], None] | None = None) -> ALResult:
    """Active learning on the labelled rows of ``data`` with their labels hidden until queried.

    Each (strategy, seed) starts from the same ``initial`` random labels, queries ``batch`` rows a round,
    refits the quick model and records test accuracy until it reaches ``target_fraction`` of the accuracy
    with every training label (or ``max_labels``). The test rows are the ``split_column == "test"`` rows,
    or a stratified ``test_fraction``. Recorded as a ``simulate-al`` run in the store unless ``record`` is
    False.
    """
    import time

    from frugalml._validate import check_choice, check_positive_int
    from frugalml.data._quick import dense, labelled_data, split_rows
    from frugalml.datasets import Dataset, load_dataset
    from frugalml.errors import DataError

    started = time.perf_counter()
    if not strategies:
        raise InvalidArgumentError("strategies", strategies, "is empty", f"Use some of {', '.join(STRATEGIES)}.")
    for s in strategies:
        check_choice(s, "strategy", STRATEGIES)
    if not seeds:
        raise InvalidArgumentError("seeds", seeds, "is empty", "Use e.g. 5 seeds.")
    for name, value in (("initial", initial), ("batch", batch), ("max_labels", max_labels)):
        check_positive_int(value, name, maximum=10**7)
    if not 0 < target_fraction <= 1:
        raise InvalidArgumentError("target_fraction", target_fraction, "must be in (0, 1]", "Use e.g. 0.95.")
    strategies = tuple(dict.fromkeys(strategies))
    if "random" not in strategies:
        strategies = (*strategies, "random")  # the baseline the savings are measured against
    dataset = data if isinstance(data, Dataset) else load_dataset(data, text_column=text_column,
                                                                  label_column=label_column)
    ld = labelled_data(dataset)
    train, test = split_rows(dataset, ld.labelled, ld.y, split_column=split_column, test_fraction=test_fraction,
                             seed=0)
    if initial >= len(train):
        raise InvalidArgumentError("initial", initial, f"must be below the {len(train)} training rows",
                                   "Use a smaller --initial.")
    if len(np.unique(ld.y[train])) < 2:
        raise DataError("label_column", label_column, "has fewer than 2 classes among the training rows",
                        "Simulate on a dataset with at least 2 classes.")
    config = {"data": str(dataset.name), "label_column": label_column, "text_column": dataset.text_column,
              "split_column": split_column, "test_fraction": test_fraction if split_column is None else None,
              "strategies": list(strategies), "seeds": list(seeds), "initial": initial, "batch": batch,
              "max_labels": max_labels, "target_fraction": target_fraction, "train_rows": int(len(train)),
              "test_rows": int(len(test)), "features": ld.kind}
    run = None
    if record:
        from frugalml.measure.env import fingerprint
        from frugalml.store import open_store

        run = open_store(store).start_run("simulate-al", name=str(dataset.name), config=config, env=fingerprint())
    from frugalml.store import Measurement, fail_on_error

    with fail_on_error(run):
        features = dense(ld.x) if "coreset" in strategies else None
        result = _simulate(ld.x, ld.y, train, test, kind=ld.kind, n_classes=len(ld.classes), strategies=strategies,
                           seeds=tuple(seeds), initial=initial, batch=batch, max_labels=max_labels,
                           target_fraction=target_fraction, features=features,
                           progress=on_progress or (lambda done, total, message: None))
        result.config = config
        result.seconds = time.perf_counter() - started
        if run is not None:
            result.run_id = run.id
            measurements = [Measurement("full_accuracy", result.full_accuracy, "fraction", source="all labels")]
            for s in strategies:
                mean = result.mean_labels_needed(s)
                if mean is not None:
                    measurements.append(Measurement("labels_needed", mean, "count", source=s))
            run.finish(result=result.to_dict(), measurements=measurements)
    return result

"""Data pruning: score each training example early in training and keep the informative fraction.

- ``el2n`` (Paul et al. 2021, "Deep Learning on a Data Diet"): the L2 norm of softmax(f(x)) - onehot(y),
  averaged over ``models`` networks each trained for only ``epochs`` (3 by default) from different seeds.
  Large = the network still gets it wrong or is unsure early: informative. Kept: the highest scores.
- ``forgetting`` (Toneva et al. 2019): one network is trained for ``epochs`` (20 by default) and the
  training set re-classified after each epoch; an example is forgotten each time it goes from right to
  wrong. Never-learned examples rank first, then by forgetting count; ties (most examples are never
  forgotten on easy data) are broken at random.
- ``random``: a seeded uniform sample, the baseline.

The scoring model and the model used to compare subsets are both the MLP of
:func:`frugalml.data._quick.train_mlp` on standardised features (text: a 256-dimensional truncated SVD
of hashed TF-IDF). ``evaluate`` trains that MLP on every kept subset, on random subsets of the same
size and on all rows, over several seeds, and reports test accuracy per fraction: the accuracy vs
fraction-kept curve the choice of ``keep`` needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError

__all__ = ["PRUNE_METHODS", "PruneResult", "prune_data", "score_examples"]

log = logging.getLogger(__name__)

PRUNE_METHODS = ("el2n", "forgetting", "random")
_DEFAULT_EPOCHS = {"el2n": 3, "forgetting": 20, "random": 0}


def score_examples(x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, method: str, n_classes: int,
                   epochs: int | None = None, models: int = 4, seed: int = 0) -> np.ndarray:
    """Informativeness of each of ``rows`` (higher = keep first); ``x`` standardised float32 features."""
    import torch

    from frugalml._validate import check_choice
    from frugalml.data._quick import train_mlp

    check_choice(method, "method", PRUNE_METHODS)
    epochs = _DEFAULT_EPOCHS[method] if epochs is None else epochs
    if method == "random":
        return np.random.default_rng(seed).random(len(rows))
    xt, yt = torch.as_tensor(x[rows]), torch.as_tensor(y[rows])
    if method == "el2n":
        onehot = torch.nn.functional.one_hot(yt, n_classes).float()
        total = np.zeros(len(rows))
        for m in range(models):
            model = train_mlp(x, y, rows, n_classes=n_classes, seed=seed * 1000 + m, epochs=epochs)
            with torch.no_grad():
                total += torch.linalg.vector_norm(torch.softmax(model(xt), 1) - onehot, dim=1).numpy()
        return total / models
    correct: list[np.ndarray] = []
    train_mlp(x, y, rows, n_classes=n_classes, seed=seed, epochs=epochs,
              after_epoch=lambda model: correct.append((model(xt).argmax(1) == yt).numpy()))
    history = np.stack(correct)  # (epochs, rows) booleans
    forgotten = (history[:-1] & ~history[1:]).sum(axis=0).astype(float)
    forgotten[~history.any(axis=0)] = epochs  # never learned: above any possible count
    tie = np.random.default_rng(seed).random(len(rows)) * 0.5  # < 1: breaks ties, never reorders counts
    return forgotten + tie


@dataclass
class PruneResult:
    """Scores per training row, the rows kept per fraction, and (when evaluated) test accuracy per
    fraction for the method, random subsets and all rows (mean and standard deviation over seeds)."""

    data: str
    method: str
    train_rows: list[int]
    scores: list[float]
    kept: dict[float, list[int]]
    config: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: int | None = None
    seconds: float = 0.0

    def to_dict(self, *, rows: bool = False) -> dict[str, Any]:
        """JSON-ready; the per-row scores and kept rows only with ``rows``."""
        doc: dict[str, Any] = {"data": self.data, "method": self.method, "config": self.config,
                               "train_rows": len(self.train_rows),
                               "kept_rows": {str(k): len(v) for k, v in self.kept.items()},
                               "accuracy": self.accuracy, "run_id": self.run_id, "seconds": self.seconds}
        if rows:
            doc["scores"] = dict(zip(map(str, self.train_rows), self.scores))
            doc["kept"] = {str(k): v for k, v in self.kept.items()}
        return doc


def _summary(values: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}


def prune_data(data: str | Any, *, label_column: str, method: str = "el2n", keep: float | Sequence[float] = 0.5,
               text_column: str | None = None, split_column: str | None = None, test_fraction: float = 0.25,
               epochs: int | None = None, models: int = 4, evaluate: bool = False, seeds: int = 5,
               train_epochs: int = 40, seed: int = 0, store: str | None = None, record: bool = True,
               on_progress: Callable[[int, int, str], None] | None = None) -> PruneResult:
    """Score the training rows of ``data`` by ``method`` and keep the top ``keep`` fraction(s).

    The training rows are the labelled rows outside the test set (``split_column == "test"``, or a
    stratified ``test_fraction``); with ``evaluate``, an MLP is trained for ``train_epochs`` on each kept
    subset, on a random subset of each size and on all training rows, with ``seeds`` seeds, and scored on
    the test rows. Recorded as a ``prune-data`` run in the store unless ``record`` is False.
    """
    from frugalml._validate import check_choice, check_positive_int
    from frugalml.data._quick import accuracy, dense, labelled_data, split_rows, train_mlp
    from frugalml.datasets import Dataset, load_dataset
    from frugalml.errors import DataError
    from frugalml.store import Measurement, fail_on_error

    started = time.perf_counter()
    check_choice(method, "method", PRUNE_METHODS)
    fractions = sorted({float(k) for k in ([keep] if isinstance(keep, (int, float)) else keep)})
    if not fractions or any(not 0 < k < 1 for k in fractions):
        raise InvalidArgumentError("keep", keep, "must be fractions strictly between 0 and 1", "Use e.g. 0.5.")
    if epochs is not None:
        check_positive_int(epochs, "epochs", maximum=10_000)
    for name, value in (("models", models), ("seeds", seeds), ("train_epochs", train_epochs)):
        check_positive_int(value, name, maximum=10_000)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, text_column=text_column,
                                                                  label_column=label_column)
    ld = labelled_data(dataset)
    train, test = split_rows(dataset, ld.labelled, ld.y, split_column=split_column, test_fraction=test_fraction,
                             seed=seed)
    if len(np.unique(ld.y[train])) < 2:
        raise DataError("label_column", label_column, "has fewer than 2 classes among the training rows",
                        "Prune a dataset with at least 2 classes.")
    if min(fractions) * len(train) < 1:
        raise InvalidArgumentError("keep", min(fractions), f"keeps no row of the {len(train)} training rows",
                                   "Use a larger fraction.")
    x = dense(ld.x, seed=seed).astype(np.float32)
    # standardised by the training rows' statistics; text SVD components share one scale (standardising
    # each would blow the near-zero-variance components up into noise as loud as the topics)
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-6
    if ld.kind == "text":
        std = np.full_like(std, float(x[train].std()) + 1e-6)
    x = ((x - mean) / std).astype(np.float32)
    y, n_classes = ld.y, len(ld.classes)
    config = {"data": str(dataset.name), "label_column": label_column, "text_column": dataset.text_column,
              "split_column": split_column, "method": method, "keep": fractions,
              "epochs": _DEFAULT_EPOCHS[method] if epochs is None else epochs, "models": models,
              "evaluate": evaluate, "seeds": seeds, "train_epochs": train_epochs, "seed": seed,
              "train_rows": int(len(train)), "test_rows": int(len(test))}
    progress = on_progress or (lambda done, total, message: None)
    run = None
    if record:
        from frugalml.measure.env import fingerprint
        from frugalml.store import open_store

        run = open_store(store).start_run("prune-data", name=str(dataset.name), config=config, env=fingerprint())
    with fail_on_error(run):
        progress(0, 1, f"scoring {len(train):,} rows by {method}")
        scores = score_examples(x, y, train, method=method, n_classes=n_classes, epochs=epochs, models=models,
                                seed=seed)
        order = train[np.argsort(-scores, kind="stable")]
        kept = {k: sorted(int(r) for r in order[:max(1, round(k * len(train)))]) for k in fractions}
        result = PruneResult(str(dataset.name), method, [int(r) for r in train], [float(s) for s in scores], kept,
                             config)
        measurements = []
        if evaluate:
            compared = (method,) if method == "random" else (method, "random")
            jobs = 1 + len(compared) * len(fractions)

            def fit_score(rows: np.ndarray, s: int) -> float:
                model = train_mlp(x, y, np.asarray(rows), n_classes=n_classes, seed=s, epochs=train_epochs)
                return accuracy(model, x[test], y[test])

            result.accuracy["all"] = {"1.0": _summary([fit_score(train, s) for s in range(seeds)])}
            done = 1
            progress(done, jobs, "all rows")
            # the baseline: a fresh random subset of the same size per seed (for method "random", the
            # method's own subset is that baseline, so it is not trained twice)
            for name in compared:
                result.accuracy[name] = {}
            for k, rows in kept.items():
                for name in compared:
                    if name == method:
                        subsets = [np.array(rows)] * seeds
                    else:
                        subsets = [np.random.default_rng(1000 + s).permutation(train)[:len(rows)] for s in range(seeds)]
                    result.accuracy[name][str(k)] = _summary([fit_score(sub, s) for s, sub in enumerate(subsets)])
                    measurements.append(Measurement(f"accuracy@{k:g}", result.accuracy[name][str(k)]["mean"],
                                                    "fraction", source=name))
                    done += 1
                    progress(done, jobs, f"{name} {k:.0%}")
            measurements.append(Measurement("accuracy@1", result.accuracy["all"]["1.0"]["mean"], "fraction",
                                            source="all"))
        result.seconds = time.perf_counter() - started
        if run is not None:
            result.run_id = run.id
            run.finish(result=result.to_dict(), measurements=measurements)
    log.info("prune-data: %s kept %s of %d rows (%.1f s)", method, {k: len(v) for k, v in kept.items()}, len(train),
             result.seconds)
    return result

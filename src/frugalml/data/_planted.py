"""Datasets with planted problems, built from the zoo's data, to measure what ``audit`` finds.

Each generator returns the frame and the truth: which rows are exact copies, near copies (and of
which row), and which labels were flipped. Used by ``benchmarks/data_audit.py`` and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Planted", "planted_digits", "planted_tabular", "planted_text"]


@dataclass
class Planted:
    frame: pd.DataFrame
    exact: set[int] = field(default_factory=set)  # rows that copy an earlier row exactly
    near: set[int] = field(default_factory=set)  # rows that copy an earlier row with small edits
    flipped: set[int] = field(default_factory=set)  # rows whose label was changed
    leaked: set[int] = field(default_factory=set)  # copies placed in the other split than their original


def planted_text(*, rows: int | None = None, dup_fraction: float = 0.05, near_fraction: float = 0.05,
                 seed: int = 0) -> Planted:
    """zoo:stdlib-docs sentences (deduplicated first), with copies appended: exact (case and spacing
    changed) and near (one word in every 12 dropped, at least one); the label is the source module."""
    from frugalml.datasets import load_dataset

    rng = np.random.default_rng(seed)
    data = load_dataset("zoo:stdlib-docs").frame
    base = data.assign(key=data["text"].str.casefold().str.split().str.join(" "))
    base = base[base["text"].str.split().str.len() >= 12].drop_duplicates("key").drop(columns="key")
    if rows is not None:
        base = base.sample(n=min(rows, len(base)), random_state=seed)
    base = base.reset_index(drop=True)[["text", "source", "split"]]
    base = _without_natural_near_duplicates(base)
    n = len(base)
    extra, exact, near, leaked = [], set(), set(), set()
    for i in rng.choice(n, size=int(dup_fraction * n), replace=False):
        row = base.iloc[i].to_dict()
        row["text"] = "  " + row["text"].upper() + " "
        exact.add(n + len(extra))
        extra.append(row)
    for i in rng.choice(n, size=int(near_fraction * n), replace=False):
        row = base.iloc[i].to_dict()
        words = row["text"].split()
        drop = set(rng.choice(len(words), size=max(1, len(words) // 12), replace=False).tolist())
        row["text"] = " ".join(w for k, w in enumerate(words) if k not in drop)
        near.add(n + len(extra))
        extra.append(row)
    _leak(extra, n, leaked, rng)
    return Planted(pd.concat([base, pd.DataFrame(extra)], ignore_index=True), exact=exact, near=near, leaked=leaked)


def _leak(extra: list[dict], n: int, leaked: set[int], rng: np.random.Generator) -> None:
    """Put every fourth copy (at random) in the other split: train/test leakage."""
    for k, row in enumerate(extra):
        if rng.random() < 0.25:
            row["split"] = "test" if row["split"] == "train" else "train"
            leaked.add(n + k)


def _without_natural_near_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """The corpus repeats itself (boilerplate docstrings): drop its own near duplicates before planting,
    so every near duplicate in the result is a planted one."""
    import tempfile
    from pathlib import Path

    from frugalml.data._audit import audit

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base.parquet"
        frame.to_parquet(path)
        found = audit(path, text_column="text", find_label_issues=False)
    drop = {r for r, _ in found.exact_duplicates} | {r for r, _, _ in found.near_duplicates}
    return frame.drop(index=sorted(drop)).reset_index(drop=True)


def planted_digits(*, dup_fraction: float = 0.05, near_fraction: float = 0.05, noise_fraction: float = 0.10,
                   seed: int = 0) -> Planted:
    """zoo:digits with copies appended (exact, and near: a quarter of the pixels moved by 1 of 16) and
    ``noise_fraction`` of the original rows' labels changed to another class."""
    from frugalml.datasets import load_dataset

    rng = np.random.default_rng(seed)
    data = load_dataset("zoo:digits")
    frame = data.frame
    features = frame[list(data.feature_columns)].to_numpy(dtype=np.float32)
    keep = np.unique(np.round(features, 6), axis=0, return_index=True)[1]  # start from distinct images
    base = frame.iloc[np.sort(keep)].reset_index(drop=True)
    label = data.label_column
    base = base[[*data.feature_columns, label, "split"]].rename(columns={label: "label"})
    n = len(base)
    flipped = set(rng.choice(n, size=int(noise_fraction * n), replace=False).tolist())
    labels = base["label"].to_numpy().copy()
    for i in flipped:
        labels[i] = rng.choice([c for c in range(10) if c != labels[i]])
    base["label"] = labels
    pixel = list(data.feature_columns)

    def nudge(row: dict) -> None:
        jitter = rng.choice([-1, 0, 0, 0, 0, 0, 0, 1], size=len(pixel))
        for c, j in zip(pixel, jitter):
            row[c] = float(np.clip(row[c] + j, 0, 16))

    return _with_copies(base, flipped, dup_fraction, near_fraction, nudge, rng)


def _with_copies(base: pd.DataFrame, flipped: set[int], dup_fraction: float, near_fraction: float,
                 perturb: Callable[[dict], None], rng: np.random.Generator) -> Planted:
    """``base`` with exact copies and near copies (``perturb`` edits a row in place) of rows whose label
    was not flipped appended, every fourth copy put in the other split."""
    n = len(base)
    extra, exact, near = [], set(), set()
    clean = sorted(set(range(n)) - flipped)  # copies of clean rows: their labels are right
    for i in rng.choice(clean, size=int(dup_fraction * n), replace=False):
        exact.add(n + len(extra))
        extra.append(base.iloc[i].to_dict())
    for i in rng.choice(clean, size=int(near_fraction * n), replace=False):
        row = base.iloc[i].to_dict()
        perturb(row)
        near.add(n + len(extra))
        extra.append(row)
    leaked: set[int] = set()
    _leak(extra, n, leaked, rng)
    return Planted(pd.concat([base, pd.DataFrame(extra)], ignore_index=True), exact=exact, near=near, flipped=flipped,
                   leaked=leaked)


def planted_tabular(*, dup_fraction: float = 0.05, near_fraction: float = 0.05, noise_fraction: float = 0.10,
                    jitter: float = 0.002, seed: int = 0) -> Planted:
    """scikit-learn's bundled breast-cancer table (569 rows, 30 measurements in their own units, from
    0.01 to 4,000; label 0/1, a seeded 80/20 split) with copies appended: exact, and near (every value
    multiplied by 1 + N(0, ``jitter``): a re-measurement or a rounding); ``noise_fraction`` of the
    original rows' labels flipped."""
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(seed)
    base = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    features = [c for c in base.columns if c != "label"]
    base["split"] = np.where(rng.random(len(base)) < 0.8, "train", "test")
    n = len(base)
    flipped = set(rng.choice(n, size=int(noise_fraction * n), replace=False).tolist())
    labels = base["label"].to_numpy().copy()
    labels[sorted(flipped)] = 1 - labels[sorted(flipped)]
    base["label"] = labels

    def remeasure(row: dict) -> None:
        for c, factor in zip(features, 1 + rng.normal(0, jitter, len(features))):
            row[c] = float(row[c] * factor)

    return _with_copies(base, flipped, dup_fraction, near_fraction, remeasure, rng)

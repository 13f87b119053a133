"""`audit(DATA)`: what is wrong with a dataset, found in one streaming pass plus targeted second looks.

- **exact duplicates**: a 64-bit BLAKE2b hash of each row's normalised content (text: case-folded,
  whitespace collapsed; vectors: the feature values) -> the first row with that hash;
- **near duplicates**: text rows get a MinHash signature (datasketch, character 5-grams, 64 permutations);
  signatures are banded as datasketch's LSH would band them for the threshold, but the bands are kept
  as numpy arrays and collisions found by sorting (datasketch's in-memory ``MinHashLSH`` keeps a Python
  set per bucket: tens of Python objects per row); each candidate pair is kept when its estimated
  Jaccard similarity reaches the threshold. Vector rows whose columns share one scale (at least 8
  columns, every column's standard deviation within 10x of their median: pixels, embeddings): cosine
  similarity to the most similar earlier row. Other numeric rows (tabular columns in their own units,
  or few of them) are standardised first, and cosine, blind to magnitude in a few dimensions and
  dominated by the largest unit, would call nearly every row a copy (it did for 567 of the 569
  rows of scikit-learn's breast-cancer table): a row copies an earlier one within a distance (RMS over
  the columns, in standard deviations) that rows of a column-shuffled copy of the data come within
  only 0.1% of the time, at most 0.1. Where the columns are so few or so discrete that shuffled rows
  come as close as copies (distance 0), only exact duplicates count, and a note says so;
- **leakage**: exact or near duplicates whose rows sit in different splits (train vs test);
- **label issues**: cleanlab's ``find_label_issues`` on out-of-fold predicted probabilities (5-fold:
  logistic regression by SGD on hashed word n-grams for text; an RBF SVM on the standardised features
  for vectors, logistic regression beyond 20,000 rows), or on probabilities the caller gives;
- **schema**: a declared schema (YAML: per column dtype, nullable, min, max, allowed values) checked
  with pandera on every chunk; missing values per column; class and group balance.

Memory stays bounded by the chunk size plus about 100 bytes per row (hashes, signatures' bands).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from frugalml.data._read import iter_chunks, open_source
from frugalml.errors import DataError, InvalidArgumentError

__all__ = ["AuditReport", "audit"]

NearMetric = Literal["auto", "jaccard", "cosine", "distance_sd"]
NEAR_METRICS: tuple[str, ...] = get_args(NearMetric)

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")


@dataclass
class AuditReport:
    """What :func:`audit` found. Row numbers are 0-based positions in the input.

    ``exact_duplicates`` / ``near_duplicates``: (row, the earlier row it repeats; for near ones also
    how close, by ``near_metric``: estimated Jaccard for text, cosine for vectors on one scale,
    distance in standard deviations for other numeric rows); ``leakage``: the
    subset of both whose two rows are in different splits; ``label_issues``: (row, given label,
    suggested label), most confident first.
    """

    data: str
    n_rows: int
    columns: list[str]
    text_column: str | None
    label_column: str | None
    split_column: str | None = None
    exact_duplicates: list[tuple[int, int]] = field(default_factory=list)
    near_duplicates: list[tuple[int, int, float]] = field(default_factory=list)
    leakage: list[tuple[int, int, str]] = field(default_factory=list)
    label_issues: list[tuple[int, Any, Any]] = field(default_factory=list)
    label_issues_checked: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    schema_failures: list[dict[str, Any]] = field(default_factory=list)
    class_balance: dict[str, int] = field(default_factory=dict)
    group_balance: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    near_metric: str = "jaccard"  # what near_duplicates' third value is: jaccard | cosine | distance_sd

    def rows_to_drop(self) -> set[int]:
        """What ``--write-clean`` removes: later copies of duplicates, and rows with label issues."""
        return ({r for r, _ in self.exact_duplicates} | {r for r, _, _ in self.near_duplicates}
                | {r for r, _, _ in self.label_issues})

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data, "n_rows": self.n_rows, "columns": self.columns, "text_column": self.text_column,
            "label_column": self.label_column, "split_column": self.split_column,
            "summary": {"exact_duplicates": len(self.exact_duplicates), "near_duplicates": len(self.near_duplicates),
                        "leakage": len(self.leakage), "label_issues": len(self.label_issues),
                        "schema_failures": sum(f["count"] for f in self.schema_failures),
                        "missing": sum(self.missing.values())},
            "exact_duplicates": [list(p) for p in self.exact_duplicates],
            "near_duplicates": [list(p) for p in self.near_duplicates],
            "leakage": [list(p) for p in self.leakage],
            "label_issues": [[int(r), _plain(g), _plain(s)] for r, g, s in self.label_issues],
            "label_issues_checked": self.label_issues_checked, "missing": self.missing,
            "schema_failures": self.schema_failures, "class_balance": self.class_balance,
            "group_balance": self.group_balance, "notes": self.notes, "seconds": self.seconds,
            "near_metric": self.near_metric,
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip()


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def _shingles(text: str, k: int = 5) -> list[bytes]:
    """Character k-grams of the normalised text (robust to a dropped or changed word, unlike word n-grams)."""
    data = text.encode()
    if len(data) <= k:
        return [data]
    return [data[i:i + k] for i in range(len(data) - k + 1)]


def _check_column_types(chunk: pd.DataFrame, column: str, role: str) -> None:
    values = chunk[column].dropna()
    if values.empty or values.dtype != object:
        return
    kinds = {type(v).__name__ for v in values.head(10_000)}
    numeric, textual = kinds & {"int", "float", "bool"}, kinds & {"str"}
    if numeric and textual:
        raise DataError(role, column, f"mixes numbers and text ({', '.join(sorted(kinds))})",
                        "Make the column one type (e.g. all labels as text) and run again.")


def audit(data: str | Path, *, text_column: str | None = None, label_column: str | None = None,
          group_column: str | None = None, split_column: str | None = None, schema: str | Path | None = None,
          near_threshold: float = 0.7, cosine_threshold: float = 0.995, near_metric: NearMetric = "auto",
          num_perm: int = 64, label_probs: np.ndarray | None = None, find_label_issues: bool = True,
          max_label_rows: int = 200_000, chunk_rows: int = 50_000, seed: int = 0,
          on_progress: Callable[[int, str], None] | None = None) -> AuditReport:
    """Audit ``data`` (CSV, TSV, Parquet, JSONL, a folder of .txt files, or ``zoo:NAME``); see the module
    docstring.

    ``text_column`` defaults to ``text`` when present; without one, every numeric column that is not the
    label, group or split is a feature of a vector row. A built-in dataset's declared text, label, group
    and split columns are used where none is given.

    ``near_metric`` says how near copies are compared: ``auto`` (the default) picks ``jaccard`` for text,
    and for vectors ``cosine`` where the columns share one scale, ``distance_sd`` otherwise (see the module
    docstring); ``cosine`` or ``distance_sd`` forces that rule on vector rows, for data the scale test
    misjudges (an embedding with a few dominant dimensions, a table of one unit).
    """
    import time

    from frugalml._validate import check_positive_int

    started = time.perf_counter()
    _require("datasketch")
    if label_column and (find_label_issues or label_probs is not None):
        _require("cleanlab")
    if schema is not None:
        _require("pandera")
    source = open_source(data)
    # A built-in dataset's declared columns stand in for the ones not named (as load_dataset does).
    text_column = text_column or source.roles.get("text_column")
    label_column = label_column or source.roles.get("label_column")
    group_column = group_column or source.roles.get("group_column")
    split_column = split_column or source.roles.get("split_column")
    for column, role in ((text_column, "text_column"), (label_column, "label_column"),
                         (group_column, "group_column"), (split_column, "split_column")):
        source.require(column, role)
    if text_column is None and "text" in source.columns:
        text_column = "text"
    if not 0 < near_threshold <= 1:
        raise InvalidArgumentError("near_threshold", near_threshold, "must be in (0, 1]", "Use e.g. 0.8.")
    if not 0 < cosine_threshold <= 1:
        raise InvalidArgumentError("cosine_threshold", cosine_threshold, "must be in (0, 1]", "Use e.g. 0.995.")
    if near_metric not in NEAR_METRICS:
        raise InvalidArgumentError("near_metric", near_metric, f"must be one of {', '.join(NEAR_METRICS)}",
                                   "Use auto unless the automatic choice is wrong for your data.")
    if text_column and near_metric in ("cosine", "distance_sd"):
        raise InvalidArgumentError("near_metric", near_metric, f"applies to numeric feature rows, but the text "
                                   f"column {text_column!r} is audited", "Use auto or jaccard for text.")
    if not text_column and near_metric == "jaccard":
        raise InvalidArgumentError("near_metric", near_metric, "applies to text, but there is no text column: the "
                                   "rows are numeric feature vectors",
                                   "Use auto, cosine or distance_sd, or name the text column (--text-column).")
    check_positive_int(chunk_rows, "chunk_rows", maximum=10_000_000)
    check_positive_int(num_perm, "num_perm", maximum=1024)
    progress = on_progress or (lambda rows, message: None)
    report = AuditReport(str(data), 0, list(source.columns), text_column, label_column, split_column=split_column)
    constraint = _load_schema(schema) if schema is not None else None

    first_seen: dict[int, int] = {}
    bands: list[np.ndarray] = []  # per chunk: (rows, b) uint64 band hashes
    signatures: list[np.ndarray] = []  # per chunk: (rows, num_perm) uint32 MinHash values
    vectors: list[np.ndarray] = []
    splits: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    sample = _Reservoir(max_label_rows, seed)  # (row, text) kept for the label model: bounded memory
    class_counts: Counter = Counter()
    group_counts: Counter = Counter()
    missing: Counter = Counter()
    blank: set[int] = set()  # rows whose text is missing or empty: left out of duplicate search
    feature_columns: list[str] | None = None
    from datasketch import MinHash
    from datasketch.lsh import _optimal_param

    # bands favour recall (false-negative weight 0.9): every candidate pair is verified on its signatures
    b, r = _optimal_param(near_threshold, num_perm, 0.1, 0.9)
    for chunk in iter_chunks(source, chunk_rows=chunk_rows):
        rows = chunk["_row"].to_numpy()
        report.n_rows += len(chunk)
        for column in source.columns:
            n_missing = int(chunk[column].isna().sum())
            if n_missing:
                missing[column] += n_missing
        if label_column:
            _check_column_types(chunk, label_column, "label_column")
            class_counts.update(map(str, chunk[label_column].dropna()))
            labels.append(chunk[label_column].to_numpy())
        if group_column:
            group_counts.update(map(str, chunk[group_column].dropna()))
        splits.append(chunk[split_column].astype(str).to_numpy() if split_column else np.full(len(chunk), ""))
        if constraint is not None:
            report.schema_failures.extend(_check_schema(constraint, chunk))
        if text_column:
            _check_column_types(chunk, text_column, "text_column")
            texts = [_normalise(str(t)) if isinstance(t, str) else "" for t in chunk[text_column]]
            # an empty text is missing, not a duplicate of every other empty one (it was: 'row 123
            # repeats row 122' for two blank rows)
            empty = [i for i, t in enumerate(texts) if not t]
            blank.update(int(rows[i]) for i in empty)
            empty_strings = sum(1 for i in empty if isinstance(chunk[text_column].iloc[i], str))
            if empty_strings:
                missing[text_column] += empty_strings
            keys = [t.encode() if t else None for t in texts]
            # MinHash in slices: a chunk's shingles at once would be millions of small bytes objects
            sig = np.concatenate([np.array([m.hashvalues for m in MinHash.bulk(
                [_shingles(t) for t in texts[i:i + 2000]], num_perm=num_perm, seed=seed)], dtype=np.uint64)
                .astype(np.uint32) for i in range(0, len(texts), 2000)])
            signatures.append(sig)
            bands.append(np.stack([_band_hash(sig[:, i * r:(i + 1) * r]) for i in range(b)], axis=1))
            if label_column:
                sample.offer(rows, texts)
        else:
            if feature_columns is None:
                skip = {label_column, group_column, split_column, "_row"}
                feature_columns = [c for c in chunk.columns if c not in skip and pd.api.types.is_numeric_dtype(chunk[c])]
                if not feature_columns:
                    raise DataError("text_column", None, "is not given and the data has no numeric feature columns",
                                    f"Pass --text-column (columns: {', '.join(source.columns)}).")
            matrix = chunk[feature_columns].to_numpy(dtype=np.float32, na_value=np.nan)
            vectors.append(matrix)
            keys = [row.tobytes() for row in np.round(matrix, 6)]
        for row, key in zip(rows, keys):
            if key is None:
                continue
            h = _hash64(key)
            earlier = first_seen.setdefault(h, int(row))
            if earlier != row:
                report.exact_duplicates.append((int(row), earlier))
        progress(report.n_rows, f"{report.n_rows:,} rows read")

    log.info("audit: %d rows read, %d exact duplicates (%.1f s)", report.n_rows, len(report.exact_duplicates),
             time.perf_counter() - started)
    progress(report.n_rows, "looking for near duplicates")
    split_of = np.concatenate(splits)
    exact = {r for r, _ in report.exact_duplicates}
    if text_column:
        sig_all, bands_all = np.concatenate(signatures), np.concatenate(bands)
        signatures.clear()
        bands.clear()
        report.near_duplicates = _near_text(sig_all, bands_all, near_threshold, exact, blank)
        del sig_all, bands_all
    else:
        x = np.concatenate(vectors)
        automatic = "cosine" if _share_one_scale(x) else "distance_sd"
        if near_metric != "auto":
            report.notes.append(f"near duplicates: compared by {near_metric}, as asked (near_metric); the automatic "
                                f"choice for these columns is {automatic}")
        if (automatic if near_metric == "auto" else near_metric) == "cosine":
            report.near_metric = "cosine"
            report.near_duplicates = _near_vectors(x, cosine_threshold, exact)
        else:
            report.near_metric = "distance_sd"
            report.near_duplicates, radius = _near_rows(x, exact, seed=seed)
            named = [str(c) for c in feature_columns or []]
            columns = ", ".join(named[:4]) + (f", ... ({len(named)} in all)" if len(named) > 4 else "")
            if radius == 0:
                report.notes.append("near duplicates: not told apart from chance here. The feature "
                                    f"columns ({columns}) are so few or so discrete that rows of a column-shuffled "
                                    "copy come as close as copies would; only exact duplicates are reported")
            else:
                report.notes.append(f"near duplicates: feature columns ({columns}) standardised (not on one scale); "
                                    f"a near copy is within {radius:.3g} standard deviations (RMS over the columns), "
                                    "closer than 99.9% of rows of a column-shuffled copy come to each other")
    for r_, e in report.exact_duplicates:
        if split_of[r_] != split_of[e]:
            report.leakage.append((r_, e, f"exact: {split_of[e]} / {split_of[r_]}"))
    for r_, e, s in report.near_duplicates:
        if split_of[r_] != split_of[e]:
            report.leakage.append((r_, e, f"near ({s:.2f}): {split_of[e]} / {split_of[r_]}"))
    log.info("audit: %d near duplicates (%.1f s)", len(report.near_duplicates), time.perf_counter() - started)
    report.missing = dict(missing)
    report.class_balance = dict(class_counts.most_common())
    report.group_balance = dict(group_counts.most_common())
    if label_column and (find_label_issues or label_probs is not None):
        progress(report.n_rows, "looking for label issues")
        y = np.concatenate(labels)
        if text_column:
            rows_, texts_ = sample.items()
            rows_, features = rows_, texts_
        else:
            rows_, features = None, np.concatenate(vectors)
        _label_issues(report, features, y, bool(text_column), label_probs, max_label_rows, seed, sampled_rows=rows_)
        log.info("audit: %d label issues (%.1f s)", len(report.label_issues), time.perf_counter() - started)
    if len(class_counts) > 1:
        counts = list(class_counts.values())
        if max(counts) > 10 * min(counts):
            report.notes.append(f"class imbalance: the largest class has {max(counts) / min(counts):.0f}x the rows of "
                                "the smallest")
    report.seconds = time.perf_counter() - started
    return report


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise InvalidArgumentError("data", module, f"{module} is not installed", "Run: pip install 'frugalml[data]'.")


def _band_hash(block: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of a band of MinHash values (FNV-style mixing, vectorised)."""
    h = np.full(block.shape[0], 1469598103934665603, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(block.shape[1]):
            h = (h ^ block[:, j].astype(np.uint64)) * np.uint64(1099511628211)
    return h


def _near_text(sig: np.ndarray, bands: np.ndarray, threshold: float, exact: set[int],
               blank: set[int]) -> list[tuple[int, int, float]]:
    """Pairs (later row, earlier row, estimated Jaccard) whose band hashes collide in any band and whose
    signatures agree on at least ``threshold`` of their permutations; each later row once, with its
    most similar earlier row. Rows in ``exact`` (already exact duplicates) are not reported again, rows
    in ``blank`` (no text) on neither side."""
    best: dict[int, tuple[int, float]] = {}
    n = sig.shape[0]
    for j in range(bands.shape[1]):
        order = np.argsort(bands[:, j], kind="stable")
        keys = bands[order, j]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], n]
        shared = ends - starts >= 2  # buckets with more than one row: the only ones that hold pairs
        for s, e in zip(starts[shared], ends[shared]):
            members = np.sort(order[s:e])
            if len(members) > 200:  # a huge bucket (empty or boilerplate text): each row against the first only
                sims = np.mean(sig[members[1:]] == sig[members[0]], axis=1)
                pairs = [(int(m), int(members[0]), float(v)) for m, v in zip(members[1:], sims)]
            else:
                block = sig[members]
                sims = np.mean(block[:, None, :] == block[None, :, :], axis=2)  # (m, m) signature agreement
                np.fill_diagonal(sims, -1.0)
                sims = np.tril(sims, -1) - np.triu(np.ones_like(sims))  # only earlier rows (lower triangle)
                k = np.argmax(sims, axis=1)
                pairs = [(int(members[i]), int(members[k[i]]), float(sims[i, k[i]])) for i in range(1, len(members))]
            for later, earlier, sim in pairs:
                if later in exact or later in blank or earlier in blank:
                    continue
                if sim >= threshold and sim > best.get(later, (0, -1.0))[1]:
                    best[later] = (earlier, sim)
    return sorted((r, e, s) for r, (e, s) in best.items())


SHARED_SCALE_COLUMNS, SHARED_SCALE_SPREAD = 8, 10.0


def _share_one_scale(x: np.ndarray) -> bool:
    """Whether the columns look like one measurement (pixels, an embedding's dimensions): at least
    ``SHARED_SCALE_COLUMNS`` non-constant columns, none with a standard deviation over
    ``SHARED_SCALE_SPREAD`` times their median (zoo:digits: 1.5x; breast cancer's `worst area` vs its
    median column: 7,800x). Rare pixels' small deviations are fine: it is the largest that dominates."""
    sd = np.nanstd(x.astype(np.float64), axis=0)
    sd = sd[sd > 0]
    return len(sd) >= SHARED_SCALE_COLUMNS and float(sd.max()) <= SHARED_SCALE_SPREAD * float(np.median(sd))


def _near_rows(x: np.ndarray, exact: set[int], *, seed: int, cap: float = 0.1,
               chance: float = 0.001) -> tuple[list[tuple[int, int, float]], float]:
    """Near copies among standardised rows: (later row, its nearest earlier row within the radius,
    distance in standard deviations, RMS over the columns), and the radius: the ``chance`` quantile of
    nearest-neighbour distances in a copy whose columns are shuffled independently (each column's
    values and ties kept, rows' joint values broken, so no row there copies another), at most ``cap``.

    The quantile calibrates to the data: with 30 continuous columns shuffled rows are far apart and the
    cap decides; with two columns and thousands of rows they are close, and only far closer pairs count."""
    from sklearn.neighbors import NearestNeighbors

    z = x.astype(np.float64)
    mean, sd = np.nanmean(z, axis=0), np.nanstd(z, axis=0)
    varying = sd > 0
    z = np.nan_to_num((z[:, varying] - mean[varying]) / sd[varying])  # a missing value sits at the mean
    if len(z) < 3 or z.shape[1] == 0:
        return [], 0.0
    z /= np.sqrt(z.shape[1])  # Euclidean distance is now the RMS over columns, in standard deviations
    rng = np.random.default_rng(seed)
    originals = np.array([i for i in range(len(z)) if i not in exact])
    if len(originals) < 3:  # (almost) every row an exact copy: nothing left to calibrate on
        return [], 0.0
    shuffled = np.column_stack([rng.permutation(z[originals, j]) for j in range(z.shape[1])])
    null, _ = NearestNeighbors(n_neighbors=2).fit(shuffled).kneighbors(shuffled)
    radius = min(cap, float(np.quantile(null[:, 1], chance)))
    if radius <= 0:
        return [], 0.0
    distances, neighbours = NearestNeighbors().fit(z).radius_neighbors(z, radius=radius, sort_results=True)
    out = []
    for row, (d, j) in enumerate(zip(distances, neighbours)):
        earlier = j < row
        if row not in exact and earlier.any():
            out.append((row, int(j[earlier][0]), float(d[earlier][0])))
    return out, radius


def _near_vectors(x: np.ndarray, threshold: float, exact: set[int], block: int = 4096) -> list[tuple[int, int, float]]:
    """Each row's most similar earlier row by cosine, kept at or above ``threshold`` (blocked matmul)."""
    x = np.nan_to_num(x.astype(np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.maximum(norms, 1e-12)
    out = []
    for start in range(0, len(unit), block):
        rows = unit[start:start + block]
        sims = rows @ unit[: start + len(rows)].T  # against every earlier row (and this block)
        for i in range(len(rows)):
            row = start + i
            if row in exact or row == 0:
                continue
            earlier = sims[i, :row]
            j = int(np.argmax(earlier))
            if earlier[j] >= threshold:
                out.append((row, j, float(earlier[j])))
    return out


class _Reservoir:
    """A uniform sample of at most ``k`` (row, item) pairs from a stream (Algorithm R, seeded)."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.seen = k, 0
        self.rng = np.random.default_rng(seed)
        self.rows: list[int] = []
        self.values: list[Any] = []

    def offer(self, rows: np.ndarray, values: list[Any]) -> None:
        for row, value in zip(rows, values):
            if len(self.rows) < self.k:
                self.rows.append(int(row))
                self.values.append(value)
            else:
                j = int(self.rng.integers(0, self.seen + 1))
                if j < self.k:
                    self.rows[j], self.values[j] = int(row), value
            self.seen += 1

    def items(self) -> tuple[np.ndarray, list[Any]]:
        order = np.argsort(self.rows)
        return np.array(self.rows, dtype=np.int64)[order], [self.values[i] for i in order]


def _label_issues(report: AuditReport, features: Any, y: np.ndarray, is_text: bool, probs: np.ndarray | None,
                  max_rows: int, seed: int, *, sampled_rows: np.ndarray | None = None) -> None:
    """``features``: per row of the input (vectors), or per row of ``sampled_rows`` (texts, a reservoir)."""
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import cross_val_predict

    labelled = pd.notna(y)
    if sampled_rows is not None:
        keep = sampled_rows[labelled[sampled_rows]]
        by_row = dict(zip(sampled_rows.tolist(), features))
        features = by_row
    else:
        keep = np.flatnonzero(labelled)
        if len(keep) > max_rows:
            keep = np.sort(np.random.default_rng(seed).choice(keep, size=max_rows, replace=False))
    if len(keep) < int(labelled.sum()):
        report.notes.append(f"label issues checked on a seeded sample of {len(keep):,} of {int(labelled.sum()):,} "
                            "labelled rows")
    classes, y_idx = np.unique(y[keep].astype(str), return_inverse=True)
    if len(classes) < 2:
        report.notes.append("label issues not checked: fewer than 2 classes")
        return
    if probs is None:
        counts = np.bincount(y_idx)
        folds = int(min(5, counts.min()))
        if folds < 2:
            report.notes.append("label issues not checked: a class has a single row")
            return
        from frugalml.data._quick import quick_classifier, quiet, text_features

        # Text is vectorised once (hashing is stateless; the IDF weights use no labels), then each fold
        # fits SGD logistic regression: seconds where re-vectorising per fold, or L-BFGS over 2^18
        # features, took minutes
        x = text_features([features[i] for i in keep]) if is_text else np.nan_to_num(features[keep])
        model = quick_classifier("text" if is_text else "vectors", len(keep), seed)
        with quiet():
            probs = cross_val_predict(model, x, y_idx, cv=folds, method="predict_proba")
    else:
        probs = np.asarray(probs, dtype=float)
        if probs.shape != (len(y), len(classes)):
            raise InvalidArgumentError("label_probs", f"shape {probs.shape}", f"must be (rows, classes) = "
                                       f"({len(y)}, {len(classes)})", "Give one probability per row and class, "
                                       "classes in sorted order.")
        probs = probs[keep]
    ranked = find_label_issues(y_idx, probs, return_indices_ranked_by="self_confidence")
    report.label_issues_checked = len(keep)
    report.label_issues = [(int(keep[i]), classes[y_idx[i]], classes[int(np.argmax(probs[i]))]) for i in ranked]


# ----------------------------------------------------------------------------- schema
def _load_schema(path: str | Path) -> Any:
    """A pandera DataFrameSchema from YAML: ``columns: {name: {dtype, nullable, min, max, isin}}``."""
    import pandera.pandas as pa
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError("schema", str(path), "is not a file", "Pass a YAML schema (see docs/data.md).")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InvalidArgumentError("schema", str(path), f"is not valid YAML ({exc})", "Fix the YAML.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        raise InvalidArgumentError("schema", str(path), "needs a 'columns' mapping",
                                   "Write columns: {name: {dtype: int, nullable: false, min: 0, max: 16}}.")
    columns = {}
    for name, spec in raw["columns"].items():
        spec = spec or {}
        unknown = set(spec) - {"dtype", "nullable", "min", "max", "isin"}
        if unknown:
            raise InvalidArgumentError(f"schema.columns.{name}", sorted(unknown)[0], "is not a known key",
                                       "Use dtype, nullable, min, max, isin.")
        checks = []
        if "min" in spec:
            checks.append(pa.Check.ge(spec["min"]))
        if "max" in spec:
            checks.append(pa.Check.le(spec["max"]))
        if "isin" in spec:
            checks.append(pa.Check.isin(spec["isin"]))
        try:
            columns[name] = pa.Column(spec.get("dtype"), checks=checks, nullable=bool(spec.get("nullable", True)),
                                      coerce=False)
        except (TypeError, ValueError) as exc:  # an unknown dtype name, a check of the wrong kind
            raise InvalidArgumentError(f"schema.columns.{name}", spec, f"is not a valid column schema ({exc})",
                                       "Use a dtype such as int64, float64, str, bool, and numbers for min / max.") from None
    return pa.DataFrameSchema(columns, strict=False)


def _check_schema(schema: Any, chunk: pd.DataFrame) -> list[dict[str, Any]]:
    import pandera.errors

    try:
        schema.validate(chunk, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        out = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False):
            rows = [int(chunk["_row"].iloc[i]) for i in group["index"].dropna().astype(int) if i < len(chunk)]
            out.append({"column": str(column), "check": str(check), "count": int(len(group)), "rows": rows[:10]})
        return out
    return []


# ----------------------------------------------------------------------------- cleaned export
def write_clean(report: AuditReport, out: str | Path, *, overwrite: bool = False, chunk_rows: int = 50_000) -> int:
    """Write the input without the rows :meth:`AuditReport.rows_to_drop` names, as CSV, TSV, Parquet or
    JSONL (by ``out``'s extension), streamed and atomically; the input is never modified. Returns rows
    written."""
    from frugalml.data._read import FORMATS

    source = open_source(report.data)
    target = Path(out)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InvalidArgumentError("write_clean", str(out), f"has an unsupported extension {target.suffix!r}",
                                   "Use .csv, .tsv, .parquet or .jsonl.")
    if source.format != "zoo" and target.resolve() == source.path.resolve():
        raise InvalidArgumentError("write_clean", str(out), "is the input file", "Write the cleaned copy elsewhere.")
    if target.exists() and not overwrite:
        raise InvalidArgumentError("write_clean", str(out), "exists", "Choose a new path, or pass --overwrite.")
    drop = report.rows_to_drop()
    tmp = target.with_name(f".{target.name}.partial")
    written = 0
    writer = None
    try:
        with open(tmp, "wb") as handle:
            for i, chunk in enumerate(iter_chunks(source, chunk_rows=chunk_rows)):
                kept = chunk[~chunk["_row"].isin(drop)].drop(columns="_row")
                written += len(kept)
                if fmt in ("csv", "tsv"):
                    kept.to_csv(handle, index=False, header=i == 0, sep="\t" if fmt == "tsv" else ",")
                elif fmt == "jsonl":
                    handle.write(kept.to_json(orient="records", lines=True).encode())
                else:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(kept, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(handle, table.schema)
                    writer.write_table(table.cast(writer.schema))
            if writer is not None:
                writer.close()
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return written

"""The quick models behind the data commands, and the features they read.

Label issues (`audit`), active learning (`select`, `simulate-al`) and data pruning (`prune-data`) each
need a model trained in seconds on the user's rows, not the user's production model. One set lives here
so the commands agree:

- features: numeric columns as float32 vectors (missing values -> 0); text as TF-IDF over hashed word
  1-2-grams (stateless hashing, 2^18 columns, sparse), or its 256-dimensional truncated SVD where a
  dense matrix is needed (k-center coresets, the pruning MLP);
- :func:`quick_classifier`: an RBF SVM with libsvm's probabilities on standardised vectors (up to
  20,000 rows; kernel SVMs grow quadratically), logistic regression beyond, and logistic regression by
  SGD on text;
- :func:`train_mlp`: a one-hidden-layer PyTorch MLP (256 units, AdamW, one-cycle schedule) for the
  methods that score examples during training (EL2N, forgetting events).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from frugalml.datasets import Dataset
from frugalml.errors import DataError, InvalidArgumentError

__all__ = ["LabelledData", "accuracy", "dense", "labelled_data", "predict_proba", "quick_classifier", "quiet",
           "split_rows", "text_features", "train_mlp"]

SVM_MAX_ROWS = 20_000


def text_features(texts: list[str]) -> Any:
    """TF-IDF of hashed word 1-2-grams: a sparse (rows, 2^18) matrix. No vocabulary is fitted, so rows
    vectorised separately share columns; the IDF weights use no labels."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    hashed = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False).transform(texts)
    return TfidfTransformer().fit_transform(hashed)


def dense(x: Any, *, dims: int = 256, seed: int = 0) -> np.ndarray:
    """A dense float32 matrix: vectors as they are, sparse text features by truncated SVD to ``dims``."""
    if isinstance(x, np.ndarray):
        return x
    from sklearn.decomposition import TruncatedSVD

    k = max(1, min(dims, x.shape[0] - 1, x.shape[1] - 1))
    return TruncatedSVD(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def quick_classifier(kind: str, n_rows: int, seed: int) -> Any:
    """An unfitted scikit-learn classifier with ``predict_proba`` for ``kind`` "text" or "vectors"."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "text":
        return SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=30, tol=1e-4, random_state=seed)
    if n_rows > SVM_MAX_ROWS:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    from sklearn.svm import SVC

    # libsvm's own probabilities (pairwise coupling): on planted digits label noise, cleanlab's precision
    # was 0.92 with them, 0.63 with logistic regression and 0.59-0.65 with CalibratedClassifierCV(SVC)
    # (one-vs-rest sigmoids, scikit-learn's suggested replacement); for active learning on digits they
    # also gave the largest label savings. scikit-learn 1.9 deprecates probability=True (removal planned
    # for 1.11): fits run under `quiet()`, and the replacement is used where the parameter is gone.
    try:
        svc: Any = SVC(probability=True, random_state=seed)
    except TypeError:
        from sklearn.calibration import CalibratedClassifierCV

        svc = CalibratedClassifierCV(SVC(random_state=seed), cv=3)
    return make_pipeline(StandardScaler(), svc)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence scikit-learn's deprecation warning for SVC(probability=True) (see quick_classifier), and
    the text model's ConvergenceWarning: its 30 SGD epochs are a time cap chosen on purpose (a quick
    model ranks rows; it need not converge), so the warning would only print on every command."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        yield


def predict_proba(model: Any, x: Any, n_classes: int) -> np.ndarray:
    """(rows, n_classes) probabilities from a model fitted on class indices, some possibly unseen (0)."""
    out = np.zeros((x.shape[0], n_classes))
    with quiet():
        out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
    return out


class LabelledData:
    """A dataset's features (``x``: float32 vectors or sparse text features), class indices ``y`` (-1 for
    unlabelled rows) and class names ``classes`` (sorted, as strings)."""

    def __init__(self, x: Any, y: np.ndarray, classes: np.ndarray, kind: str) -> None:
        self.x, self.y, self.classes, self.kind = x, y, classes, kind

    @property
    def labelled(self) -> np.ndarray:
        return np.flatnonzero(self.y >= 0)

    @property
    def unlabelled(self) -> np.ndarray:
        return np.flatnonzero(self.y < 0)


def labelled_data(dataset: Dataset) -> LabelledData:
    """Features and class indices of ``dataset``; a missing label is -1 (an unlabelled row)."""
    if dataset.label_column is None:
        raise InvalidArgumentError("label_column", None, "is required", "Pass --label-column NAME.")
    raw = dataset.frame[dataset.label_column]
    present = raw.notna().to_numpy()
    values = raw[present]
    if values.map(type).nunique() > 1:
        raise DataError("label_column", dataset.label_column, "mixes numbers and text",
                        "Make every label the same type (all numbers or all names).")
    if pd.api.types.is_float_dtype(values) and bool((values == values.round()).all()):
        values = values.astype(np.int64)  # integer labels read as floats because some are missing: 4, not 4.0
    classes, idx = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    y = np.full(len(raw), -1, dtype=np.int64)
    y[present] = idx
    if dataset.text_column is not None:
        texts = dataset.frame[dataset.text_column]
        if texts.dropna().map(lambda v: isinstance(v, str)).eq(False).any():
            raise DataError("text_column", dataset.text_column, "holds values that are not text",
                            "Give a column of strings, or leave --text-column out to use numeric columns.")
        return LabelledData(text_features(texts.fillna("").astype(str).tolist()), y, classes, "text")
    x = np.nan_to_num(dataset.features(np.dtype(np.float32)).reshape(len(raw), -1))
    return LabelledData(x, y, classes, "vectors")


def split_rows(dataset: Dataset, rows: np.ndarray, y: np.ndarray, *, split_column: str | None,
               test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows) among ``rows``: by ``split_column`` (value "test" is the test set), else a
    stratified ``test_fraction`` held out with ``seed``."""
    if split_column is not None:
        if split_column not in dataset.frame.columns:
            raise DataError("split_column", split_column, "is not a column",
                            f"Available columns: {', '.join(map(str, dataset.frame.columns))}.")
        is_test = dataset.is_test(split_column)[rows]
        if not is_test.any() or is_test.all():
            raise DataError("split_column", split_column, "needs both 'test' rows and other rows",
                            "Mark the held-out rows 'test', or leave --split-column out to hold out a fraction.")
        return rows[~is_test], rows[is_test]
    if not 0 < test_fraction < 1:
        raise InvalidArgumentError("test_fraction", test_fraction, "must be between 0 and 1", "Use e.g. 0.25.")
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y[rows])
    stratify = y[rows] if counts[counts > 0].min() >= 2 else None
    train, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=stratify)
    return np.sort(train), np.sort(test)


def train_mlp(x: np.ndarray, y: np.ndarray, rows: np.ndarray, *, n_classes: int, seed: int, epochs: int,
              hidden: int = 256, batch_size: int = 32, lr: float = 1e-3,
              after_epoch: Any = None) -> torch.nn.Module:
    """Train an MLP on ``x[rows]`` (standardised, float32) for ``epochs``; ``after_epoch(model)`` is called
    after each epoch (in eval mode, under no_grad). Deterministic for a given seed on CPU."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes))
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    order_rows = torch.as_tensor(rows)
    steps = epochs * -(-len(rows) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3 * lr, total_steps=max(1, steps))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = order_rows[torch.randperm(len(order_rows), generator=gen)]
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if after_epoch is not None:
            model.eval()
            with torch.no_grad():
                after_epoch(model)
    model.eval()
    return model


def accuracy(model: Any, x: Any, y: np.ndarray) -> float:
    """Share of rows a fitted model (scikit-learn or PyTorch) predicts right."""
    if isinstance(model, torch.nn.Module):
        with torch.no_grad():
            return float((model(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    with quiet():
        return float((np.asarray(model.predict(x)) == y).mean())

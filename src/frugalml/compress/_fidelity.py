"""Fidelity of a compressed model's outputs to the original's: the quality signal compression steps use.

- embeddings: cosine similarity per item (mean and 1st percentile), and top-k retrieval agreement;
- classification: top-1 agreement of the predicted classes;
- regression: 1 / (1 + RMSE relative to the reference's standard deviation).
The evaluation issue builds task metrics on labels and per-group metrics on top of these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["cosine_per_item", "embedding_fidelity", "fidelity", "reference_outputs", "retrieval_agreement", "topk_overlap"]


def reference_outputs(handle: Any, items: Any, seq_len: int | None) -> np.ndarray:
    return handle.predict(items, seq_len=seq_len if handle.input_spec.kind == "text" else None)


def cosine_per_item(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(denom, 1e-12)


def embedding_fidelity(student: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    cos = cosine_per_item(student, reference)
    return {"mean_cosine": float(cos.mean()), "p1_cosine": float(np.percentile(cos, 1)), "min_cosine": float(cos.min())}


def topk_overlap(student: np.ndarray, reference: np.ndarray, k: int = 10) -> np.ndarray:
    """Per item: the fraction of its top-k neighbours (by cosine, itself excluded) shared by both models."""
    def neighbours(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argpartition(-sims, k, axis=1)[:, :k]

    a, b = neighbours(np.asarray(student, np.float32)), neighbours(np.asarray(reference, np.float32))
    return np.array([len(set(x) & set(y)) / k for x, y in zip(a, b)], dtype=np.float64)


def retrieval_agreement(student: np.ndarray, reference: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each item's top-k neighbours under both models."""
    return float(topk_overlap(student, reference, k).mean())


def fidelity(student: np.ndarray, reference: np.ndarray, task: str | None) -> float:
    """One number in [0, 1], higher is closer to the reference (see the module docstring)."""
    if task == "classification":
        return float(np.mean(np.argmax(student, axis=1) == np.argmax(reference, axis=1)))
    if task == "regression":
        scale = float(np.std(reference)) or 1.0
        return float(1.0 / (1.0 + np.sqrt(np.mean((student - reference) ** 2)) / scale))
    return float(cosine_per_item(student, reference).mean())

"""A model as the server sees it: validated inputs in, JSON-ready answers out, one batch at a time.

Classification outputs are logits; the server answers the arg-max class with its softmax probability
(and every class's, on request). Regression answers the value; embedding models answer vectors (and
refuse /v1/predict, as classifiers refuse /v1/embed: one clear 400 each).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError

__all__ = ["InputError", "ServedModel"]

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A request's inputs do not fit the model (answered 422 with this message)."""


class ServedModel:
    """A loaded model (zoo name, directory, artifact or .onnx file) and how to run and answer for it."""

    def __init__(self, spec: str, *, runtime: str | None = None, device: str = "cpu") -> None:
        from frugalml.models import load_model

        self.spec = spec
        self.handle = load_model(spec)
        if self.handle.task is None:
            raise InvalidArgumentError("model", spec, "has no task (classification, regression or embedding)",
                                       "Serve a model whose task is known (zoo models, compressed artifacts).")
        self.task: str = self.handle.task
        self.kind: str = self.handle.input_spec.kind
        self.runtime = runtime or ("torch" if self.handle.module is not None else "onnxruntime")
        self.device = device
        labels = self.handle.metadata.get("labels")
        self.labels: list[str] | None = [str(v) for v in labels] if labels else None
        self.item_shape = self.handle.input_spec.item_shape
        self.n_features = int(np.prod(self.item_shape)) if self.item_shape else None
        from frugalml.compress.runtime import is_compiled

        self.compiled = is_compiled(self.handle.module)

    @property
    def name(self) -> str:
        return str(self.handle.name)

    def check_items(self, items: Sequence[Any], *, max_text_chars: int) -> list[Any]:
        """The request's items in the model's form; :class:`InputError` names the first bad item."""
        out: list[Any] = []
        for i, item in enumerate(items):
            if self.kind == "text":
                if not isinstance(item, str):
                    raise InputError(f"inputs[{i}] must be a string: {self.name} is a text model")
                if len(item) > max_text_chars:
                    raise InputError(f"inputs[{i}] has {len(item)} characters; the limit is {max_text_chars}")
                out.append(item)
            else:
                flat = item
                if not isinstance(flat, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         for v in flat):
                    raise InputError(f"inputs[{i}] must be a list of {self.n_features} numbers: {self.name} takes "
                                     f"tensors of shape {list(self.item_shape or [])} (flattened)")
                if len(flat) != self.n_features:
                    raise InputError(f"inputs[{i}] has {len(flat)} numbers; {self.name} takes {self.n_features}")
                if not all(np.isfinite(flat)):
                    raise InputError(f"inputs[{i}] holds NaN or infinity")
                out.append(flat)
        return out

    def run(self, items: list[Any]) -> np.ndarray:
        """Raw outputs for one batch: (items, classes | 1 | dims).

        A compiled model (a ``compile`` step) sees batch sizes rounded up to powers of two, so it
        compiles (and on a GPU records CUDA graphs for) a handful of shapes, not one per batch size.
        """
        pad_rows = self._pads_rows
        size = self._rows_for(len(items))  # one batch either way
        if self.kind == "text":
            # On a GPU, lengths round up to multiples of 16: tensor-core friendly, and few enough
            # distinct shapes that a compiled model is not recompiled for every request length.
            return self.handle.predict(items, batch_size=size, runtime=self.runtime, device=self.device,
                                       bucket=True, pad_rows=pad_rows, pad_multiple=16 if self.device == "cuda" else 1)
        dtype = np.dtype(self.handle.input_spec.dtype)
        array = np.asarray(items, dtype=dtype).reshape((len(items), *(self.item_shape or ())))
        return self.handle.predict(array, batch_size=size, runtime=self.runtime, device=self.device,
                                   pad_rows=pad_rows)

    @property
    def _pads_rows(self) -> bool:
        return self.compiled and self.runtime == "torch"

    def _rows_for(self, n: int) -> int:
        """The rows :meth:`run` computes for a batch of ``n`` items."""
        return 1 << (n - 1).bit_length() if self._pads_rows else n

    def answer(self, output: np.ndarray, *, scores: bool = False) -> dict[str, Any]:
        """One item's JSON answer from its raw output row."""
        if self.task == "embedding":
            return {"embedding": [float(v) for v in output]}
        if self.task == "regression":
            return {"value": float(np.ravel(output)[0])}
        from scipy.special import softmax

        p = softmax(np.asarray(output, dtype=np.float64))
        k = int(np.argmax(p))
        answer: dict[str, Any] = {"label": self.labels[k] if self.labels else str(k), "index": k,
                                  "score": float(p[k])}
        if scores:
            answer["scores"] = [float(v) for v in p]
        return answer

    def warm_up(self, *, max_batch: int = 1) -> float:
        """Run the model before the first request so it does not pay for lazy initialisation; seconds taken.

        An uncompiled model runs one item. A compiled torch model runs every batch size :meth:`run` can
        form for batches of up to ``max_batch`` requests (the powers of two up to it), and a text model
        also a longer text, at two rows and at one, so compilation (and CUDA-graph recording) happens
        here, before the server reports ready, not on live requests that would wait for it.
        """
        started = time.perf_counter()
        short: Any = "warm up" if self.kind == "text" else [0.0] * (self.n_features or 1)
        self.run([short])
        if self._pads_rows:
            for size in sorted({self._rows_for(n) for n in range(2, max_batch + 1)}):  # what run forms
                self.run([short] * size)
            if self.kind == "text":
                # A second length, in two batches: PyTorch then compiles one graph for any batch of two or
                # more and any length, and one for single items of any length (it specialises sizes of 1,
                # so a length change seen only at batch 1 leaves every later batch to recompile live).
                long = " ".join(["warm up"] * 32)
                self.run([long, long])
                self.run([long])
            log.info("%s: compiled shapes warmed up for batches of up to %d in %.1f s", self.spec, max_batch,
                     time.perf_counter() - started)
        return time.perf_counter() - started

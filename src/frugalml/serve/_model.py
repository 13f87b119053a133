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

    def __init__(self, spec: str, *, runtime: str | None = None, device: str = "cpu",
                 split_batches: bool = True) -> None:
        from frugalml.models import load_model

        self.spec = spec
        self.split_batches = split_batches
        # A call's fixed cost in tokens, fitted by warm_up() (text models with split_batches); None: never split.
        self.overhead_tokens_: float | None = None
        self.handle = load_model(spec)
        if self.handle.task is None:
            raise InvalidArgumentError("model", spec, "has no task (classification, regression or embedding)",
                                       "Serve a model whose task is known (zoo models, compressed artifacts).")
        self.task: str = self.handle.task
        self.kind: str = self.handle.input_spec.kind
        self.runtime = runtime or ("torch" if self.handle.module is not None else "onnxruntime")
        self.device = device
        self.labels: list[str] | None = self.handle.class_names
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
        Texts of mixed lengths run as the sub-batches :func:`plan_batches` picks once the model's
        overhead is known (see :meth:`warm_up`); the outputs are the same either way.
        """
        pad_rows = self._pads_rows
        if self.kind == "text":
            if self.overhead_tokens_ is not None and len(items) > 1:
                return self._run_split(items, self.overhead_tokens_)
            return self.handle.predict(items, batch_size=self._rows_for(len(items)), runtime=self.runtime,
                                       device=self.device, bucket=True, pad_rows=pad_rows,
                                       pad_multiple=self._pad_multiple)
        size = self._rows_for(len(items))  # one batch either way
        dtype = np.dtype(self.handle.input_spec.dtype)
        array = np.asarray(items, dtype=dtype).reshape((len(items), *(self.item_shape or ())))
        return self.handle.predict(array, batch_size=size, runtime=self.runtime, device=self.device,
                                   pad_rows=pad_rows)

    def _run_split(self, items: list[Any], overhead_tokens: float) -> np.ndarray:
        from frugalml.serve._split import plan_batches

        lengths = self.handle.token_lengths(items)
        parts = plan_batches(lengths, overhead_tokens=overhead_tokens, rows=self._rows_for, length_of=self._padded)
        out: np.ndarray | None = None
        for idx in parts:
            part = self.handle.predict([items[i] for i in idx], batch_size=self._rows_for(len(idx)),
                                       seq_len=self._padded(int(lengths[idx].max())), runtime=self.runtime,
                                       device=self.device, pad_rows=self._pads_rows)
            if out is None:
                out = np.empty((len(items), *part.shape[1:]), dtype=part.dtype)
            out[idx] = part
        assert out is not None  # parts cover every item
        return out

    @property
    def _pad_multiple(self) -> int:
        # On a GPU, lengths round up to multiples of 16: tensor-core friendly, and few enough
        # distinct shapes that a compiled model is not recompiled for every request length.
        return 16 if self.device == "cuda" else 1

    def _padded(self, longest: int) -> int:
        return self.handle.padded_length(longest, self._pad_multiple)

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

        A text model with ``split_batches`` serving batches of more than one item then times two shapes
        to learn its fixed cost per call (``overhead_tokens_``), which decides how :meth:`run` splits
        a batch of mixed lengths.
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
        if self.kind == "text" and self.split_batches and max_batch > 1:
            self.overhead_tokens_ = self._time_overhead(min(8, max_batch))
            log.info("%s: one call costs as much as %.0f tokens of compute; mixed-length batches run as "
                     "sub-batches of similar length when that is cheaper", self.spec, self.overhead_tokens_)
        return time.perf_counter() - started

    def _time_overhead(self, rows: int) -> float:
        """The model's fixed cost per call, in tokens, from 1 text x 16 tokens and ``rows`` texts x 64
        (capped at the model's longest input): each run once untimed, then 5 times, alternating (so a
        slow spell of the machine hits both), median of each."""
        from frugalml.serve._split import fit_overhead

        longest = self.handle.input_spec.max_length or 64
        shapes = ((1, self._padded(min(16, longest))), (rows, self._padded(min(64, longest))))
        seconds: list[list[float]] = [[], []]
        for repeat in range(6):
            for k, (n, length) in enumerate(shapes):
                texts = [" ".join(["warm up"] * length)] * n  # at least `length` tokens: truncated to exactly it
                began = time.perf_counter()
                self.handle.predict(texts, batch_size=self._rows_for(n), seq_len=length, runtime=self.runtime,
                                    device=self.device, pad_rows=self._pads_rows)
                if repeat:  # the first run of each shape is untimed
                    seconds[k].append(time.perf_counter() - began)
        (n_small, small), (n_large, large) = shapes
        return fit_overhead((self._rows_for(n_small) * small, float(np.median(seconds[0]))),
                            (self._rows_for(n_large) * large, float(np.median(seconds[1]))))

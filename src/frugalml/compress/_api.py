"""`compress(model, recipe)`: apply a recipe's techniques in order and return a new handle.

The original handle is never modified: it is the teacher for distillation and the reference for
fidelity checks. Every step's record (layers changed, layers skipped and why, structural edits,
metrics) lands in ``handle.metadata["compression"]`` and, when saved, in the artifact's manifest.
If any step fails, nothing is returned: the recipe is never left applied half-way.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalml._units import format_bytes
from frugalml._validate import check_device
from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    handler_for,
)
from frugalml.compress.recipe import Recipe
from frugalml.datasets import Dataset, load_dataset
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate._evaluate import eval_dataset
from frugalml.models import ModelHandle, load_model

__all__ = ["CompressResult", "compress", "compress_headline", "compress_to_dir", "measure_fidelity"]

log = logging.getLogger(__name__)


def _labels_of(handle: ModelHandle, dataset: Dataset) -> Any:
    """A dataset's labels; a classifier's as its output indices (text labels through its class names)."""
    labels = dataset.labels()
    if labels is None or handle.task != "classification":
        return labels
    return handle.label_indices(labels, column=dataset.label_column)


def _items_of(handle: ModelHandle, data: str | Dataset | Sequence[Any] | None) -> tuple[Any, Any]:
    """Raw items (and labels, if any) for calibration and distillation."""
    if data is None:
        data = handle.default_data
        if data is None:
            return handle.example_inputs, None
    if isinstance(data, (str, Path, Dataset)):
        dataset = data if isinstance(data, Dataset) else load_dataset(data)
        dataset = dataset.for_training()  # never calibrate or train on the evaluation split
        return handle.items_of(dataset), _labels_of(handle, dataset)
    return data, None


def compress(
    model: ModelHandle | str | Path | torch.nn.Module,
    recipe: Recipe | Sequence[TechniqueConfig] | str | Path,
    *,
    data: str | Dataset | Sequence[Any] | None = None,
    calibration_data: str | Dataset | Sequence[Any] | None = None,
    seq_len: int = 64,
    seed: int = 0,
    device: str = "cpu",
    on_progress: Callable[[str], None] | None = None,
) -> ModelHandle:
    """Apply ``recipe`` to ``model`` and return the compressed model's handle.

    Args:
        model: a handle, or anything :func:`frugalml.load_model` takes.
        recipe: a :class:`Recipe`, a list of configs, or the path of a recipe YAML / JSON file.
        data: inputs for calibration, sensitivity analysis and distillation (``zoo:NAME``, a path,
            a Dataset or raw items); defaults to the model's own default data (its train split).
            A file whose text column is not called ``text`` is passed as a Dataset
            (``load_dataset(path, text_column=...)``).
        calibration_data: inputs for static-quantization calibration and the sensitivity analysis of
            ``keep_fp32: auto``, when they should differ from ``data`` (distillation keeps using ``data``);
            its train split, when it has one.
        seq_len: tokens per text item during calibration and distillation.
        seed: seed for everything random (distillation order, sampling).
        device: where PyTorch work runs (``cpu`` or ``cuda``): distillation, torchao quantization and
            the compile warm-up; ``cuda`` is needed by INT4 / FP8 weights and 2:4 sparsity.
    """
    check_device(device)
    handle = model if isinstance(model, ModelHandle) else load_model(model)
    if isinstance(recipe, (str, Path)):
        recipe = Recipe.load(recipe)
    elif not isinstance(recipe, Recipe):
        recipe = Recipe(recipe)
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise InvalidArgumentError("seq_len", seq_len, "must be a positive integer", "Use e.g. seq_len=64.")
    if handle.module is None and any(step.needs_torch for step in recipe):
        first = next(step for step in recipe if step.needs_torch)
        raise InvalidArgumentError("recipe", first.technique, f"needs a PyTorch model but {handle.name} is ONNX",
                                   "Load the original PyTorch model, or use ONNX techniques only.")
    # Steps whose result is not plain weights (torch INT8, torchao tensors, sparse 2:4 tensors) are
    # saved as the float weights before them and replayed on load, so only compile may follow them.
    replayed = [i for i, s in enumerate(recipe) if _is_replayed(s)]
    if replayed:
        first = list(recipe)[replayed[0]]
        later = [s for s in list(recipe)[replayed[0] + 1:] if s.needs_torch and s.technique != "compile"]
        if later:
            raise InvalidArgumentError("recipe", recipe.describe(), f"{later[0].technique} follows {first.technique}, "
                                       "whose weights are no longer plain floats",
                                       f"Make {first.technique} the last PyTorch step of the recipe (compile may follow).")
    items, labels = _items_of(handle, data)
    calibration = items if calibration_data is None else _items_of(handle, calibration_data)[0]
    workdir = tempfile.TemporaryDirectory(prefix="frugalml-compress-")
    progress = on_progress or (lambda message: None)
    ctx = CompressContext(teacher=handle, calibration=calibration, train=items, labels=labels, seq_len=seq_len,
                          seed=seed, workdir=workdir.name, device=device, progress=progress)
    current = handle
    records: list[StepRecord] = []
    float_module = None
    for index, step in enumerate(recipe):
        progress(f"step {index + 1}/{len(recipe)}: {step.technique}")
        log.info("compress %s: step %d/%d %s", handle.name, index + 1, len(recipe), step.technique)
        record = StepRecord(technique=step.technique, config=step.to_dict())
        before = current
        current = handler_for(step)(current, step, ctx, record)
        if _is_replayed(step) and float_module is None:
            # Artifacts store these float weights and replay the step on load. A handler that changes
            # the floats itself (2:4 masking and recovery) hands over the weights to store.
            handed = current.metadata.pop("_float_module", None)
            float_module = handed if handed is not None else before.module
        records.append(record)
        for skipped in record.skipped:
            log.info("%s skipped %s: %s", step.technique, skipped["layer"], skipped["reason"])
    current.metadata = {
        **{k: v for k, v in handle.metadata.items() if not k.startswith("_")},
        **{k: v for k, v in current.metadata.items() if not k.startswith("_")},
        "compression": {"source": handle.name, "recipe": recipe.to_dict(), "steps": [r.to_dict() for r in records],
                        "seq_len": seq_len, "seed": seed},
        "_workdir": workdir,  # keeps intermediate ONNX files alive as long as the handle
        "_source_handle": handle,
        # Artifacts store plain weights: a torch.compile wrapper is unwrapped (its options are replayed on load).
        "_float_module": float_module if float_module is not None else getattr(current.module, "_orig_mod",
                                                                               current.module),
    }
    current.name = f"{handle.name} [{recipe.describe()}]"
    return current


def _is_replayed(step: TechniqueConfig) -> bool:
    from frugalml.compress.gpu import REPLAYED_TECHNIQUES

    return step.technique in REPLAYED_TECHNIQUES or (
        step.technique == "quantize_dynamic" and getattr(step, "backend", "") in ("torch", "inductor"))


@dataclass
class CompressResult:
    """What :func:`compress_to_dir` produced: the handle, where it was saved, its measured metrics."""

    handle: ModelHandle
    out_dir: Path
    metrics: dict[str, Any]
    steps: list[dict[str, Any]]
    run_id: int | None = None


def _data_name(data: Any) -> str | None:
    """How a run records its data: the spec, or a Dataset's name (its repr would hold every row)."""
    if data is None:
        return None
    return data.name if isinstance(data, Dataset) else str(data)


def _eval_items(handle: ModelHandle, data: Any, limit: int = 512) -> tuple[Any, Any]:
    if data is None:
        data = handle.default_data
    if not isinstance(data, (str, Path, Dataset)):
        return None, None
    # The test split (held out from calibration and distillation), and a seeded sample of it, as
    # `evaluate` takes: the first rows of a file sorted by label would hold only its first classes.
    dataset = eval_dataset(data, limit=limit)
    return handle.items_of(dataset), _labels_of(handle, dataset)


def measure_fidelity(original: ModelHandle, compressed: ModelHandle, items: Any, labels: Any = None, *,
                     seq_len: int | None = 64, device: str = "cpu") -> dict[str, float]:
    """Fidelity of ``compressed`` to ``original`` on ``items`` (and accuracy of both, given labels);
    both run on ``device`` (GPU-quantized models run only where they were made)."""
    from frugalml.compress._fidelity import embedding_fidelity, retrieval_agreement

    seq = seq_len if original.input_spec.kind == "text" else None
    ref = original.predict(items, seq_len=seq, device=device)
    out = compressed.predict(items, seq_len=seq, device=device)
    if original.task == "classification":
        metrics = {"agreement": float(np.mean(ref.argmax(1) == out.argmax(1)))}
        if labels is not None and np.issubdtype(np.asarray(labels).dtype, np.integer):
            metrics["accuracy_original"] = float(np.mean(ref.argmax(1) == labels))
            metrics["accuracy"] = float(np.mean(out.argmax(1) == labels))
        return metrics
    metrics = embedding_fidelity(out, ref)
    if len(items) > 20:
        metrics["top10_retrieval_agreement"] = retrieval_agreement(out, ref, k=10)
    return metrics


def _unit(metric: str) -> str:
    if "bytes" in metric:
        return "bytes"
    return "count" if metric == "eval_items" else "ratio"


def compress_to_dir(
    model: ModelHandle | str | Path,
    recipe: Recipe | Sequence[TechniqueConfig] | str | Path,
    out_dir: str | Path,
    *,
    data: str | Dataset | None = None,
    calibration_data: str | Dataset | None = None,
    seq_len: int = 64,
    seed: int = 0,
    device: str = "cpu",
    encrypt_key: bytes | None = None,
    overwrite: bool = False,
    store: Any = None,
    compressed: ModelHandle | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> CompressResult:
    """Compress, measure fidelity on held-out data, save the artifact, and record the run.

    ``compressed``: ``model`` already compressed by ``recipe`` with these arguments (the search's
    run-off built its winner); it is saved as is instead of being built a second time.
    """
    from frugalml.compress.artifact import save_model
    from frugalml.measure.env import fingerprint

    check_device(device)
    original = model if isinstance(model, ModelHandle) else load_model(model)
    recipe_obj = recipe if isinstance(recipe, Recipe) else (Recipe.load(recipe) if isinstance(recipe, (str, Path))
                                                            else Recipe(recipe))
    if compressed is not None and (not isinstance(compressed, ModelHandle) or (
            compressed.metadata.get("compression") or {}).get("recipe") != recipe_obj.to_dict()):
        raise InvalidArgumentError("compressed", getattr(compressed, "name", type(compressed).__name__),
                                   "is not the result of this recipe", "Pass the handle compress() returned for "
                                   "this model and recipe, or leave compressed out.")
    run = None
    if store is not None:
        from frugalml.store import Store, open_store

        opened = store if isinstance(store, Store) else open_store(store)
        run = opened.start_run("compress", name=original.name, env=fingerprint(),
                               config={"model": original.name, "recipe": recipe_obj.to_dict(), "out_dir": str(out_dir),
                                       "data": _data_name(data), "calibration_data": _data_name(calibration_data),
                                       "seq_len": seq_len, "seed": seed, "device": device})
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        if compressed is None:
            compressed = compress(original, recipe_obj, data=data, calibration_data=calibration_data, seq_len=seq_len,
                                  seed=seed, device=device, on_progress=on_progress)
        items, labels = _eval_items(original, data)
        metrics: dict[str, Any] = {}
        if items is not None:
            (on_progress or (lambda m: None))("measuring fidelity on held-out data")
            metrics = measure_fidelity(original, compressed, items, labels, seq_len=seq_len, device=device)
            metrics["eval_items"] = len(items)
        out = save_model(compressed, out_dir, metrics=metrics, encrypt_key=encrypt_key, overwrite=overwrite)
        from frugalml.measure import model_size

        metrics["size_bytes_original"] = model_size(original)
        metrics["size_bytes"] = sum(f.stat().st_size for f in out.iterdir() if f.name.startswith("model."))
    steps = compressed.metadata["compression"]["steps"]
    result = CompressResult(handle=compressed, out_dir=out, metrics=metrics, steps=steps)
    if run is not None:
        from frugalml.models._safety import sha256_file
        from frugalml.store import Artifact, Measurement

        result.run_id = run.id
        run.finish(result={"out_dir": str(out), "metrics": metrics, "steps": steps},
                   measurements=[Measurement(k, float(v), _unit(k)) for k, v in metrics.items()
                                 if isinstance(v, (int, float))],
                   artifacts=[Artifact(str(f), sha256_file(f), f.stat().st_size) for f in sorted(out.iterdir())
                              if f.is_file()])
    return result


def compress_headline(result: dict[str, Any]) -> str:
    """One line of a ``compress`` run's result for run lists: fidelity or accuracy, and size."""
    metrics = result.get("metrics") or {}
    shown = [f"{k} {metrics[k]:.4g}" for k in ("mean_cosine", "agreement", "accuracy") if k in metrics]
    if "size_bytes" in metrics:
        shown.append(format_bytes(metrics["size_bytes"]))
    return ", ".join(shown)

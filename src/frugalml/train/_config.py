"""The training job's configuration: :class:`TrainConfig` (the ``frugal train --config`` file) and its parts.

Pydantic models that forbid unknown keys, like frugal.yaml: a misspelt ``epsilon`` is an error naming
the nearest valid key, never a silently non-private run. Range checks that need a sentence of advice
(epsilon, delta) live in :meth:`PrivacySettings.checked` so that the message says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from frugalml.errors import InvalidArgumentError

__all__ = [
    "ACCOUNTANTS",
    "METHODS",
    "LoraSettings",
    "PrivacySettings",
    "TrainConfig",
    "load_train_config",
    "require",
]

METHODS = ("full", "lora", "head")
ACCOUNTANTS = ("prv", "rdp", "gdp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSettings(_Strict):
    """LoRA adapters (Hu et al. 2021) through peft: ``W + (alpha / r) * B @ A`` on the target layers."""

    r: int = Field(default=8, ge=1, le=1024)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    # Text models: peft module-name suffixes ("query", "value"), or "all-linear". Tensor models: None
    # means every Linear / Conv2d layer except the output layer (which is trained in full).
    target_modules: list[str] | Literal["all-linear"] | None = None


class PrivacySettings(_Strict):
    """DP-SGD through Opacus: per-sample gradients clipped to ``max_grad_norm``, Gaussian noise sized by the
    accountant so that training stays within (``epsilon``, ``delta``)."""

    epsilon: float
    delta: float | None = None  # default: 1 / (10 * training rows), below the 1/N a meaningful delta needs
    max_grad_norm: float = 1.0
    accountant: Literal["prv", "rdp", "gdp"] = "prv"

    def checked(self) -> PrivacySettings:
        """Raise a clear error for values no accountant can honour."""
        if not self.epsilon > 0 or self.epsilon != self.epsilon or self.epsilon == float("inf"):
            raise InvalidArgumentError("epsilon", self.epsilon, "must be a finite number > 0",
                                       "Use e.g. --epsilon 3 (smaller is more private; 1 to 10 is usual).")
        if self.delta is not None and not 0 < self.delta < 1:
            raise InvalidArgumentError("delta", self.delta, "must be strictly between 0 and 1",
                                       "Use a delta well below 1 / (training rows), e.g. 1e-5, or leave it out.")
        if not self.max_grad_norm > 0:
            raise InvalidArgumentError("max_grad_norm", self.max_grad_norm, "must be > 0",
                                       "Use e.g. --max-grad-norm 1.0 (the per-sample gradient clipping bound).")
        return self


class TrainConfig(_Strict):
    """What to train, on what, how. Every field has a default: ``TrainConfig()`` is LoRA fine-tuning of
    zoo:minilm on zoo:stdlib-docs sentences labelled by module family."""

    model: str = "zoo:minilm"
    data: str = "zoo:stdlib-docs"
    text_column: str | None = None  # default: the dataset's own
    label_column: str | None = None
    split_column: str | None = "split"  # rows marked "test" are the test set; None: hold out test_fraction
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)  # of the training rows, for early stopping
    method: Literal["full", "lora", "head"] = "lora"
    init: Literal["pretrained", "scratch"] = "pretrained"
    lora: LoraSettings = LoraSettings()
    privacy: PrivacySettings | None = None
    epochs: int = Field(default=3, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    lr: float | None = Field(default=None, gt=0, lt=10)  # default: by method (see _default_lr)
    weight_decay: float = Field(default=0.01, ge=0, lt=1)
    max_seq_len: int = Field(default=128, ge=8, le=8192)
    max_train_items: int = Field(default=0, ge=0)  # 0: all training rows
    patience: int = Field(default=2, ge=1, le=10_000)  # epochs without validation improvement before stopping
    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out: str | None = None  # directory for the trained model; None: not saved
    store: str | None = None  # run store URL; None: $FRUGAL_STORE or sqlite:///.frugal/runs.db

    def lr_(self, kind: str) -> float:
        """The learning rate: the configured one, else a default that works for the method and model kind."""
        if self.lr is not None:
            return self.lr
        if kind == "text":
            return {"full": 5e-5, "lora": 1e-3, "head": 2e-3}[self.method]
        return {"full": 3e-3, "lora": 1e-2, "head": 1e-2}[self.method]


def require(module: str, extra: str) -> None:
    """Import ``module`` or fail with the ``pip install 'frugalml[extra]'`` that provides it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise InvalidArgumentError(extra, module, f"{module} is not installed",
                                   f"Run: pip install 'frugalml[{extra}]'.") from None


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    """Read a training config (YAML) and apply ``overrides``: fields set to None are left as in the file, and a
    mapping (``privacy={"epsilon": 8}``) updates the file's mapping key by key."""
    from frugalml.config import read_yaml, validate_model

    raw = read_yaml(path) if path is not None else {}
    if raw is not None and not isinstance(raw, dict):
        raise InvalidArgumentError("config", str(path), "must be a mapping of keys to values",
                                   "Start the file with keys such as `model: zoo:minilm`; see docs/train.md.")
    merged = dict(raw or {})
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = {**merged[key], **value}  # `--epsilon 8` keeps the file's delta and accountant
        merged[key] = value
    return validate_model(TrainConfig, merged, source=str(path or "config"), docs="docs/train.md")

"""`sweep`: train a grid of small models for real over model size x data size, record every run, fit.

Two tasks, both on data that ships with the installed packages:

- ``char-lm`` (default): a byte-level transformer language model (pre-norm blocks, causal attention,
  learned positions) on ``zoo:stdlib-docs`` text, the train split for training and the test split
  for the held-out loss (nats per byte). Model size = ``d_model`` (layers fixed); data size = training
  tokens, each seen once (one epoch over a prefix of the training text), with AdamW and a cosine
  schedule whose length matches the run (Hoffmann et al. found a schedule longer than the run
  distorts the fit).
- ``digits-mlp``: MLPs on ``zoo:digits`` (scikit-learn's 8x8 digits): size = hidden width, data =
  training samples (a seeded subset), a fixed number of epochs, held-out cross-entropy on the test split.

Each trained point is a ``train`` run in the store, inside the ``scaling-sweep`` run, with
measurements ``n_params``, ``n_tokens``, ``flops`` (6 N D, times epochs for the MLP) and ``loss``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from frugalml._validate import check_device
from frugalml.errors import InvalidArgumentError

__all__ = ["SweepConfig", "SweepResult", "load_sweep_config", "sweep"]

log = logging.getLogger(__name__)


class SweepConfig(BaseModel):
    """The grid and the training recipe (``frugal scaling sweep --config sweep.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["char-lm", "digits-mlp"] = "char-lm"
    model_sizes: list[int] = Field(default_factory=lambda: [16, 24, 32, 48, 64], min_length=2)
    # tokens (char-lm) or samples (digits-mlp); the char-lm default tops out near the 520 KB training text
    data_sizes: list[int] = Field(default_factory=lambda: [50_000, 100_000, 200_000, 400_000], min_length=2)
    layers: int = Field(default=2, ge=1, le=24)
    seq_len: int = Field(default=64, ge=8, le=2048)
    # small batches: the smallest data size still takes ~100 optimizer steps (at 30 steps, a first version
    # of this grid was limited by optimization, not data, and the law mispredicted it by 17%)
    batch_size: int = Field(default=8, ge=1, le=4096)
    lr: float = Field(default=3e-3, gt=0, le=1)
    epochs: int = Field(default=30, ge=1, le=10_000)  # digits-mlp only
    eval_tokens: int = Field(default=65_536, ge=1024)
    seed: int = 0
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int | None = Field(default=None, ge=1, le=1024)
    store: str | None = None


def load_sweep_config(path: str | Path | None) -> SweepConfig:
    if path is None:
        return SweepConfig()
    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError("config", str(path), "is not a file", "Pass a sweep YAML file (see docs/scaling.md).")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return SweepConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError("config", str(path), f"is not valid YAML ({exc})", "Fix the YAML syntax.") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "config"
        raise InvalidArgumentError(where, err.get("input"), err["msg"].lower(),
                                   f"Valid keys: {', '.join(SweepConfig.model_fields)}.") from None


# ----------------------------------------------------------------------------- models
class _Block(torch.nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.attn = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class CharLM(torch.nn.Module):
    """A byte-level pre-norm transformer: (batch, seq) byte ids -> (batch, seq, 256) logits."""

    def __init__(self, d_model: int, layers: int, seq_len: int) -> None:
        super().__init__()
        heads = max(1, d_model // 16)
        self.tok = torch.nn.Embedding(256, d_model)
        self.pos = torch.nn.Embedding(seq_len, d_model)
        self.blocks = torch.nn.ModuleList([_Block(d_model, heads) for _ in range(layers)])
        self.ln = torch.nn.LayerNorm(d_model)
        self.head = torch.nn.Linear(d_model, 256, bias=False)
        self.register_buffer("mask", torch.triu(torch.full((seq_len, seq_len), float("-inf")), 1), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
        for block in self.blocks:
            x = block(x, self.mask[:t, :t])
        return self.head(self.ln(x))


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- one training run
def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))  # decays to 10% at the run's end


def _corpus() -> tuple[np.ndarray, np.ndarray]:
    from frugalml.datasets import load_dataset

    data = load_dataset("zoo:stdlib-docs")
    frame = data.frame

    def text(split: str) -> np.ndarray:
        joined = "\n".join(frame.loc[frame["split"] == split, data.text_column].astype(str))
        return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)

    return text("train"), text("test")


def _train_char_lm(cfg: SweepConfig, d_model: int, tokens: int, train: np.ndarray, held_out: np.ndarray,
                   device: str, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    model = CharLM(d_model, cfg.layers, cfg.seq_len).to(device)
    per_step = cfg.batch_size * cfg.seq_len
    steps = max(1, tokens // per_step)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps, max(1, steps // 20)))
    span = steps * per_step + 1  # one pass over a prefix of the training text: every token seen once
    stream = torch.from_numpy(train[:span].astype(np.int64))
    windows = stream[: steps * per_step].view(steps, cfg.batch_size, cfg.seq_len)
    targets = stream[1: steps * per_step + 1].view(steps, cfg.batch_size, cfg.seq_len)
    model.train()
    for step in range(steps):
        x, y = windows[step].to(device), targets[step].to(device)
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return {"n_params": float(_params(model)), "n_tokens": float(steps * per_step),
            "flops": 6.0 * _params(model) * steps * per_step, "loss": _eval_char_lm(model, cfg, held_out, device)}


@torch.no_grad()
def _eval_char_lm(model: CharLM, cfg: SweepConfig, held_out: np.ndarray, device: str) -> float:
    model.eval()
    n = min(cfg.eval_tokens, len(held_out) - 1) // cfg.seq_len
    stream = torch.from_numpy(held_out[: n * cfg.seq_len + 1].astype(np.int64))
    x, y = stream[:-1].view(n, cfg.seq_len), stream[1:].view(n, cfg.seq_len)
    total = 0.0
    for i in range(0, n, 256):
        logits = model(x[i:i + 256].to(device))
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, 256), y[i:i + 256].reshape(-1).to(device),
                                                         reduction="sum"))
    return total / (n * cfg.seq_len)


def _train_mlp(cfg: SweepConfig, width: int, samples: int, data: tuple[np.ndarray, ...], device: str,
               seed: int) -> dict[str, float]:
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x_train), size=min(samples, len(x_train)), replace=False)
    x, y = torch.tensor(x_train[rows], dtype=torch.float32), torch.tensor(y_train[rows])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, 10)).to(device)
    steps_per_epoch = max(1, -(-len(rows) // cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, total, max(1, total // 20)))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(rows), generator=gen)
        for i in range(0, len(rows), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        test_loss = float(torch.nn.functional.cross_entropy(model(torch.tensor(x_test, dtype=torch.float32).to(device)),
                                                            torch.tensor(y_test).to(device)))
    n = _params(model)
    return {"n_params": float(n), "n_tokens": float(len(rows)), "flops": 6.0 * n * len(rows) * cfg.epochs,
            "loss": test_loss}


def _digits() -> tuple[np.ndarray, ...]:
    from frugalml.datasets import load_dataset

    data = load_dataset("zoo:digits")
    frame = data.frame
    features = np.array(frame[list(data.feature_columns)], dtype=np.float32)  # a copy: scaled in place below
    features /= max(1.0, float(features.max()))  # pixel intensities 0..16 -> 0..1
    labels = np.asarray(frame[data.label_column], dtype=np.int64)
    train = (frame["split"] == "train").to_numpy()
    return features[train], labels[train], features[~train], labels[~train]


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    """Every trained point (N, D, FLOPs, held-out loss, seconds) and the fit over them."""

    config: dict[str, Any]
    points: list[dict[str, float]]
    fit: Any  # frugalml.scaling.Fit | None
    run_id: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "points": self.points, "fit": self.fit.to_dict() if self.fit else None,
                "run_id": self.run_id, "seconds": self.seconds}


def sweep(config: SweepConfig | None = None, *, fit: bool = True,
          on_progress: Callable[[int, int, str], None] | None = None) -> SweepResult:
    """Train the grid (smallest first), record each point in the store, fit the two-resource law."""
    from frugalml.measure.env import fingerprint
    from frugalml.scaling._fit import fit_two_resource, points_from_arrays
    from frugalml.store import Measurement, fail_on_error, open_store

    cfg = config or SweepConfig()
    device = cfg.device
    check_device(device, fix="Use --device cpu, or run the sweep on a machine with an NVIDIA GPU.")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if any(s < 1 for s in cfg.model_sizes + cfg.data_sizes):
        raise InvalidArgumentError("sizes", cfg.model_sizes + cfg.data_sizes, "must all be >= 1", "Use positive sizes.")
    progress = on_progress or (lambda done, total, message: None)
    if cfg.task == "char-lm":
        train, held_out = _corpus()
        largest = max(cfg.data_sizes)
        if largest > len(train) - 1:
            raise InvalidArgumentError("data_sizes", largest, f"exceeds the {len(train) - 1} training tokens of "
                                       "zoo:stdlib-docs (each token is seen once)", "Use smaller data sizes.")
        train_one = lambda m, d, seed: _train_char_lm(cfg, m, d, train, held_out, device, seed)  # noqa: E731
    else:
        digits = _digits()
        train_one = lambda m, d, seed: _train_mlp(cfg, m, d, digits, device, seed)  # noqa: E731
    store = open_store(cfg.store)
    run = store.start_run("scaling-sweep", name=cfg.task, config=cfg.model_dump(), env=fingerprint())
    grid = [(m, d) for m in sorted(cfg.model_sizes) for d in sorted(cfg.data_sizes)]
    points: list[dict[str, float]] = []
    started = time.perf_counter()
    with fail_on_error(run):
        for i, (m, d) in enumerate(grid):
            progress(i, len(grid), f"{cfg.task} size {m}, data {d}")
            child = store.start_run("train", name=f"{cfg.task} size={m} data={d}",
                                    config={"task": cfg.task, "size": m, "data": d, "seed": cfg.seed})
            with fail_on_error(child):
                t0 = time.perf_counter()
                point = {"size": float(m), "data": float(d), **train_one(m, d, cfg.seed)}
                point["seconds"] = time.perf_counter() - t0
                child.finish(result=point, measurements=[
                    Measurement("n_params", point["n_params"], "count", device=device),
                    Measurement("n_tokens", point["n_tokens"], "count", device=device),
                    Measurement("flops", point["flops"], "flop", device=device, source="6ND"),
                    Measurement("loss", point["loss"], "nats", device=device, source="held-out")])
            points.append(point)
            log.info("sweep %d/%d: size %d data %d -> loss %.4f (%.1f s)", i + 1, len(grid), m, d, point["loss"],
                     point["seconds"])
        progress(len(grid), len(grid), "fitting")
        fitted = None
        if fit:
            fitted = fit_two_resource(points_from_arrays([p["n_params"] for p in points], [p["n_tokens"] for p in points],
                                                         [p["loss"] for p in points], [p["flops"] for p in points],
                                                         source=f"sweep run #{run.id}"))
        result = SweepResult(cfg.model_dump(), points, fitted, run.id, time.perf_counter() - started)
    run.finish(result=result.to_dict())
    return result

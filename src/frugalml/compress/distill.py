"""Knowledge distillation: train the compressed model (student) to reproduce the original (teacher).

- classifiers: KL divergence between temperature-softened distributions (scaled by T^2, Hinton et
  al. 2015), mixed with cross-entropy on hard labels when labels are given (weight ``alpha`` on KL);
- embedding models: ``cosine`` (1 - cosine similarity) or ``mse`` between embeddings.
Only the teacher's outputs are needed, so unlabeled data is enough. Training is seeded, shows
progress, and stops early when the held-out fidelity stops improving; the best epoch's weights are
kept.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from frugalml.compress._base import (
    CompressContext,
    StepRecord,
    TechniqueConfig,
    check_fraction,
    check_in,
    check_int,
    register_handler,
)
from frugalml.compress._fidelity import fidelity
from frugalml.compress.quantize import _with_module
from frugalml.errors import InvalidArgumentError
from frugalml.models import ModelHandle
from frugalml.models._handle import call_module

__all__ = ["Distill"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Distill(TechniqueConfig):
    """Distil the original model into the current one.

    Attributes:
        epochs: passes over the training items (early stopping may end sooner).
        lr: AdamW learning rate.
        batch_size: items per step.
        loss: ``auto`` (KL for classifiers, cosine for embeddings), ``kl``, ``cosine`` or ``mse``.
        temperature: softening of classifier logits.
        alpha: weight of the KL term against hard-label cross-entropy (when labels are available).
        max_items: cap on training items (0 = all).
        patience: epochs without held-out improvement before stopping.
        keep_zeros: weight matrices keep their zeros (re-applied after every optimizer step), so
            the pattern a pruning step chose (unstructured or 2:4) survives training.
    """

    technique: ClassVar[str] = "distill"
    version: ClassVar[int] = 1
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    loss: str = "auto"
    temperature: float = 2.0
    alpha: float = 0.7
    max_items: int = 0
    patience: int = 1
    keep_zeros: bool = False

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs")
        check_fraction(self.lr, "lr", high=1.0)
        check_int(self.batch_size, "batch_size")
        check_in(self.loss, "loss", ("auto", "kl", "cosine", "mse"))
        check_fraction(self.temperature, "temperature", high=100.0)
        check_fraction(self.alpha, "alpha", inclusive_low=True, inclusive_high=True)
        check_int(self.max_items, "max_items", minimum=0)
        check_int(self.patience, "patience")
        if not isinstance(self.keep_zeros, bool):
            raise InvalidArgumentError("keep_zeros", self.keep_zeros, "must be true or false", "Write keep_zeros: true.")


def _loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, config: Distill,
          kind: str) -> torch.Tensor:
    if kind == "kl":
        t = config.temperature
        soft = F.kl_div(F.log_softmax(student / t, -1), F.softmax(teacher / t, -1), reduction="batchmean") * t * t
        if labels is None:
            return soft
        return config.alpha * soft + (1 - config.alpha) * F.cross_entropy(student, labels)
    if kind == "cosine":
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    return F.mse_loss(student, teacher)


@register_handler(Distill)
def _distill(handle: ModelHandle, config: Distill, ctx: CompressContext, record: StepRecord) -> ModelHandle:
    items = ctx.train if ctx.train is not None else ctx.calibration
    if items is None or len(items) < 4:
        raise InvalidArgumentError("data", None, "distillation needs training inputs (unlabeled is enough)",
                                   "Pass --data (or data=...) with at least a few hundred items.")
    teacher = ctx.teacher
    kind = config.loss if config.loss != "auto" else ("kl" if teacher.task == "classification" else "cosine")
    rng = np.random.default_rng(ctx.seed)
    torch.manual_seed(ctx.seed)
    order = rng.permutation(len(items))
    if config.max_items:
        order = order[: config.max_items]
    held = order[: max(2, min(256, len(order) // 10))]  # held-out slice for early stopping
    train = order[len(held):] if len(order) > len(held) + 2 else order
    pick = (lambda idx: [items[i] for i in idx]) if isinstance(items, list) else (lambda idx: items[idx])
    labels = ctx.labels
    seq = ctx.seq_len if handle.input_spec.kind == "text" else None
    kind_in = handle.input_spec.kind
    device = ctx.device

    def encode(batch: Any) -> dict[str, torch.Tensor]:
        return {k: torch.tensor(v, device=device) for k, v in handle.encode(batch, seq).items()}

    if teacher.module is None:
        raise InvalidArgumentError("teacher", teacher.name, "distillation needs a PyTorch teacher",
                                   "Distil before exporting to ONNX.")
    held_items = pick(held)
    held_reference = teacher.predict(held_items, seq_len=seq, device=device)
    student = copy.deepcopy(handle.module).float().to(device)
    teacher_module = teacher.module.to(device)
    # {parameter: keep-mask} for weight matrices with zeros to preserve; shapes as the parameters.
    masks = {p: p != 0 for p in student.parameters() if config.keep_zeros and p.dim() >= 2 and bool((p == 0).any())}
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=config.lr)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    best = (-1.0, copy.deepcopy(student.state_dict()))
    history = []
    stale = 0
    student.eval()  # dropout off: the student should match the teacher's deterministic outputs
    start_score = fidelity(_with_module(handle, student).predict(held_items, seq_len=seq, device=device),
                           held_reference, teacher.task)
    best = (start_score, copy.deepcopy(student.state_dict()))
    for epoch in range(config.epochs):
        perm = rng.permutation(train)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = perm[step * config.batch_size:(step + 1) * config.batch_size]
            if len(idx) == 0:
                continue
            batch = encode(pick(idx))
            with torch.no_grad():
                target = call_module(teacher_module, batch, kind_in).float()
            out = call_module(student, batch, kind_in).float()
            y = torch.as_tensor(np.asarray(labels)[idx], device=device) if labels is not None and kind == "kl" else None
            loss = _loss(out, target, y, config, kind)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if masks:
                with torch.no_grad():
                    for param, keep in masks.items():
                        param.mul_(keep)
            total += loss.item()
            if step % 10 == 0:
                ctx.progress(f"distill epoch {epoch + 1}/{config.epochs} step {step + 1}/{steps_per_epoch} "
                             f"loss {loss.item():.4f}")
        score = fidelity(_with_module(handle, student).predict(held_items, seq_len=seq, device=device),
                         held_reference, teacher.task)
        history.append({"epoch": epoch + 1, "loss": total / max(steps_per_epoch, 1), "held_out_fidelity": score})
        log.info("distill epoch %d: loss %.4f, held-out fidelity %.4f", epoch + 1, history[-1]["loss"], score)
        if score > best[0]:
            best, stale = (score, copy.deepcopy(student.state_dict())), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    student.load_state_dict(best[1])
    record.changed = ["(all trainable parameters)"]
    record.metrics = {"loss": kind, "items": len(train), "held_out": len(held), "start_fidelity": start_score,
                      "best_fidelity": best[0], "history": history, "device": device,
                      "kept_zeros": sum(int((~keep).sum()) for keep in masks.values())}
    return _with_module(handle, student.eval())

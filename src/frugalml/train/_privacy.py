"""Differential privacy for training: DP-SGD through Opacus, and the checks around it.

DP-SGD (Abadi et al. 2016): every training row's gradient is clipped to ``max_grad_norm``, Gaussian noise
of standard deviation ``noise_multiplier * max_grad_norm`` is added to each batch's sum, and batches are
drawn by Poisson sampling. Opacus's ``make_private_with_epsilon`` picks the noise multiplier so that the
planned epochs stay within (epsilon, delta) under the chosen accountant (PRV by default, RDP or GDP on
request); after training the accountant reports what the steps actually taken spent. The guarantee is
example-level (adding or removing one training row) and covers the training rows only: the validation
rows that pick the best epoch are not protected. Opacus's default random generator is not a
cryptographically secure one (its ``secure_mode`` needs torchcsprng); the accountant assumes ideal noise.

Layers that mix samples (BatchNorm) break per-sample gradients; ``ModuleValidator.fix`` swaps them
(BatchNorm -> GroupNorm) and the swaps are listed. Layers it cannot fix are an error naming them.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from torch import nn

from frugalml.errors import InvalidArgumentError

__all__ = ["PrivacyWarning", "check_delta", "default_delta", "make_private", "make_private_ready", "noise_for"]

log = logging.getLogger(__name__)


class PrivacyWarning(UserWarning):
    """A privacy setting that is allowed but weak (delta >= 1/N)."""


def default_delta(rows: int) -> float:
    """1 / (10 N): well below 1/N, the level at which publishing one random row outright would qualify."""
    return 1.0 / (10 * max(rows, 1))


def check_delta(delta: float, rows: int) -> str | None:
    """A warning (also logged and raised as :class:`PrivacyWarning`) when ``delta >= 1/rows``, else None."""
    if delta < 1.0 / rows:
        return None
    message = (f"delta={delta:g} is >= 1/N = 1/{rows} (training rows): a mechanism that publishes one random "
               f"row in the clear meets that delta. Use delta < 1/N, e.g. {default_delta(rows):.1g}.")
    log.warning(message)
    warnings.warn(message, PrivacyWarning, stacklevel=3)
    return message


def make_private_ready(model: nn.Module, kind: str, method: str, frozen: list[str], replaced: list[str]) -> nn.Module:
    """``model`` fixed for per-sample gradients: incompatible layers swapped (listed in ``replaced``), layers
    Opacus cannot handle an error, text embeddings frozen (listed in ``frozen``)."""
    from opacus import GradSampleModule
    from opacus.validators import ModuleValidator

    model.train()  # Opacus validates a model in training mode (eval-mode modules are not its concern)
    if ModuleValidator.validate(model, strict=False):
        before = {name: type(m).__name__ for name, m in model.named_modules()}
        model = ModuleValidator.fix(model)
        after = {name: type(m).__name__ for name, m in model.named_modules()}
        replaced += [f"{name or '(model)'}: {before[name]} -> {after[name]}" for name in before
                     if name in after and before[name] != after[name]]
        remaining = ModuleValidator.validate(model, strict=False)
        if remaining:
            raise InvalidArgumentError("privacy", type(model).__name__, "has layers Opacus cannot train with "
                                       "differential privacy: " + "; ".join(str(e) for e in remaining[:5]),
                                       "Replace them (nn.LSTM -> opacus.layers.DPLSTM, BatchNorm -> GroupNorm), "
                                       "or train without privacy.")
        log.info("DP: replaced %s", ", ".join(replaced))
    unsupported = GradSampleModule.validate(model, strict=False)  # trainable layers holding buffers
    if unsupported:
        raise InvalidArgumentError("privacy", type(model).__name__, "has trainable layers with buffers, whose "
                                   "per-sample gradients Opacus cannot compute: " + "; ".join(
                                       str(e).split("support(")[-1].rstrip(". )")[:120] for e in unsupported[:5]),
                                   "Freeze those layers or move their buffers out, or train without privacy.")
    if kind == "text":
        # Position ids are one (1, seq) row shared by the whole batch, so Opacus cannot split the position
        # embedding's gradient per sample; the embeddings stay as pretrained.
        embeddings = [n for n, p in model.named_parameters() if ".embeddings." in f".{n}" and p.requires_grad]
        for name, parameter in model.named_parameters():
            if name in embeddings:
                parameter.requires_grad = False
        if embeddings and method != "head":
            frozen.append("embeddings: Opacus cannot compute per-sample gradients of shared position ids")
    return model


def noise_for(*, epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """The noise multiplier that keeps ``steps`` Poisson-sampled steps within (epsilon, delta)."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")  # RDP's alpha grid: informational
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                          steps=steps, accountant=accountant))


def make_private(model: nn.Module, optimizer: Any, loader: Any, config: Any, rows: int) -> tuple[Any, ...]:
    """Wrap model, optimizer and loader with Opacus for ``config.privacy``; returns them, the engine and a
    record of the settings (delta, accountant, noise multiplier, sample rate)."""
    import opacus
    from opacus import PrivacyEngine

    settings = config.privacy
    delta = settings.delta if settings.delta is not None else default_delta(rows)
    warning = check_delta(delta, rows)
    with warnings.catch_warnings():
        # "Secure RNG turned off" (stated in the model card) and the RDP search's note on its alpha grid
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Optimal order is the")
        engine = PrivacyEngine(accountant=settings.accountant)
        model, optimizer, loader = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader, target_epsilon=settings.epsilon,
            target_delta=delta, epochs=config.epochs, max_grad_norm=settings.max_grad_norm)
    record = {"epsilon_target": settings.epsilon, "delta": delta, "accountant": settings.accountant,
              "noise_multiplier": float(optimizer.noise_multiplier), "max_grad_norm": settings.max_grad_norm,
              "sample_rate": 1.0 / len(loader), "epochs_planned": config.epochs, "training_rows": rows,
              "library": f"opacus {opacus.__version__}", "mechanism": "DP-SGD with Poisson sampling",
              "unit": "one training row (add/remove)", "warnings": [warning] if warning else []}
    log.info("DP-SGD: noise multiplier %.3f for epsilon %.3g, delta %.3g (%s accountant)",
             record["noise_multiplier"], settings.epsilon, delta, settings.accountant)
    return model, optimizer, loader, engine, record


def spent(engine: Any, record: dict[str, Any], model: Any) -> dict[str, Any]:
    """``record`` with the epsilon the steps taken spent (early stopping spends less than the target), and
    Opacus's hooks removed from ``model``."""
    steps = sum(int(entry[-1]) for entry in getattr(engine.accountant, "history", []))
    if hasattr(model, "remove_hooks"):
        model.remove_hooks()
    return {**record, "epsilon_spent": float(engine.get_epsilon(record["delta"])), "steps": steps}

"""Saving a trained model: a frugalml artifact directory (hash-checked weights, tokenizer, manifest) with a
model card that states what training measured and, for DP runs, exactly what privacy guarantee holds.

Text classifiers are saved as Hugging Face ``...ForSequenceClassification`` models and zoo digits models
by architecture name, so ``frugal profile OUT``, ``frugal serve OUT`` and ``frugal compress OUT`` load them.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from torch import nn

from frugalml._units import format_bytes, format_joules
from frugalml._version import __version__
from frugalml.report.card import TODO, _table

__all__ = ["save_trained", "training_card"]


def _privacy_section(result: Any) -> list[str]:
    p = result.privacy
    if p is None:
        return ["## Privacy", "", "Trained **without** differential privacy: no privacy guarantee is claimed for "
                "the training data.", ""]
    lines = ["## Privacy", "",
             f"Trained with {p['mechanism']} ({p['library']}). The {p['accountant'].upper()} accountant reports "
             f"**(epsilon = {p['epsilon_spent']:.3g}, delta = {p['delta']:.3g})** for the {p['steps']} steps taken "
             f"(target epsilon {p['epsilon_target']:g} over {p['epochs_planned']} planned epochs), at the level of "
             f"{p['unit']} among {p['training_rows']} training rows.", "",
             _table(["setting", "value"], [["noise multiplier", f"{p['noise_multiplier']:.4g}"],
                                           ["per-sample clipping norm", f"{p['max_grad_norm']:g}"],
                                           ["sample rate", f"{p['sample_rate']:.4g}"],
                                           ["delta", f"{p['delta']:.3g}"]]), "",
             "What this does not cover: the validation rows that chose the best epoch; the pretrained weights' own "
             "training data; and Opacus's default random generator is not cryptographically secure (the accountant "
             "assumes ideal Gaussian noise).", ""]
    if result.replaced_layers:
        lines += ["Layers replaced for per-sample gradients: " + "; ".join(result.replaced_layers) + ".", ""]
    for warning in p.get("warnings", []):
        lines += [f"> **Warning:** {warning}", ""]
    return lines


def training_card(result: Any, model_name: str) -> str:
    """A model card (Mitchell et al. 2019 sections) for a trained model, from its :class:`TrainResult`."""
    c = result.config
    test = "n/a" if result.test_accuracy is None else f"{result.test_accuracy:.4f}"
    lines = [
        f"# Model card: {c['method']} fine-tune of {model_name}", "",
        "## Model details", "",
        f"- Base model: `{model_name}` ({c['init']} weights); method: **{c['method']}**"
        + (f" (LoRA r={c['lora']['r']}, alpha={c['lora']['alpha']:g})" if c["method"] == "lora" else ""),
        f"- Parameters: {result.params_total:,} deployed, {result.params_trainable:,} trained "
        f"({result.trainable_fraction:.2%})",
        f"- Trained by frugalml {__version__} on {datetime.date.today().isoformat()}, seed {c['seed']}, "
        f"device {result.device}",
        *(f"- Frozen: {f}" for f in result.frozen), "",
        "## Intended use", "", f"{TODO} who should use this model, for what, and what it must not be used for.", "",
        "## Training data", "",
        f"- `{c['data']}`, labels from `{c['label_column'] or '(dataset default)'}`: {len(result.classes)} classes "
        f"({', '.join(result.classes[:12])}{', ...' if len(result.classes) > 12 else ''})",
        f"- {result.train_items} training, {result.validation_items} validation (early stopping), "
        f"{result.test_items} test rows", "",
        "## Evaluation", "",
        _table(["metric", "value"], [["test accuracy", test],
                                     ["test accuracy before training", "n/a" if result.baseline_test_accuracy is None
                                      else f"{result.baseline_test_accuracy:.4f}"],
                                     ["best validation accuracy", f"{result.validation_accuracy:.4f}"],
                                     ["epochs run (best)", f"{result.epochs_run} ({result.best_epoch})"]]), "",
        f"{TODO} quality on the subgroups this model will serve (`frugal evaluate OUT --group-column ...`).", "",
        *_privacy_section(result),
        "## Training cost", "",
        _table(["measure", "value"], [["wall time", f"{result.train_seconds:.1f} s"],
                                      ["peak memory",
                                       f"{format_bytes(result.peak_memory_bytes)} ({result.memory_source})"],
                                      ["energy", f"{format_joules(result.energy_j)} ({result.energy_note})"],
                                      *([["LoRA adapter", format_bytes(result.adapter_bytes)]]
                                        if result.adapter_bytes else [])]),
        "",
        "## Caveats and recommendations", "",
        f"{TODO} known failure modes, ethical considerations, licence of the base model and the data.", "",
    ]
    return "\n".join(lines)


def save_trained(model: nn.Module, handle: Any, kind: str, result: Any, *,
                 extra_files: dict[str, bytes] | None = None) -> list[tuple[Path, str, int]]:
    """Write the trained ``model`` to ``result.config["out"]``; sets ``result.out_dir`` and
    ``result.model_bytes`` and returns (path, sha256, bytes) of every file for the store."""
    from frugalml.compress.artifact import MANIFEST, save_model
    from frugalml.models import InputSpec, ModelHandle, SequenceClassifier

    out = Path(result.config["out"])
    # The class names travel with the model: evaluate, optimize and gate map text labels through them, and
    # frugal serve answers with them.
    meta = {"default_data": result.config["data"], "class_names": list(result.classes)}
    if kind == "text":
        spec = handle.input_spec
        trained = ModelHandle(name=str(out), format="hf", task="classification", module=SequenceClassifier(model),
                              tokenizer=handle.tokenizer, metadata=meta,
                              input_spec=InputSpec(kind="text", max_length=spec.max_length,
                                                   names=("input_ids", "attention_mask")))
    else:
        trained = ModelHandle(name=str(out), format="torch", task="classification", module=model,
                              input_spec=handle.input_spec, example_inputs=handle.example_inputs,
                              metadata=meta)
    files = {"MODEL_CARD.md": training_card(result, handle.name).encode("utf-8"), **(extra_files or {})}
    metrics = {"training": {k: v for k, v in result.to_dict().items() if k not in ("config", "history")}}
    save_model(trained, out, metrics=metrics, extra_files=files)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    result.out_dir = str(out)
    result.model_bytes = sum(e["bytes"] for rel, e in manifest["files"].items() if rel.startswith("model."))
    return [(out / rel, e["sha256"], e["bytes"]) for rel, e in manifest["files"].items()]

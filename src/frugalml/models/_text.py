"""Loading Hugging Face and sentence-transformers directories (safetensors weights only).

Weights go through ``transformers.AutoModel``; the sentence-transformers pipeline on top of it
(pooling, normalisation) is read from ``modules.json`` and ``1_Pooling/config.json`` and applied by
:class:`SentenceEncoder`, which matches ``SentenceTransformer.encode`` (checked in the tests).
Modules this loader cannot reproduce (Dense projections, custom code) are an error naming them,
never skipped silently.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from frugalml.errors import ModelLoadError, UnsafeFormatError
from frugalml.models._handle import InputSpec, ModelHandle, Task
from frugalml.models._safety import check_safetensors

__all__ = ["SentenceEncoder", "SequenceClassifier", "class_names_from_config", "is_sentence_transformers_dir",
           "load_text_dir"]

log = logging.getLogger(__name__)

_SUPPORTED_ST_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
    "sentence_transformers.base.modules.Transformer",
    "sentence_transformers.sentence_transformer.modules.Transformer",
    "sentence_transformers.sentence_transformer.modules.Pooling",
    "sentence_transformers.sentence_transformer.modules.Normalize",
}


def _inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None) -> dict[str, torch.Tensor]:
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    return inputs


class SentenceEncoder(torch.nn.Module):
    """Transformer encoder + pooling (+ L2 normalisation): token ids in, one embedding per text out.

    Shapes: ``input_ids``, ``attention_mask``: (batch, seq) int64 -> (batch, hidden) float.
    """

    def __init__(self, encoder: torch.nn.Module, pooling: str = "mean", normalize: bool = True) -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "max"):
            raise ValueError(f"pooling must be mean, cls or max, got {pooling!r}")
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.encoder(**_inputs(input_ids, attention_mask, token_type_ids)).last_hidden_state  # (b, s, h)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled


class SequenceClassifier(torch.nn.Module):
    """A ``...ForSequenceClassification`` model returning its logits tensor: (batch, seq) -> (batch, labels)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(**_inputs(input_ids, attention_mask, token_type_ids)).logits


def is_sentence_transformers_dir(path: Path) -> bool:
    return (path / "modules.json").is_file()


def class_names_from_config(config: Any) -> list[str] | None:
    """A classifier's class names in output order, from a Hugging Face config's ``id2label`` (a dict or
    a ``PretrainedConfig``); None when it only holds transformers' placeholders (``LABEL_0``, ...)."""
    id2label = config.get("id2label") if isinstance(config, dict) else getattr(config, "id2label", None)
    if not id2label:
        return None
    try:
        names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):  # keys that are not output indices
        return None
    if [int(k) for k in sorted(id2label, key=int)] != list(range(len(names))):
        return None
    return None if names == [f"LABEL_{i}" for i in range(len(names))] else names


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError("model", str(path), f"could not be read as JSON ({exc})",
                             "Restore the file from the model's original distribution.") from None


def _st_pipeline(path: Path) -> tuple[str, bool]:
    modules = _read_json(path / "modules.json")
    types = [m.get("type", "?") for m in modules]
    unsupported = [t for t in types if t not in _SUPPORTED_ST_MODULES]
    if unsupported:
        raise ModelLoadError("model", str(path), f"uses sentence-transformers modules frugalml cannot load: "
                             f"{', '.join(unsupported)}",
                             "Export the model to ONNX and load the .onnx file instead.")
    pooling, normalize = "mean", any(t.endswith("Normalize") for t in types)
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            config = _read_json(path / module.get("path", "1_Pooling") / "config.json")
            if config.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif config.get("pooling_mode_max_tokens"):
                pooling = "max"
            elif config.get("pooling_mode_mean_tokens", True):
                pooling = "mean"
            else:
                raise ModelLoadError("model", str(path), f"uses a pooling mode frugalml does not support ({config})",
                                     "Use mean, CLS or max pooling.")
    return pooling, normalize


def _weight_files(path: Path, trust_pickle: bool) -> tuple[tuple[Path, ...], bool]:
    safetensors = sorted(path.glob("*.safetensors"))
    if safetensors:
        for file in safetensors:
            check_safetensors(file)
        return tuple(safetensors), True
    pickles = sorted(p for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt", ".pkl"})
    if not pickles:
        raise ModelLoadError("model", str(path), "the directory holds no weights (no *.safetensors file)",
                             "Save the model with save_pretrained(..., safe_serialization=True).")
    if not trust_pickle:
        raise UnsafeFormatError("model", str(pickles[0]), "pickle-based weights can run arbitrary code when loaded",
                                "Convert them to safetensors, or pass --trust-pickle / trust_pickle=True "
                                "if you trust the file's origin.")
    return tuple(pickles), False


def load_text_dir(path: Path, *, task: Task | None, trust_pickle: bool, name: str | None = None) -> ModelHandle:
    """Load a Hugging Face or sentence-transformers model directory into a handle."""
    import transformers

    if not (path / "config.json").is_file():
        raise ModelLoadError("model", str(path), "the directory has no config.json",
                             "Pass a directory written by save_pretrained(), an .onnx file, or zoo:NAME.")
    weights, safe = _weight_files(path, trust_pickle)
    config = _read_json(path / "config.json")
    is_st = is_sentence_transformers_dir(path)
    architectures = config.get("architectures") or []
    is_classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
    if task is None:
        task = "classification" if is_classifier and not is_st else "embedding"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            loader = transformers.AutoModelForSequenceClassification if task == "classification" else transformers.AutoModel
            model = loader.from_pretrained(str(path), local_files_only=True, use_safetensors=safe)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError("model", str(path), f"transformers could not load it ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})",
                             "Check that the directory is complete (config.json, weights, tokenizer files).") from None
    model.eval()
    if task == "classification":
        module: torch.nn.Module = SequenceClassifier(model)
        fmt = "hf"
        pooling, normalize = None, None
    else:
        pooling, normalize = _st_pipeline(path) if is_st else ("mean", False)
        module = SentenceEncoder(model, pooling=pooling, normalize=normalize)
        fmt = "sentence-transformers" if is_st else "hf"
    max_length = int(min(getattr(tokenizer, "model_max_length", 512) or 512,
                         config.get("max_position_embeddings", 512)))
    if is_st and (path / "sentence_bert_config.json").is_file():
        max_length = int(_read_json(path / "sentence_bert_config.json").get("max_seq_length", max_length))
    names = ("input_ids", "attention_mask")
    return ModelHandle(
        name=name or str(path), format=fmt, task=task, module=module, tokenizer=tokenizer,
        input_spec=InputSpec(kind="text", max_length=max_length, names=names), weight_files=weights,
        metadata={"architecture": architectures[0] if architectures else type(model).__name__,
                  "pooling": pooling, "normalize": normalize, "source_dir": str(path),
                  "hidden_size": config.get("hidden_size"), "num_layers": config.get("num_hidden_layers"),
                  "num_heads": config.get("num_attention_heads"), "intermediate_size": config.get("intermediate_size"),
                  "class_names": class_names_from_config(config) if task == "classification" else None},
    )

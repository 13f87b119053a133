"""Compressed-model artifacts: a directory with the weights, the tokenizer, and ``manifest.json``.

Layout::

    OUT/
      manifest.json        recipe, per-step records (changed / skipped layers and why), source model,
                           frugalml version, sha256 and size of every file, measured metrics
      model.onnx           ONNX models (ONNX Runtime quantization, export_onnx), or
      model.safetensors    PyTorch models, with config.json (the Hugging Face config) for encoders
      tokenizer files      for text models

PyTorch architectures are rebuilt from data, never from pickles: the Hugging Face config (or a zoo
architecture from an allow-list), then the recorded structural edits (low-rank ranks, every layer's
shape after pruning, the dtype), then the safetensors weights. Models dynamically quantized with the
torch or inductor backend, torchao-quantized (``quantize_weights``) or 2:4-compressed (``sparsify_24``) are
stored as their float weights from before that step (2:4: with the zeros) and the step is replayed
on load (a deterministic function of the weights; INT4, FP8, 2:4 and anything quantized on a GPU
load only where a CUDA GPU is visible); ``deployed_bytes`` in the manifest gives their in-memory size.

Loading verifies every file's sha256 against the manifest and refuses a tampered artifact. With an
encryption key (32 bytes, from ``--encrypt-key-file``) every file except the manifest is stored
AES-256-GCM encrypted (``cryptography``); the manifest then records the key's fingerprint, never the key.
Loading one takes the key as ``load_model(..., encrypt_key=...)``, or reads the key file that
``$FRUGAL_KEY_FILE`` names (what ``frugal --key-file KEY COMMAND`` sets, so every command, and every
server replica, can open it). The decrypted files sit in a private temporary directory (mode 0700)
while the process runs, since ONNX Runtime sessions open files lazily, and are deleted when it exits
(:func:`remove_decrypted`; ``frugal serve`` also calls it at shutdown).
"""

from __future__ import annotations

import atexit
import datetime
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from frugalml._json import json_safe
from frugalml._version import __version__
from frugalml.compress._int8 import int8_bits
from frugalml.errors import InvalidArgumentError, MeasurementError, ModelLoadError
from frugalml.models import ModelHandle, SentenceEncoder, SequenceClassifier
from frugalml.models._handle import InputSpec
from frugalml.models._safety import sha256_file
from frugalml.models._text import class_names_from_config

__all__ = ["KEY_FILE_ENV", "MANIFEST", "is_artifact", "load_artifact", "read_key_file", "remove_decrypted",
           "save_model"]

MANIFEST = "manifest.json"
KEY_FILE_ENV = "FRUGAL_KEY_FILE"  # the key file loading falls back to (frugal --key-file sets it)
ARTIFACT_VERSION = 1
_ZOO_ARCHITECTURES = {"DigitsMLP", "DigitsCNN"}  # rebuildable by class name; nothing else is


def is_artifact(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


_DECRYPTED: list[Path] = []  # this process's decrypted copies of encrypted artifacts


def remove_decrypted() -> None:
    """Delete the decrypted copies of encrypted artifacts this process loaded. Runs at interpreter exit;
    ``frugal serve`` also runs it when its app shuts down, since uvicorn ends a process stopped by SIGTERM
    by re-raising the signal, which skips exit handlers. Handles loaded before cannot run after it."""
    while _DECRYPTED:
        shutil.rmtree(_DECRYPTED.pop(), ignore_errors=True)


atexit.register(remove_decrypted)


def read_key_file(path: str | Path, *, argument: str = "encrypt_key_file") -> bytes:
    """A 32-byte AES-256 key: raw bytes, or 64 hex characters. ``argument`` names the option or variable
    the path came from, in errors."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(argument, str(path), f"cannot be read ({exc.strerror})",
                                   "Create one with: python -c \"import os; print(os.urandom(32).hex())\" > key") from None
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode()) if len(text) == 64 else raw
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) != 32:
        raise InvalidArgumentError(argument, str(path), f"holds {len(key)} bytes, not a 32-byte key",
                                   "Write 32 random bytes, or 64 hex characters, to the file.")
    return key


def _fingerprint(key: bytes) -> str:
    import hashlib

    return hashlib.sha256(b"frugalml-key:" + key).hexdigest()[:16]


def _encrypt(data: bytes, key: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def _decrypt(data: bytes, key: bytes, name: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(data[:12], data[12:], None)
    except InvalidTag:
        raise ModelLoadError("encrypt_key_file", name, "decryption failed (wrong key or modified file)",
                             "Pass the key the artifact was saved with.") from None


# ----------------------------------------------------------------------------- saving
def rebuildable(module: torch.nn.Module) -> bool:
    """Whether an artifact can hold ``module`` as safetensors: its architecture can be rebuilt without
    its code (a Hugging Face model, a zoo architecture). Any other module is saved as ONNX."""
    try:
        _architecture(module)
    except InvalidArgumentError:
        return False
    return True


def _architecture(module: torch.nn.Module) -> tuple[str, torch.nn.Module | None]:
    if isinstance(module, SentenceEncoder):
        return "sentence-encoder", module.encoder
    if isinstance(module, SequenceClassifier):
        return "sequence-classifier", module.model
    if type(module).__name__ in _ZOO_ARCHITECTURES:
        return type(module).__name__, None
    raise InvalidArgumentError("model", type(module).__name__, "a custom nn.Module cannot be rebuilt from safetensors "
                               "without its code", "End the recipe with export_onnx to save it as ONNX.")


def _state_bytes(module: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    # Clone: safetensors refuses tensors that share storage (tied embeddings); each is stored once per name.
    return save({k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()})


def _deployed_bytes(module: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)  # our own in-memory object, only measured, never loaded
    return buffer.tell()


def save_model(handle: ModelHandle, out_dir: str | Path, *, metrics: dict[str, Any] | None = None,
               encrypt_key: bytes | None = None, overwrite: bool = False,
               extra_files: Mapping[str, bytes] | None = None) -> Path:
    """Write ``handle`` as an artifact directory; returns the directory. Written to a temporary folder
    beside ``out_dir`` and renamed into place, so a failure never leaves half an artifact.

    ``extra_files`` (relative path -> content: a model card, a LoRA adapter) are written alongside and
    listed in the manifest with their hashes like the weights."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidArgumentError("out_dir", str(out), "exists and is not empty",
                                   "Choose a new directory, or pass --overwrite.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, content in (extra_files or {}).items():
            target = (staging / rel).resolve()
            if staging.resolve() not in target.parents or rel == MANIFEST:
                raise InvalidArgumentError("extra_files", rel, "must be a relative path inside the artifact",
                                           "Name files like 'MODEL_CARD.md' or 'adapter/adapter_config.json'.")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        manifest = _write(handle, staging, metrics or {}, encrypt_key)
        (staging / MANIFEST).write_text(json.dumps(json_safe(manifest), indent=2), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; an artifact is an ordinary folder
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write(handle: ModelHandle, folder: Path, metrics: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    compression = handle.metadata.get("compression", {})
    spec = handle.input_spec
    manifest: dict[str, Any] = {
        "frugalml_artifact": ARTIFACT_VERSION, "frugalml_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "name": handle.name, "task": handle.task, "format": None,
        "input_spec": {"kind": spec.kind, "item_shape": list(spec.item_shape) if spec.item_shape else None,
                       "dtype": spec.dtype, "max_length": spec.max_length, "names": list(spec.names)},
        "source": {"name": compression.get("source", handle.name), "sha256": _source_digest(handle)},
        "recipe": compression.get("recipe"), "steps": compression.get("steps", []),
        "skipped": [{"technique": s["technique"], **k} for s in compression.get("steps", []) for k in s["skipped"]],
        "metrics": metrics, "encryption": None, "files": {},
        "default_data": handle.metadata.get("default_data"),
        "class_names": handle.class_names if handle.task == "classification" else None,
    }
    if handle.tokenizer is not None:
        handle.tokenizer.save_pretrained(str(folder))
    if handle.onnx_path is not None and handle.module is None:
        manifest["format"] = "onnx"
        shutil.copyfile(handle.onnx_path, folder / "model.onnx")
    else:
        module = handle.metadata.get("_float_module")
        module = module if module is not None else handle.module  # (an empty nn.Sequential is falsy)
        kind, hf_model = _architecture(module)
        manifest["format"] = "torch"
        steps = compression.get("steps", [])
        quantized = next((s["structure"] for s in steps if s["technique"] == "quantize_dynamic"
                          and s["structure"].get("backend") in ("torch", "inductor")), None)
        from frugalml.compress.prune import layer_shapes

        ranks: dict[str, int] = {}
        heads: dict[str, int] = {}
        from frugalml.compress.gpu import REPLAYED_TECHNIQUES

        compiled = next((s["structure"]["compile"] for s in steps if "compile" in s["structure"]), None)
        replayed = next(({"technique": s["technique"], **s["structure"]} for s in steps
                         if s["technique"] in REPLAYED_TECHNIQUES), None)
        for step in steps:
            ranks.update(step["structure"].get("ranks", {}))
            heads.update(step["structure"].get("attention_heads", {}))
        dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
        manifest["architecture"] = {
            "kind": kind, "pooling": getattr(module, "pooling", None), "normalize": getattr(module, "normalize", None),
            "ranks": ranks, "attention_heads": heads, "shapes": layer_shapes(module), "dtype": str(dtype).removeprefix("torch."),
            "quantized": quantized, "compile": compiled, "replay": replayed,
        }
        if hf_model is not None:
            hf_model.config.save_pretrained(str(folder))
        (folder / "model.safetensors").write_bytes(_state_bytes(module))
        if quantized is not None:
            manifest["metrics"].setdefault("deployed_bytes", _deployed_bytes(handle.module))
        elif replayed is not None:
            from frugalml.measure import model_size

            # In memory, as profiled: torchao and 2:4 tensors by their packed parts.
            manifest["metrics"].setdefault("deployed_bytes", model_size(handle))
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        if key is not None:
            path.write_bytes(_encrypt(path.read_bytes(), key))
        rel = str(path.relative_to(folder))
        manifest["files"][rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    if key is not None:
        manifest["encryption"] = {"algorithm": "AES-256-GCM", "key_fingerprint": _fingerprint(key)}
    return manifest


def _source_digest(handle: ModelHandle) -> str | None:
    from frugalml.models import weights_digest

    return weights_digest(handle.metadata.get("_source_handle", handle))


# ----------------------------------------------------------------------------- loading
def _verify(folder: Path, manifest: dict[str, Any]) -> None:
    listed = manifest.get("files", {})
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    missing = sorted(set(listed) - present)
    if missing:
        raise ModelLoadError("model", str(folder), f"is incomplete: {', '.join(missing)} missing",
                             "Copy the whole artifact directory again.")
    for rel, entry in listed.items():
        if sha256_file(folder / rel) != entry.get("sha256"):
            raise ModelLoadError("model", str(folder), f"{rel} does not match the sha256 in manifest.json "
                                 "(tampered or corrupted)", "Re-create or re-copy the artifact; do not edit its files.")
    extra = sorted(present - set(listed))
    if extra:
        raise ModelLoadError("model", str(folder), f"holds files not in manifest.json: {', '.join(extra[:5])}",
                             "Remove them, or re-create the artifact.")


def load_artifact(path: str | Path, *, key: bytes | None = None) -> ModelHandle:
    """Load an artifact directory written by :func:`save_model`, verifying every file first."""
    folder = Path(path)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError("model", str(folder), f"manifest.json is unreadable ({exc})",
                             "Re-create the artifact.") from None
    if manifest.get("frugalml_artifact") != ARTIFACT_VERSION:
        raise ModelLoadError("model", str(folder), f"artifact format {manifest.get('frugalml_artifact')!r} is not "
                             f"supported (this frugalml reads {ARTIFACT_VERSION})", "Upgrade frugalml.")
    _verify(folder, manifest)
    if manifest.get("encryption"):
        given = "encrypt_key"
        if key is None and os.environ.get(KEY_FILE_ENV):
            given = KEY_FILE_ENV
            key = read_key_file(os.environ[KEY_FILE_ENV], argument=KEY_FILE_ENV)
        if key is None:
            raise ModelLoadError("model", str(folder), "is encrypted",
                                 "Pass its key file: frugal --key-file KEY COMMAND ... (or set $FRUGAL_KEY_FILE); "
                                 "in Python, load_model(path, encrypt_key=frugalml.compress.read_key_file(KEY)).")
        if _fingerprint(key) != manifest["encryption"]["key_fingerprint"]:
            shown = os.environ[KEY_FILE_ENV] if given == KEY_FILE_ENV else "(given key)"
            raise ModelLoadError(given, shown, f"is not the key {folder} was saved with",
                                 "Pass the right key file (frugal --key-file KEY, or $FRUGAL_KEY_FILE).")
        plain = Path(tempfile.mkdtemp(prefix="frugalml-decrypted-"))  # mode 0700: this user only
        # the handle may open these files later (an ONNX session, a copy made by compress()): they
        # live as long as the process, then go (remove_decrypted, at exit and at serve's shutdown)
        _DECRYPTED.append(plain)
        for rel in manifest["files"]:
            (plain / rel).parent.mkdir(parents=True, exist_ok=True)
            (plain / rel).write_bytes(_decrypt((folder / rel).read_bytes(), key, rel))
        source = plain
    else:
        source = folder
    handle = _rebuild(source, manifest)
    handle.weight_files = tuple(folder / rel for rel in manifest["files"] if rel.startswith("model."))
    handle.name = str(folder)
    handle.metadata["manifest"] = manifest
    return handle


def _tokenizer(folder: Path) -> Any:
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.txt").is_file():
        return None
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _rebuild(folder: Path, manifest: dict[str, Any]) -> ModelHandle:
    raw = manifest["input_spec"]
    spec = InputSpec(kind=raw["kind"], item_shape=tuple(raw["item_shape"]) if raw["item_shape"] else None,
                     dtype=raw["dtype"], max_length=raw["max_length"], names=tuple(raw["names"]))
    tokenizer = _tokenizer(folder)
    meta = {"compression": {"recipe": manifest.get("recipe"), "steps": manifest.get("steps")},
            "default_data": manifest.get("default_data"), "class_names": manifest.get("class_names")}
    if manifest["format"] == "onnx":
        return ModelHandle(name=str(folder), format="onnx", task=manifest.get("task"), input_spec=spec,
                           onnx_path=folder / "model.onnx", tokenizer=tokenizer, metadata=meta)
    from safetensors.torch import load_file

    from frugalml.compress.lowrank import apply_ranks
    from frugalml.compress.prune import apply_attention_heads, rebuild_shapes

    arch = manifest["architecture"]
    kind = arch["kind"]
    if kind in ("sentence-encoder", "sequence-classifier"):
        import transformers

        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        if kind == "sentence-encoder":
            module: torch.nn.Module = SentenceEncoder(transformers.AutoModel.from_config(config),
                                                      pooling=arch["pooling"], normalize=arch["normalize"])
        else:
            module = SequenceClassifier(transformers.AutoModelForSequenceClassification.from_config(config))
        fmt = "sentence-transformers" if kind == "sentence-encoder" else "hf"
        meta.update({"hidden_size": config.hidden_size, "num_heads": config.num_attention_heads,
                     "num_layers": config.num_hidden_layers})
        if kind == "sequence-classifier" and not meta["class_names"]:  # artifacts from before class_names
            meta["class_names"] = class_names_from_config(config)
    elif kind in _ZOO_ARCHITECTURES:
        from frugalml.models import _zoo

        module = getattr(_zoo, kind)()
        fmt = "torch"
    else:
        raise ModelLoadError("model", str(folder), f"unknown architecture {kind!r} in manifest.json",
                             "Re-create the artifact with this frugalml version.")
    apply_ranks(module, {k: int(v) for k, v in arch.get("ranks", {}).items()})
    rebuild_shapes(module, arch["shapes"])
    apply_attention_heads(module, {k: int(v) for k, v in arch.get("attention_heads", {}).items()})
    module = module.to(getattr(torch, arch.get("dtype", "float32")))
    try:
        module.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    except RuntimeError as exc:
        raise ModelLoadError("model", str(folder), f"weights do not fit the rebuilt architecture ({str(exc)[:200]})",
                             "Re-create the artifact with this frugalml version.") from None
    module.eval()
    quantized = arch.get("quantized")
    # Bit widths are decided again for this CPU (artifacts from before weight_bits used 8).
    weight_bits = quantized.get("weight_bits", 8) if quantized else 8
    if quantized and quantized.get("backend") == "inductor":
        from frugalml.compress._inductor import inductor_int8

        try:
            module = inductor_int8(module, spec, quantized["quantized"], bits=int8_bits("inductor", weight_bits))
        except InvalidArgumentError as exc:
            raise ModelLoadError("model", str(folder), f"holds INT8 layers quantized for TorchInductor on load, "
                                 f"which {exc.problem}", exc.fix) from None
    elif quantized:
        from frugalml.compress.quantize import _torch_dynamic

        module = _torch_dynamic(module, quantized["quantized"], quantized["per_channel"],
                                int8_bits("torch", weight_bits))
    if arch.get("replay"):
        from frugalml.compress.gpu import replay_gpu_step

        try:
            module = replay_gpu_step(module, arch["replay"])
        except MeasurementError as exc:
            raise ModelLoadError("model", str(folder), f"holds {arch['replay']['technique']} weights that are "
                                 f"rebuilt on load, and {exc.problem}", exc.fix) from None
    if arch.get("compile"):
        from frugalml.compress.runtime import apply_compile

        module = apply_compile(module, arch["compile"])
    return ModelHandle(name=str(folder), format=fmt, task=manifest.get("task"), input_spec=spec, module=module,
                       tokenizer=tokenizer, metadata=meta)

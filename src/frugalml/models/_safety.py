"""Safe reading of model files: safetensors and ONNX are checked before use; pickles are refused.

Pickle-based checkpoints (``.pt``, ``.pth``, ``.bin``, ``.pkl``, ``.ckpt``) can execute arbitrary code
when loaded, so they load only with ``trust_pickle=True``, and then with ``torch.load``'s full
unpickler only because the user said they trust the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from frugalml.errors import ModelLoadError

__all__ = ["PICKLE_SUFFIXES", "check_onnx", "check_safetensors", "sha256_file"]

PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt"})


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_safetensors(path: Path) -> None:
    """Open the safetensors header and every tensor's metadata; a corrupt file is a clear error."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                handle.get_slice(key).get_shape()
    except Exception as exc:  # noqa: BLE001 - safetensors raises several unrelated types for corruption
        raise ModelLoadError("model", str(path), f"is not a valid safetensors file ({type(exc).__name__}: {exc})",
                             "Re-export the weights with safetensors, or restore the file from its source.") from None


def check_onnx(path: Path) -> None:
    """Parse and check the ONNX graph; a corrupt or invalid file is a clear error."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, OSError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError("model", str(path), f"is not a valid ONNX model ({first})",
                             "Re-export it (torch.onnx.export) or restore the file from its source.") from None

"""The environment fingerprint recorded with every measurement: hardware, drivers, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import psutil
import torch

from frugalml._version import __version__
from frugalml.measure.devices import cpu_features, cpu_model_name

__all__ = ["fingerprint"]

_LIBRARIES = ("torch", "onnxruntime", "onnx", "transformers", "numpy", "safetensors", "sqlalchemy")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    info: dict[str, Any] = {"name": torch.cuda.get_device_name(), "count": torch.cuda.device_count(),
                            "cuda_runtime": torch.version.cuda,
                            "memory_bytes": torch.cuda.get_device_properties(0).total_memory,
                            "capability": ".".join(map(str, torch.cuda.get_device_capability()))}
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        info["driver"] = driver.decode() if isinstance(driver, bytes) else driver
    except Exception:  # noqa: BLE001 - a missing NVML only means no driver version
        info["driver"] = None
    return info


def fingerprint(threads: int | None = None) -> dict[str, Any]:
    """What a reader needs to reproduce or compare a measurement."""
    return {
        "cpu": cpu_model_name(),
        "cpu_features": cpu_features(),
        # The widest vector ISA PyTorch's own kernels dispatch to on this machine (e.g. AVX2, AVX512).
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "memory_bytes": psutil.virtual_memory().total,
        "gpu": _gpu(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "frugalml": __version__,
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }

"""Device peaks for the roofline: a table of known GPUs, and a measured probe for CPUs.

Table figures are vendor datasheet peaks for dense math (no structured-sparsity doubling), in
FLOP/s per precision, and memory bandwidth in bytes/s. A CPU has no table entry worth trusting
(the same model name runs at different clocks, core counts and vector widths, and a VM shows a
slice of it), so CPUs are probed: a float32 matrix product for compute and a large copy for
bandwidth, at the thread count in use, cached per CPU, thread count and torch version.
"""

from __future__ import annotations

import functools
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from frugalml._cache import atomic_write_bytes, cache_dir

__all__ = ["KNOWN_GPUS", "DeviceSpec", "cpu_model_name", "device_spec", "gpu_spec", "probe_cpu"]

log = logging.getLogger(__name__)
T = 1e12


@dataclass(frozen=True)
class DeviceSpec:
    """Peak compute per precision (FLOP/s), peak memory bandwidth (bytes/s) and where they came from."""

    name: str
    peak_flops: dict[str, float]
    bandwidth_bytes_per_s: float
    source: str  # "table" or "probe"
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def peak_for(self, precision: str) -> float:
        if precision in self.peak_flops:
            return self.peak_flops[precision]
        return self.peak_flops["fp32"]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# (substrings that must all appear in torch.cuda.get_device_name(), spec). First match wins, so
# the more specific variants come first.
KNOWN_GPUS: list[tuple[tuple[str, ...], DeviceSpec]] = [
    (("H100", "PCIe"), DeviceSpec("NVIDIA H100 PCIe", {"fp32": 51.2 * T, "tf32": 378 * T, "bf16": 756 * T,
                                                       "fp16": 756 * T, "fp8": 1513 * T, "int8": 1513 * T},
                                  2.0e12, "table", "datasheet, dense")),
    (("H100", "NVL"), DeviceSpec("NVIDIA H100 NVL", {"fp32": 60 * T, "tf32": 418 * T, "bf16": 835 * T,
                                                     "fp16": 835 * T, "fp8": 1671 * T, "int8": 1671 * T},
                                 3.9e12, "table", "datasheet, dense")),
    (("H100",), DeviceSpec("NVIDIA H100 SXM", {"fp32": 66.9 * T, "tf32": 494.5 * T, "bf16": 989 * T,
                                               "fp16": 989 * T, "fp8": 1979 * T, "int8": 1979 * T},
                           3.35e12, "table", "datasheet, dense; HBM3")),
    (("H200",), DeviceSpec("NVIDIA H200", {"fp32": 66.9 * T, "tf32": 494.5 * T, "bf16": 989 * T, "fp16": 989 * T,
                                           "fp8": 1979 * T, "int8": 1979 * T}, 4.8e12, "table", "datasheet, dense; HBM3e")),
    (("A100", "80GB", "PCIe"), DeviceSpec("NVIDIA A100 80GB PCIe", {"fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T,
                                                                    "fp16": 312 * T, "int8": 624 * T},
                                          1.935e12, "table", "datasheet, dense")),
    (("A100", "80GB"), DeviceSpec("NVIDIA A100 80GB SXM", {"fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T,
                                                           "fp16": 312 * T, "int8": 624 * T},
                                  2.039e12, "table", "datasheet, dense")),
    (("A100",), DeviceSpec("NVIDIA A100 40GB", {"fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T,
                                                "int8": 624 * T}, 1.555e12, "table", "datasheet, dense")),
    (("L40S",), DeviceSpec("NVIDIA L40S", {"fp32": 91.6 * T, "tf32": 183 * T, "bf16": 362 * T, "fp16": 362 * T,
                                           "fp8": 733 * T, "int8": 733 * T}, 0.864e12, "table", "datasheet, dense")),
    (("L4",), DeviceSpec("NVIDIA L4", {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T,
                                       "fp8": 242 * T, "int8": 242 * T}, 0.3e12, "table", "datasheet, dense")),
    (("A10",), DeviceSpec("NVIDIA A10", {"fp32": 31.2 * T, "tf32": 62.5 * T, "bf16": 125 * T, "fp16": 125 * T,
                                         "int8": 250 * T}, 0.6e12, "table", "datasheet, dense")),
    (("T4",), DeviceSpec("NVIDIA T4", {"fp32": 8.1 * T, "fp16": 65 * T, "int8": 130 * T}, 0.32e12, "table",
                         "datasheet, dense")),
    (("4090",), DeviceSpec("NVIDIA GeForce RTX 4090", {"fp32": 82.6 * T, "tf32": 82.6 * T, "bf16": 165 * T,
                                                       "fp16": 165 * T, "fp8": 330 * T, "int8": 660 * T},
                           1.008e12, "table", "datasheet, dense, FP32 accumulate")),
]


def gpu_spec(name: str) -> DeviceSpec | None:
    for needles, spec in KNOWN_GPUS:
        if all(n in name for n in needles):
            return spec
    return None


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# CPU features that decide which kernels run (and so which compression pays): vector width, INT8 dot
# products (VNNI / Arm dotprod, i8mm), native BF16 / FP16 math and AMX tiles.
ML_CPU_FEATURES = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                   "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm",
                   "bf16", "sve", "sve2")


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The ML-relevant features this CPU reports (``/proc/cpuinfo`` flags; empty where there is none).

    ``cpuinfo``: the text to parse instead of this machine's ``/proc/cpuinfo``.
    """
    if cpuinfo is None:
        return list(_local_cpu_features())
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm spelling; the first core speaks for all
            present = set(value.split())
            return [f for f in ML_CPU_FEATURES if f in present]
    return []


@functools.lru_cache(maxsize=1)
def _local_cpu_features() -> tuple[str, ...]:
    # Read once: the search asks at every trial.
    try:
        return tuple(cpu_features(Path("/proc/cpuinfo").read_text()))
    except OSError:
        return ()


def native_bf16_cpu(features: list[str] | None = None) -> bool:
    """Whether this CPU computes in BF16 natively (AVX512-BF16 or AMX on x86, the Arm BF16 extension):
    there, a BF16 cast roughly halves matmul time; elsewhere PyTorch emulates it and it is slower."""
    present = set(cpu_features() if features is None else features)
    return bool(present & {"avx512_bf16", "amx_bf16", "bf16"})


def _best_rate(fn: Callable[[], object], work: float, *, warmup: int = 3, repeats: int = 7) -> float:
    """The best ``work`` per second over ``repeats`` timed calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = max(best, work / (time.perf_counter() - start))
    return best


def _probe(threads: int) -> tuple[float, float]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        best_flops = _best_rate(lambda: torch.mm(a, b), 2 * n**3)
        # 64 MiB per buffer: far beyond the last-level cache, so the copy streams from DRAM.
        src, dst = torch.randn(16 * 1024 * 1024), torch.empty(16 * 1024 * 1024)
        best_bw = _best_rate(lambda: dst.copy_(src), 2 * src.numel() * 4, warmup=1)  # bytes read + written
        return best_flops, best_bw
    finally:
        torch.set_num_threads(previous)


def _probe_int8(threads: int) -> float:
    """Best-of-7 INT8 GEMM rate (FLOP/s) through ONNX Runtime's MatMulInteger: the kernel quantized
    ONNX graphs run on the CPU (PyTorch's own CPU int8 matmul is a slow reference path)."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    n = 2048
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "probe",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n]),
                               helper.make_tensor_value_info("B", TensorProto.INT8, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"A": rng.integers(0, 255, (n, n), dtype=np.uint8), "B": rng.integers(-128, 127, (n, n), dtype=np.int8)}
    return _best_rate(lambda: session.run(None, feed), 2 * n**3)


def probe_cpu(threads: int) -> DeviceSpec:
    """Measured fp32 matmul FLOP/s (PyTorch), int8 GEMM FLOP/s (ONNX Runtime) and copy bandwidth of
    this CPU at ``threads`` threads (cached per CPU, thread count and library versions)."""
    import onnxruntime

    name = cpu_model_name()
    key = f"{name}|threads={threads}|torch={torch.__version__}|ort={onnxruntime.__version__}|probe=3"
    path = cache_dir() / "device-probes.json"
    cache: dict[str, list[float]] = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except ValueError:
            cache = {}
    if key in cache:
        flops, bandwidth, int8 = cache[key]
    else:
        log.info("probing %s at %d threads (matmul and copy; cached in %s)", name, threads, path)
        flops, bandwidth = _probe(threads)
        int8 = _probe_int8(threads)
        cache[key] = [flops, bandwidth, int8]
        atomic_write_bytes(path, json.dumps(cache, indent=1).encode())
    return DeviceSpec(name=name, peak_flops={"fp32": flops, "int8": int8}, bandwidth_bytes_per_s=bandwidth,
                      source="probe", note=f"measured: best of 7 2048x2048 matmuls (fp32 PyTorch, int8 ONNX Runtime "
                      f"MatMulInteger) and 64 MiB copies at {threads} threads")


def device_spec(device: str, threads: int) -> DeviceSpec:
    """The roofline peaks for ``device`` ("cpu" or "cuda")."""
    if device == "cuda":
        name = torch.cuda.get_device_name()
        spec = gpu_spec(name)
        if spec is not None:
            return spec
        props = torch.cuda.get_device_properties(0)
        log.warning("GPU %s is not in frugalml's device table; the roofline uses no peak figures", name)
        return DeviceSpec(name=name, peak_flops={"fp32": float("nan")}, bandwidth_bytes_per_s=float("nan"),
                          source="unknown", note=f"not in the device table ({props.multi_processor_count} SMs)")
    return probe_cpu(threads)

"""Roofline analysis: is the model (and each layer) limited by memory bandwidth or by compute?

For a workload of F FLOPs moving B bytes, arithmetic intensity I = F / B (FLOP/byte). A device
with peak compute P (FLOP/s) and bandwidth W (bytes/s) can attain at most min(P, I * W). The
ridge point is I* = P / W: below it the work is memory-bound, above it compute-bound. The
achieved rate is F divided by the measured time; its fraction of the attainable roof says how
much headroom a better kernel or runtime could find.

The whole model's point uses the median latency of each batch size. Layer points use per-layer
times from forward hooks (PyTorch models), which add a small overhead per layer and, on CUDA, a
synchronisation per layer, or ONNX Runtime's own profiler (per-node kernel times); they rank
layers, the whole-model point is the one to quote.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from frugalml.measure.devices import DeviceSpec
from frugalml.measure.flops import FlopCount

__all__ = ["LayerPoint", "Roofline", "RooflinePoint", "precision_of", "roofline_point", "time_layers",
           "time_onnx_nodes"]


def precision_of(module: torch.nn.Module | None) -> str:
    """The precision matrix products run at: that of most Linear / convolution weight elements
    (INT8 for PyTorch's dynamic INT8 layers and for ``quantize_dynamic backend: inductor``
    graphs), else the dominant parameter dtype; TF32 if enabled for float32."""
    if module is None:
        return "fp32"
    counts = _matmul_weights(module)
    if not counts:
        for p in module.parameters():
            counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    dtype = max(counts, key=lambda d: counts[d]) if counts else torch.float32
    if dtype == torch.int8:
        return "int8"
    if dtype == torch.bfloat16:
        return "bf16"
    if dtype == torch.float16:
        return "fp16"
    if dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return "fp32"


def _matmul_weights(module: torch.nn.Module) -> dict[torch.dtype, int]:
    """Weight elements of the matrix products in ``module``, by the dtype the kernel multiplies."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    counts: dict[torch.dtype, int] = {}

    def add(dtype: torch.dtype, n: int) -> None:
        counts[dtype] = counts.get(dtype, 0) + n

    for sub in module.modules():
        if isinstance(sub, DynamicLinear):
            packed = sub._packed_params.dtype  # qint8, or float16 for fp16 dynamic quantization
            add(torch.int8 if packed == torch.qint8 else packed, sub.in_features * sub.out_features)
        elif isinstance(sub, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)):
            add(sub.weight.dtype, sub.weight.numel())
        elif hasattr(sub, "matmul_weights"):  # an exported graph (frugalml.compress._inductor.Int8Graph)
            for dtype, n in sub.matmul_weights().items():
                add(dtype, n)
    return counts


@dataclass(frozen=True)
class RooflinePoint:
    flops: float
    bytes: float
    intensity: float
    bound: str  # "memory" | "compute" | "unknown"
    attainable_flops_per_s: float | None
    achieved_flops_per_s: float | None
    fraction_of_roof: float | None


@dataclass(frozen=True)
class LayerPoint(RooflinePoint):
    name: str = ""
    kind: str = ""
    time_ms: float | None = None


@dataclass(frozen=True)
class Roofline:
    device: DeviceSpec
    precision: str
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float
    ridge_intensity: float
    by_batch: dict[int, RooflinePoint]
    layer_batch: int
    layers: list[LayerPoint]

    @property
    def bound(self) -> str:
        """The whole model's bound at ``layer_batch`` (the largest batch profiled)."""
        return self.by_batch[self.layer_batch].bound

    def to_dict(self) -> dict[str, Any]:
        main = self.by_batch[self.layer_batch]
        return {
            "bound": self.bound,
            "batch": self.layer_batch,
            "arithmetic_intensity": main.intensity,
            "achieved_flops_per_s": main.achieved_flops_per_s,
            "fraction_of_roof": main.fraction_of_roof,
            "precision": self.precision,
            "peak_flops_per_s": self.peak_flops_per_s,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "ridge_intensity": self.ridge_intensity,
            "device": self.device.to_dict(),
            "by_batch": {str(b): asdict(p) for b, p in self.by_batch.items()},
            "layers": [asdict(layer) for layer in self.layers],
        }


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def roofline_point(flops: float, moved: float, seconds: float | None, peak: float, bandwidth: float) -> RooflinePoint:
    intensity = flops / moved if moved else float("inf")
    if not (_finite(peak) and _finite(bandwidth)) or flops == 0:
        bound, attainable = "unknown", None
    else:
        attainable = min(peak, intensity * bandwidth)
        bound = "memory" if intensity < peak / bandwidth else "compute"
    achieved = flops / seconds if seconds and seconds > 0 else None
    fraction = achieved / attainable if achieved is not None and attainable else None
    return RooflinePoint(flops=float(flops), bytes=float(moved), intensity=float(intensity), bound=bound,
                         attainable_flops_per_s=attainable, achieved_flops_per_s=achieved, fraction_of_roof=fraction)


def time_layers(module: torch.nn.Module, call: Callable[[], object], layer_names: list[str], *,
                repeats: int = 5, synchronize: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median own time (seconds) of each named layer over ``repeats`` forward passes.

    Names are as FlopCounterMode gives them (``RootClass.child.grandchild``). A layer's own time is
    its hooked time minus that of the named layers nested in it.
    """
    root = type(module).__name__
    modules: dict[str, torch.nn.Module] = {}
    for name in layer_names:
        path = name.split(".", 1)[1] if "." in name else ""
        if name.split(".", 1)[0] != root:
            continue
        try:
            modules[name] = module.get_submodule(path) if path else module
        except AttributeError:
            continue
    call()  # warm-up, untimed
    totals: dict[str, list[float]] = {name: [] for name in modules}
    starts: dict[str, float] = {}
    handles = []
    for name, sub in modules.items():
        def pre(_m: Any, _a: Any, name: str = name) -> None:
            synchronize()
            starts[name] = time.perf_counter()

        def post(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            synchronize()
            totals[name].append(time.perf_counter() - starts[name])

        handles.append(sub.register_forward_pre_hook(pre))
        handles.append(sub.register_forward_hook(post))
    try:
        for _ in range(repeats):
            call()
    finally:
        for handle in handles:
            handle.remove()
    medians = {name: float(np.median(v)) if v else 0.0 for name, v in totals.items()}
    own = {}
    for name, total in medians.items():
        inside = [o for o in medians if o.startswith(name + ".")]
        # Only the outermost named layers inside this one: deeper ones are already in their time.
        direct = [o for o in inside if not any(o.startswith(mid + ".") for mid in inside if mid != o)]
        own[name] = max(total - sum(medians[o] for o in direct), 0.0)
    return own


def time_onnx_nodes(path: Any, inputs: dict[str, np.ndarray], *, threads: int | None = None, repeats: int = 5,
                    providers: list[str] | None = None) -> dict[str, float]:
    """Median kernel time (seconds) of each node of an ONNX graph over ``repeats`` runs, from ONNX
    Runtime's profiler, in a session set up like the measured one (all graph optimizations on).

    Nodes ORT fuses at load time time under their fused name; a node of the file that no longer
    exists in the session gets no time (the roofline then shows its FLOPs without a point).
    """
    import json
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="frugalml-ortprof-") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=providers or ["CPUExecutionProvider"])
        feed = {i.name: inputs[i.name] for i in session.get_inputs() if i.name in inputs}
        session.run(None, feed)  # warm-up: its kernel times are dropped below
        for _ in range(repeats):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    times: dict[str, list[float]] = {}
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            times.setdefault(event["name"][: -len("_kernel_time")], []).append(event["dur"] / 1e6)  # us -> s
    # each node appears once per run; the first (warm-up) occurrence is dropped
    session_times = {name: float(np.median(v[1:] if len(v) > 1 else v)) for name, v in times.items()}
    return _match_file_nodes(path, session_times)


def _match_file_nodes(path: Any, session_times: dict[str, float]) -> dict[str, float]:
    """Session node times keyed by the file's node names. ORT renames what it rewrites at load time:
    ``fused NAME`` (activation fusion), ``NAME/MatMulAddFusion`` (a rewrite of NAME), and NCHWc
    convolutions are named after their output tensor (``OUTPUT_nchwc``)."""
    import onnx

    out: dict[str, float] = {}
    for index, node in enumerate(onnx.load(str(path), load_external_data=False).graph.node):
        name = node.name or f"{node.op_type}_{index}"
        keys = [name, f"fused {name}", *(f"{o}_nchwc" for o in node.output if o)]
        hit = next((session_times[k] for k in keys if k in session_times), None)
        if hit is None:
            hit = next((t for k, t in session_times.items() if k.startswith(name + "/")), None)
        if hit is not None:
            out[name] = hit
    return out


def build_roofline(*, device: DeviceSpec, precision: str, counts: dict[int, FlopCount],
                   seconds_by_batch: dict[int, float], layer_times: dict[str, float] | None,
                   layer_kinds: dict[str, str] | None = None) -> Roofline:
    """Assemble the whole-model points per batch and the per-layer points at the largest batch."""
    peak, bandwidth = device.peak_for(precision), device.bandwidth_bytes_per_s
    by_batch = {b: roofline_point(c.flops, c.bytes, seconds_by_batch.get(b), peak, bandwidth)
                for b, c in sorted(counts.items())}
    layer_batch = max(counts)
    layers = []
    for cost in counts[layer_batch].layers():
        seconds = (layer_times or {}).get(cost.name)
        point = roofline_point(cost.flops, cost.bytes, seconds, peak, bandwidth)
        layers.append(LayerPoint(**asdict(point), name=cost.name,
                                 kind=(layer_kinds or {}).get(cost.name, cost.kind),
                                 time_ms=seconds * 1e3 if seconds is not None else None))
    ridge = peak / bandwidth if _finite(peak) and _finite(bandwidth) else float("nan")
    return Roofline(device=device, precision=precision, peak_flops_per_s=peak, bandwidth_bytes_per_s=bandwidth,
                    ridge_intensity=ridge, by_batch=by_batch, layer_batch=layer_batch, layers=layers)

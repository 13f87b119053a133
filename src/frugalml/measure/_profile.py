"""`profile()`: the honest efficiency profile of a model on this machine, and the `Profile` it returns.

Per batch size, in this order, each in its own pass so one measurement does not disturb another:
1. latency: warm-up, then timed iterations until the median is known (see ``latency.py``);
2. memory: a few iterations under the RSS sampler (and CUDA's allocator peak);
3. energy: at least a second of iterations between two energy-counter readings.
Then, once: FLOPs / MACs / bytes per batch, and the roofline (with per-layer times for PyTorch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugalml._validate import check_choice, check_positive_int, parse_int_list
from frugalml.datasets import Dataset, load_dataset
from frugalml.errors import InvalidArgumentError
from frugalml.measure.devices import device_spec
from frugalml.measure.energy import (
    carbon_intensity_g_per_kwh,
    co2e_g_per_1k_items,
    measure_energy,
    select_meter,
)
from frugalml.measure.env import fingerprint
from frugalml.measure.flops import (
    FlopCount,
    count_onnx_flops,
    count_torch_flops,
    layer_kinds,
    onnx_precision,
)
from frugalml.measure.latency import (
    LatencyStats,
    cpu_timer,
    cuda_timer,
    measure_latency,
)
from frugalml.measure.memory import MemoryStats, measure_memory
from frugalml.measure.roofline import (
    Roofline,
    build_roofline,
    precision_of,
    time_layers,
    time_onnx_nodes,
)
from frugalml.models import ModelHandle, load_model
from frugalml.models._handle import module_tensors

__all__ = ["Profile", "model_size", "profile", "profile_measurements"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]  # (stage description, done, total)
DEFAULT_TEXT_SEQ_LEN = 128


@dataclass
class Profile:
    """Measurements of one model on one device; units are in the field names.

    Dicts keyed by batch size hold one entry per profiled batch size.
    """

    model: str
    format: str
    task: str | None
    runtime: str
    device: str
    threads: int
    precision: str
    seq_len: int | None
    batch_sizes: list[int]
    data: str
    params: int
    params_nonzero: int
    size_bytes: int
    bytes_per_param: float
    flops_per_item: float
    macs_per_item: float
    flops_source: str
    flops_uncounted: list[str]
    latency_ms: dict[int, LatencyStats]
    throughput_items_per_s: dict[int, float]
    memory: dict[int, MemoryStats]
    peak_memory_bytes: int
    energy_j_per_item: dict[int, float]
    energy_source: str
    energy_note: str
    region: str | None
    carbon_intensity_g_per_kwh: float | None
    co2e_g_per_1k_items: dict[int, float] | None
    roofline: Roofline
    env: dict[str, Any]
    run_id: int | None = None
    latency_samples_ms: dict[int, list[float]] = field(default_factory=dict, repr=False)

    def to_dict(self, *, include_samples: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; batch-size keys become strings. Keys are documented in docs/profile.md."""
        def by_batch(d: dict[Any, Any]) -> dict[str, Any]:
            return {str(k): v for k, v in d.items()}

        out: dict[str, Any] = {
            "run_id": self.run_id, "model": self.model, "format": self.format, "task": self.task,
            "runtime": self.runtime, "device": self.device, "threads": self.threads, "precision": self.precision,
            "seq_len": self.seq_len, "batch_sizes": self.batch_sizes, "data": self.data,
            "params": self.params, "params_nonzero": self.params_nonzero, "size_bytes": self.size_bytes,
            "bytes_per_param": self.bytes_per_param, "flops_per_item": self.flops_per_item,
            "macs_per_item": self.macs_per_item, "flops_source": self.flops_source,
            "flops_uncounted": self.flops_uncounted,
            "latency_ms": by_batch({b: s.to_dict() for b, s in self.latency_ms.items()}),
            "throughput_items_per_s": by_batch(self.throughput_items_per_s),
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory": by_batch({b: m.to_dict() for b, m in self.memory.items()}),
            "energy_j_per_item": by_batch(self.energy_j_per_item), "energy_source": self.energy_source,
            "energy_note": self.energy_note, "region": self.region,
            "carbon_intensity_g_per_kwh": self.carbon_intensity_g_per_kwh,
            "co2e_g_per_1k_items": by_batch(self.co2e_g_per_1k_items) if self.co2e_g_per_1k_items else None,
            "roofline": self.roofline.to_dict(), "env": self.env,
        }
        if include_samples:
            out["latency_samples_ms"] = by_batch(self.latency_samples_ms)
        return out


def _count_params(handle: ModelHandle) -> tuple[int, int]:
    if handle.module is not None:
        seen, total, nonzero = set(), 0, 0
        for p in handle.module.parameters():
            if id(p) in seen:  # tied weights count once
                continue
            seen.add(id(p))
            total += p.numel()
            nonzero += _nonzero(p.detach())
        for sub in handle.module.modules():
            # Dynamically quantized layers keep packed INT8 weights that are not nn.Parameters.
            for attr in ("weight", "bias"):
                getter = getattr(sub, attr, None)
                if not callable(getter) or isinstance(getter, torch.nn.Module):
                    continue
                try:
                    w = getter()
                except (RuntimeError, TypeError):
                    continue
                if isinstance(w, torch.Tensor):
                    total += w.numel()
                    nonzero += int(torch.count_nonzero(w.int_repr() if w.is_quantized else w))
        return total, nonzero
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(handle.onnx_path))
    # Quantization parameters (scales, zero points) are initializers but not parameters of the model.
    quant_inputs = {"DequantizeLinear": (1, 2), "QuantizeLinear": (1, 2), "MatMulInteger": (2, 3),
                    "ConvInteger": (2, 3), "DynamicQuantizeMatMul": (2, 3), "MatMulIntegerToFloat": (2, 3, 4, 5),
                    "QLinearMatMul": (1, 2, 4, 5, 6, 7), "QLinearConv": (1, 2, 4, 5, 6, 7), "QGemm": (1, 2, 4, 5, 7, 8)}
    skip = {node.input[i] for node in model.graph.node for i in quant_inputs.get(node.op_type, ())
            if i < len(node.input)}
    total = nonzero = 0
    for init in model.graph.initializer:
        if init.name in skip:
            continue
        array = numpy_helper.to_array(init)
        # float weights, and INT8 / UINT8 quantized weights; int64 initializers are shapes and indices
        if array.dtype.kind == "f" or array.dtype in (np.int8, np.uint8):
            total += array.size
            nonzero += int(np.count_nonzero(array))
    return total, nonzero


def _is_subclass(value: Any) -> bool:
    """A tensor subclass that packs its data (torchao quantized, 2:4 semi-structured)."""
    return isinstance(value, torch.Tensor) and type(value) not in (torch.Tensor, torch.nn.Parameter) and \
        hasattr(value, "__tensor_flatten__")


def _nonzero(value: torch.Tensor) -> int:
    if _is_subclass(value):
        # Packed data has no elementwise zeros to count: count those of the values it represents.
        for unpack in ("dequantize", "to_dense"):
            try:
                return int(torch.count_nonzero(getattr(value, unpack)()))
            except (AttributeError, NotImplementedError, RuntimeError, TypeError):
                continue
        return value.numel()
    return int(torch.count_nonzero(value))


def tensor_bytes(value: Any) -> int:
    """Bytes a tensor (or a tuple of them) holds in memory; packed subclasses by their inner tensors."""
    if _is_subclass(value):
        names, _ = value.__tensor_flatten__()
        return sum(tensor_bytes(getattr(value, name)) for name in names)
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def model_size(handle: ModelHandle) -> int:
    """Serialized size in bytes as saved: the weight files, or the module as safetensors if in memory."""
    files = [Path(f) for f in handle.weight_files if Path(f).is_file()]
    if files:
        return sum(f.stat().st_size for f in files)
    from safetensors.torch import save

    if handle.module is None:
        return 0
    raw = handle.module.state_dict()
    if any(not isinstance(v, torch.Tensor) or v.is_quantized or _is_subclass(v) for v in raw.values()):
        # PyTorch dynamic-INT8 modules hold packed (weight, bias) tuples and dtypes, torchao and 2:4
        # modules tensor subclasses: count the bytes of the tensors they hold, as they sit in memory.
        return int(sum(tensor_bytes(v) for v in raw.values()))
    state = {k: v.detach().contiguous().cpu() for k, v in raw.items()}
    # safetensors refuses tensors sharing memory; clone so tied weights serialise like save_model would.
    return len(save({k: v.clone() for k, v in state.items()}))


def seq_len_for(handle: ModelHandle, seq_len: int | None) -> int | None:
    """Tokens per item: ``seq_len`` checked against a text model's maximum (default 128); ``None``
    for tensor models, which refuse one."""
    if handle.input_spec.kind == "text":
        max_len = handle.input_spec.max_length or 512
        return check_positive_int(seq_len, "seq_len", maximum=max_len) if seq_len is not None else min(
            DEFAULT_TEXT_SEQ_LEN, max_len)
    if seq_len is not None:
        raise InvalidArgumentError("seq_len", seq_len, f"{handle.name} takes tensors, not text",
                                   "Drop --seq-len for tensor models.")
    return None


def _is_spec(data: Any) -> bool:
    return isinstance(data, (str, Path, Dataset))


def _data_label(data: Any) -> str | None:
    """How the run records its data: the spec, or the count of items given directly."""
    if data is None or _is_spec(data):
        return None if data is None else str(getattr(data, "name", data))
    return f"{len(data)} given items"


def _items(handle: ModelHandle, data: Any, needed: int) -> tuple[Sequence[Any], str]:
    data = data if data is not None else handle.default_data
    if data is None:
        if handle.example_inputs is None:
            raise InvalidArgumentError("data", None, f"model {handle.name} came with no example inputs",
                                       "Pass --data with inputs for it.")
        items: Any = handle.example_inputs
        name = "example inputs"
    elif _is_spec(data):
        dataset = load_dataset(data) if not isinstance(data, Dataset) else data
        name = dataset.name
        items = handle.items_of(dataset)
    elif isinstance(data, (list, tuple, np.ndarray, torch.Tensor)):  # raw items, as compress() takes them
        items = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else data
        items = list(items) if isinstance(items, tuple) else items
        if handle.input_spec.kind != "text" and isinstance(items, list):
            items = np.asarray(items, dtype=np.float32)
        name = _data_label(items) or ""
    else:
        raise InvalidArgumentError("data", type(data).__name__, "is not a dataset spec or a batch of items",
                                   "Pass zoo:NAME, a path, a Dataset, a list of texts or an array of inputs.")
    if len(items) == 0:
        raise InvalidArgumentError("data", name, "holds no rows", "Pass a dataset with at least one row.")
    if len(items) < needed:  # repeat rows so the largest batch can be filled
        reps = -(-needed // len(items))
        items = list(items) * reps if isinstance(items, list) else np.concatenate([items] * reps)
    return items[:needed] if isinstance(items, list) else items[:needed], name


def profile(
    model: str | Path | torch.nn.Module | ModelHandle,
    *,
    data: str | Path | Dataset | Sequence[Any] | np.ndarray | None = None,
    batch_sizes: Sequence[int] | str = (1, 8, 32),
    seq_len: int | None = None,
    device: str = "cpu",
    runtime: str | None = None,
    threads: int | None = None,
    region: str | None = None,
    store: Any = None,
    max_time_s: float = 10.0,
    rel_ci: float = 0.02,
    energy_min_s: float = 1.0,
    layers: bool = True,
    trust_pickle: bool = False,
    example_inputs: Any = None,
    on_progress: ProgressCallback | None = None,
) -> Profile:
    """Measure ``model`` on this machine: size, FLOPs, latency, throughput, memory, energy, roofline.

    Args:
        model: anything :func:`frugalml.load_model` takes, or a loaded handle.
        data: inputs to run on: ``zoo:NAME``, a path, a Dataset, or the items themselves (a list of
            texts, an array or tensor of inputs); defaults to the model's own default data.
        batch_sizes: the batch sizes to measure, e.g. ``(1, 8, 32)`` or ``"1,8,32"``.
        seq_len: tokens per text item (padded / truncated); defaults to 128 for text models.
        device: ``cpu`` or ``cuda``. runtime: ``torch`` or ``onnxruntime``; by default ``torch`` for
            models with a PyTorch module and ``onnxruntime`` for ONNX files.
        threads: CPU threads for the runtime (default: PyTorch's current setting).
        region: ISO 3166-1 alpha-3 country code for CO2e (e.g. ``USA``); none if omitted.
        store: a store URL or :class:`~frugalml.store.Store` to record the run in; not recorded if None.
        max_time_s: cap on timed work per batch size. rel_ci: stop timing when the 95% CI of the
            median is this fraction of it.
        energy_min_s: seconds of work between the two energy readings per batch size.
        layers: also time each layer for the per-layer roofline (forward hooks for PyTorch, ONNX
            Runtime's profiler for ONNX models on the CPU).
    """
    batches = parse_int_list(batch_sizes, "batch_sizes", maximum=65536)
    check_choice(device, "device", ("cpu", "cuda"))
    if runtime is not None:
        check_choice(runtime, "runtime", ("torch", "onnxruntime"))
    if threads is not None:
        check_positive_int(threads, "threads", maximum=1024)
    carbon = carbon_intensity_g_per_kwh(region) if region is not None else None
    handle = model if isinstance(model, ModelHandle) else load_model(model, trust_pickle=trust_pickle,
                                                                      example_inputs=example_inputs)
    if runtime is None:
        runtime = "torch" if handle.module is not None else "onnxruntime"
    seq_len = seq_len_for(handle, seq_len)

    run = _start_run(store, handle, locals_for_config=dict(
        model=handle.name, data=_data_label(data), batch_sizes=batches, seq_len=seq_len,
        device=device, runtime=runtime, threads=threads, region=region, max_time_s=max_time_s, rel_ci=rel_ci))
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        result = _measure(handle, data=data, batches=batches, seq_len=seq_len, device=device, runtime=runtime,
                          threads=threads, region=region, carbon=carbon, max_time_s=max_time_s, rel_ci=rel_ci,
                          energy_min_s=energy_min_s, layers=layers, on_progress=on_progress)
    if run is not None:
        result.run_id = run.id
        # Samples are kept so a report can draw the latency distribution of any stored profile.
        run.finish(result=result.to_dict(include_samples=True), measurements=profile_measurements(result))
    return result


def profile_measurements(p: Profile) -> list[Any]:
    """The profile's headline numbers as store measurements (one number per row, with its unit)."""
    from frugalml.store import Measurement

    dev = p.device
    rows = [Measurement("params", p.params, "count", device=dev), Measurement("params_nonzero", p.params_nonzero, "count", device=dev),
            Measurement("size", p.size_bytes, "bytes", device=dev),
            Measurement("flops_per_item", p.flops_per_item, "flop", device=dev, source=p.flops_source),
            Measurement("macs_per_item", p.macs_per_item, "mac", device=dev, source=p.flops_source),
            Measurement("peak_memory", p.peak_memory_bytes, "bytes", device=dev)]
    for b, stats in p.latency_ms.items():
        for q in ("p50", "p90", "p95", "p99", "mean", "std"):
            rows.append(Measurement(f"latency_{q}", getattr(stats, q), "ms", batch=b, device=dev, source=p.runtime))
        rows.append(Measurement("throughput", p.throughput_items_per_s[b], "items/s", batch=b, device=dev,
                                source=p.runtime))
        rows.append(Measurement("peak_rss", p.memory[b].peak_rss_bytes, "bytes", batch=b, device=dev))
        rows.append(Measurement("energy_per_item", p.energy_j_per_item[b], "J", batch=b, device=dev,
                                source=p.energy_source))
        if p.co2e_g_per_1k_items:
            rows.append(Measurement("co2e_per_1k_items", p.co2e_g_per_1k_items[b], "g", batch=b, device=dev,
                                    source=f"codecarbon:{p.region}"))
    roof = p.roofline.by_batch[p.roofline.layer_batch]
    rows.append(Measurement("arithmetic_intensity", roof.intensity, "flop/byte", batch=p.roofline.layer_batch, device=dev))
    if roof.fraction_of_roof is not None:
        rows.append(Measurement("fraction_of_roof", roof.fraction_of_roof, "ratio", batch=p.roofline.layer_batch,
                                device=dev, source=p.roofline.device.source))
    return rows


def _start_run(store: Any, handle: ModelHandle, locals_for_config: dict[str, Any]) -> Any:
    if store is None:
        return None
    from frugalml.store import Store, open_store

    opened = store if isinstance(store, Store) else open_store(store)
    return opened.start_run("profile", config=locals_for_config, env=fingerprint(locals_for_config["threads"]),
                            name=handle.name)


def _measure(handle: ModelHandle, *, data: Any, batches: list[int], seq_len: int | None, device: str, runtime: str,
             threads: int | None, region: str | None, carbon: tuple[float, str] | None, max_time_s: float,
             rel_ci: float, energy_min_s: float, layers: bool, on_progress: ProgressCallback | None) -> Profile:
    progress = on_progress or (lambda stage, done, total: None)
    total_steps = 3 * len(batches) + 2
    step = 0

    def advance(stage: str) -> None:
        nonlocal step
        step += 1
        progress(stage, step, total_steps)
        log.info("profile %s: %s", handle.name, stage)

    items, data_name = _items(handle, data, max(batches))
    runner = handle.runner(runtime, device, threads)
    timer = cuda_timer() if device == "cuda" and runtime == "torch" else cpu_timer(runner.synchronize)
    meter = select_meter(device)
    params, nonzero = _count_params(handle)
    size = model_size(handle)

    latency: dict[int, LatencyStats] = {}
    samples: dict[int, list[float]] = {}
    memory: dict[int, MemoryStats] = {}
    energy: dict[int, float] = {}
    energy_note = meter.note
    for batch in batches:
        inputs = runner.prepare(items[:batch], seq_len)

        def call(inputs: Any = inputs) -> object:
            return runner(inputs)

        stats, raw = measure_latency(call, timer=timer, max_time_s=max_time_s, rel_ci=rel_ci)
        latency[batch], samples[batch] = stats, [float(x) * 1e3 for x in raw]
        advance(f"latency at batch {batch}: p50 {stats.p50:.3f} ms ({stats.n} iterations, {stats.stop_reason})")
        memory[batch] = measure_memory(call, device=device)
        advance(f"memory at batch {batch}")
        energy_stats = measure_energy(call, meter=meter, items_per_call=batch, min_s=energy_min_s,
                                      synchronize=runner.synchronize)
        energy[batch] = energy_stats.j_per_item
        advance(f"energy at batch {batch}")

    counts: dict[int, FlopCount] = {}
    for batch in batches:
        if handle.module is not None:
            # A torch.compile'd module counts as the module it compiles: the counter needs eager ops.
            module = getattr(handle.module, "_orig_mod", handle.module).to(device)
            tensors = module_tensors(module, handle.encode(items[:batch], seq_len), device)
            counts[batch] = count_torch_flops(module, tensors, kind=handle.input_spec.kind)
        else:
            counts[batch] = count_onnx_flops(handle.onnx_path, runner.prepare(items[:batch], seq_len))
    advance("FLOPs and bytes counted")

    spec = device_spec(device, runner.threads)
    precision = (precision_of(handle.module) if handle.module is not None
                 else onnx_precision(counts[max(batches)], handle.onnx_path))
    layer_times = None
    kinds = None
    if handle.module is not None:
        kinds = layer_kinds(handle.module)
    if layers and runtime == "torch" and handle.module is not None:
        top = max(batches)
        inputs = runner.prepare(items[:top], seq_len)
        names = [layer.name for layer in counts[top].layers()]
        layer_times = time_layers(runner.module, lambda: runner(inputs), names,  # type: ignore[attr-defined]
                                  synchronize=runner.synchronize)
    elif layers and runtime == "onnxruntime" and handle.onnx_path is not None and device == "cpu":
        top = max(batches)
        layer_times = time_onnx_nodes(handle.onnx_path, runner.prepare(items[:top], seq_len), threads=runner.threads)
    roof = build_roofline(device=spec, precision=precision, counts=counts,
                          seconds_by_batch={b: latency[b].p50 / 1e3 for b in batches},
                          layer_times=layer_times, layer_kinds=kinds)
    advance("roofline")

    main = counts[max(batches)]
    co2 = {b: co2e_g_per_1k_items(e, carbon[0]) for b, e in energy.items()} if carbon else None
    return Profile(
        model=handle.name, format=handle.format, task=handle.task, runtime=runtime, device=device,
        threads=runner.threads, precision=precision, seq_len=seq_len, batch_sizes=batches, data=data_name,
        params=params, params_nonzero=nonzero, size_bytes=size, bytes_per_param=size / params if params else 0.0,
        flops_per_item=main.flops_per_item, macs_per_item=main.macs_per_item, flops_source=main.source,
        flops_uncounted=list(main.uncounted), latency_ms=latency,
        # Sustained throughput: items over the mean time per batch (the median would flatter it).
        throughput_items_per_s={b: b * 1e3 / latency[b].mean for b in batches},
        # On CUDA the model's memory is the device allocator's peak; on the CPU, the process's peak RSS.
        memory=memory, peak_memory_bytes=max((m.cuda_max_allocated_bytes or 0) if device == "cuda"
                                             else m.peak_rss_bytes for m in memory.values()),
        energy_j_per_item=energy, energy_source=meter.source, energy_note=energy_note,
        region=region.upper() if region else None, carbon_intensity_g_per_kwh=carbon[0] if carbon else None,
        co2e_g_per_1k_items=co2, roofline=roof, env=fingerprint(runner.threads), latency_samples_ms=samples,
    )

"""PyTorch 2 export INT8 for x86 CPUs: what ``quantize_dynamic`` with ``backend: inductor`` runs.

The model is captured whole by ``torch.export`` (batch and sequence dimensions dynamic), its Linear
layers are annotated by torchao's ``X86InductorQuantizer`` (INT8 weights, one scale per output
channel; activations quantized per tensor as each batch arrives), and TorchInductor compiles the
result with weight freezing: the INT8 weights become constants packed once for oneDNN's INT8
kernels (VNNI or AMX instructions where the CPU has them), and the quantize / dequantize steps fuse
into the code around them. PyTorch's eager dynamic INT8 (``backend: torch``) instead runs every
Linear as a separate fbgemm call with float tensors in between.

On CPUs with native BF16 math (AVX512-BF16, AMX) the float operations between the INT8 layers
(attention, GELU, layer norms) run in BF16 too ("int8-mixed-bf16"): zoo:minilm's fidelity to FP32
is unchanged (mean cosine 0.993); its speed on an AMX CPU was within run-to-run spread of FP32 float
operations (benchmarks/results/inductor_int8_options.json). Elsewhere BF16 would be emulated, so
they stay FP32. Like the bit widths (``frugalml.compress._int8``), this is decided where the model runs.

The compiled code is called from C++ rather than Python (Inductor's ``cpp_wrapper``), which saves
Python work per call (its measured effect on zoo:minilm was within run-to-run spread, same file). Freezing and the C++ wrapper are Inductor settings read whenever a graph compiles, and a
compiled model compiles again at every new kind of input shape, so :class:`InductorInt8` turns them
on around each call rather than process-wide (they would apply to every other compiled model too).

Artifacts store the float weights; loading runs this again (export, quantize, compile), so the
first call after loading, and the first at a new shape, pays the compile time (tens of seconds on
2 cores). :func:`converted` is the same INT8 graph uncompiled (quantize -> dequantize -> float
Linear, the reference form of the arithmetic), which the ``keep_fp32: auto`` sensitivity search
scores instead of compiling every candidate.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
from typing import Any

import torch

from frugalml.compress._int8 import Int8Bits, int8_bits, x86_cpu
from frugalml.errors import InvalidArgumentError
from frugalml.models._handle import InputSpec

__all__ = ["InductorInt8", "Int8Graph", "check_x86", "converted", "inductor_int8"]


def check_x86(argument: str = "backend", value: Any = "inductor") -> None:
    """Raise unless this is an x86 CPU."""
    if not x86_cpu():
        raise InvalidArgumentError(argument, value, f"runs on x86 CPUs; this machine is {platform.machine()}",
                                   "Use backend: onnxruntime (ONNX Runtime's INT8 kernels run on Arm too).")


def _example(spec: InputSpec) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor], Any]:
    """Inputs to trace with and their dynamic dimensions, in the form the runner calls the model
    (keywords for text, one positional tensor otherwise)."""
    batch = torch.export.Dim("batch", min=1)
    if spec.kind == "text":
        seq = torch.export.Dim("seq", min=1, max=spec.max_length or 512)
        # (2, 8): neither dimension 0 or 1, which export would specialise.
        kwargs = {name: torch.ones(2, 8, dtype=torch.long) for name in spec.names}
        return (), kwargs, {name: {0: batch, 1: seq} for name in spec.names}
    shape = tuple(spec.item_shape or ())
    x = torch.zeros((2, *shape), dtype=getattr(torch, spec.dtype, torch.float32))
    return (x,), {}, ({0: batch},)


def converted(module: torch.nn.Module, spec: InputSpec, names: list[str], *, bits: Int8Bits) -> Int8Graph:
    """``module`` exported with the Linear layers ``names`` quantized to INT8 (uncompiled), activations
    and weights in ``bits`` (see ``frugalml.compress._int8``)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    dtypes = {p.dtype for p in module.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        raise InvalidArgumentError("backend", "inductor", f"quantizes float32 models; this one holds "
                                   f"{sorted(str(d).removeprefix('torch.') for d in dtypes)} weights",
                                   "Quantize before casting (cast and quantize_dynamic do not combine).")
    args, kwargs, _ = _example(spec)
    graph = _export(module, spec)
    traced = linear_names(graph)
    names = [n for n in names if n in traced]
    config = xiq.get_default_x86_inductor_quantization_config(is_dynamic=True, reduce_range=bits.activations == 7)
    if bits.weights != 8:
        config = dataclasses.replace(config, weight=dataclasses.replace(
            config.weight, quant_min=-(2 ** (bits.weights - 1)), quant_max=2 ** (bits.weights - 1) - 1))
    quantizer = xiq.X86InductorQuantizer()
    for name in names:  # unnamed layers stay float (the global config is unset)
        quantizer.set_module_name_qconfig(name, config)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        prepared(*args, **kwargs)  # dynamic activations observe nothing; the weights are read at convert
    out = convert_pt2e(prepared)
    _drop_unused_tensors(out)
    return Int8Graph(out)


def _drop_unused_tensors(graph: torch.fx.GraphModule) -> None:
    """Delete parameters and buffers no node reads: conversion leaves each quantized layer's float
    weight beside its INT8 copy (zoo:minilm: 42 MB of 101 MB)."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name in [k for k in graph.state_dict() if k not in used]:
        owner, _, leaf = name.rpartition(".")
        delattr(graph.get_submodule(owner) if owner else graph, leaf)


def linear_names(graph: torch.fx.GraphModule) -> set[str]:
    """Module names of the Linear layers an exported graph calls."""
    names = set()
    for node in graph.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.linear.default:
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                names.add(list(stack.values())[-1][0])
    return names


def unused_linears(module: torch.nn.Module, spec: InputSpec, names: list[str]) -> list[str]:
    """Those of ``names`` whose output the model's output does not use (torch.export drops them)."""
    traced = linear_names(_export(module, spec))
    return [n for n in names if n not in traced]


def _export(module: torch.nn.Module, spec: InputSpec) -> torch.fx.GraphModule:
    """``module`` captured by torch.export, without the code whose result its output never uses."""
    args, kwargs, dynamic = _example(spec)
    try:
        graph = torch.export.export(module.eval(), args, kwargs=kwargs or None, dynamic_shapes=dynamic).module()
    except Exception as exc:  # noqa: BLE001 - export fails in many ways (data-dependent control flow, ...)
        raise InvalidArgumentError("backend", "inductor", f"torch.export could not capture "
                                   f"{type(module).__name__} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                                   "Use backend: torch or onnxruntime.") from None
    # Export keeps computations whose result is unused (a BERT pooler beside mean pooling); the
    # quantizer's pattern matcher fails on them (an output-less Linear -> Tanh partition).
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return graph


class Int8Graph(torch.nn.Module):
    """A converted INT8 graph, run eagerly (quantize -> dequantize -> float Linear).

    An exported graph refuses ``.train()`` / ``.eval()``, which runners call; it was captured in
    eval mode and holds no dropout or batch-norm state to switch, so here both only set the flag.
    """

    def __init__(self, graph: torch.fx.GraphModule) -> None:
        super().__init__()
        self.graph_module = graph

    def train(self, mode: bool = True) -> Int8Graph:
        self.training = mode
        return self

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.graph_module(*args, **kwargs)

    def matmul_weights(self) -> dict[torch.dtype, int]:
        """Weight elements of the graph's Linear calls by the dtype they are stored in (INT8 where a
        dequantize sits between the weight and the call); for the roofline's precision."""
        counts: dict[torch.dtype, int] = {}
        for node in self.graph_module.graph.nodes:
            if node.op != "call_function" or node.target != torch.ops.aten.linear.default:
                continue
            source = node.args[1]
            while isinstance(source, torch.fx.Node) and source.op == "call_function" and source.args:
                source = source.args[0]  # through dequantize to the stored weight
            if isinstance(source, torch.fx.Node) and source.op == "get_attr":
                tensor = functools.reduce(getattr, str(source.target).split("."), self.graph_module)
                counts[tensor.dtype] = counts.get(tensor.dtype, 0) + tensor.numel()
        return counts


class InductorInt8(torch.nn.Module):
    """A converted INT8 graph, compiled by Inductor with weight freezing and the C++ wrapper on at
    every (re)compile.

    ``_orig_mod`` is the uncompiled graph, as on ``torch.compile``'s wrapper: the FLOP counter and
    the per-layer profiler run it eagerly. ``cpu_only``: runners refuse another device.
    """

    cpu_only = True

    def __init__(self, graph: Int8Graph, *, bf16: bool = False, cpp_wrapper: bool = True) -> None:
        import warnings

        from frugalml.compress.runtime import apply_compile

        super().__init__()
        self.bf16 = bf16
        self.cpp_wrapper = cpp_wrapper  # False only to measure what it buys (benchmarks/inductor_int8_options.py)

        # Inductor's oneDNN lowering copies a tensor with torch.tensor() at every compile (PyTorch's
        # own code; nothing a user can act on).
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning,
                                module=r"torch\._inductor\.mkldnn_lowerings")

        self._orig_mod = graph
        # In a list, not a submodule: the compiled wrapper shares the graph's weights, and the
        # state dict lists them once.
        self._compiled = [apply_compile(graph.graph_module, {"mode": "default", "dynamic": True,
                                                             "backend": "inductor"})]

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor_config

        # bf16: autocast is traced into the graph, so Inductor fuses the INT8 layers with BF16
        # outputs and runs the float operations between them (attention, GELU, layer norms) in BF16.
        with (inductor_config.patch(freezing=True, cpp_wrapper=self.cpp_wrapper),
              torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)):
            return self._compiled[0](*args, **kwargs).float()


def inductor_int8(module: torch.nn.Module, spec: InputSpec, names: list[str], *, bits: Int8Bits | None = None,
                  bf16: bool | None = None) -> InductorInt8:
    """``module`` with the Linear layers ``names`` in INT8, compiled for this x86 CPU (compiles at
    the first call). ``bits``: activation and weight bits (default: ``int8_bits("inductor")``, this
    CPU's safe widths); ``bf16``: the float operations in BF16 (default: where the CPU has native
    BF16 math)."""
    check_x86()
    from frugalml.compress.runtime import mark_compiled
    from frugalml.measure.devices import native_bf16_cpu

    mixed = native_bf16_cpu() if bf16 is None else bf16
    chosen = int8_bits("inductor") if bits is None else bits
    return mark_compiled(InductorInt8(converted(module, spec, names, bits=chosen), bf16=mixed))

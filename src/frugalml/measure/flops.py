"""Counting FLOPs, MACs and bytes moved, per operation and per layer.

Conventions (tools disagree by 2x, so both numbers are reported):
- one multiply-accumulate (MAC) = 2 FLOPs; FLOPs counted are those of matrix products,
  convolutions and attention (the ops that dominate encoder and CNN cost). Element-wise ops
  (activations, softmax, layer norm) are not counted, as in ``torch.utils.flop_counter``.
- bytes moved by an op = bytes of every tensor it reads + bytes of every tensor it writes: the
  traffic if each op streams its operands from memory once. Summed per layer this is the
  denominator of the layer's arithmetic intensity in the roofline.

PyTorch models are counted by running one batch under :class:`torch.utils.flop_counter.FlopCounterMode`,
extended with attention kernels it does not register (the CPU flash-attention kernel that
``scaled_dot_product_attention`` dispatches to). ONNX models are counted statically from the graph
after shape inference with the batch's concrete dims.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["FlopCount", "LayerCost", "OpCost", "count_onnx_flops", "count_torch_flops", "onnx_precision"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpCost:
    """One counted operation: the innermost module it ran in, its name, FLOPs and bytes moved."""

    layer: str
    op: str
    flops: int
    bytes: int


@dataclass(frozen=True)
class LayerCost:
    """FLOPs and bytes of all counted ops in one layer (innermost module or ONNX node)."""

    name: str
    kind: str
    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOPs per byte."""
        return self.flops / self.bytes if self.bytes else float("inf")


@dataclass(frozen=True)
class FlopCount:
    """The counted cost of one forward pass over ``batch`` items."""

    batch: int
    flops: int
    bytes: int
    ops: tuple[OpCost, ...]
    source: str
    uncounted: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return self.flops // 2

    @property
    def flops_per_item(self) -> float:
        return self.flops / self.batch

    @property
    def macs_per_item(self) -> float:
        return self.macs / self.batch

    def layers(self) -> list[LayerCost]:
        """Costs aggregated per layer, in execution order."""
        totals: dict[str, list[int]] = {}
        kinds: dict[str, str] = {}
        for op in self.ops:
            entry = totals.setdefault(op.layer, [0, 0])
            entry[0] += op.flops
            entry[1] += op.bytes
            kinds.setdefault(op.layer, op.op)
        return [LayerCost(name=name, kind=kinds[name], flops=f, bytes=b) for name, (f, b) in totals.items()]


def _tensor_bytes(tree: Any) -> int:
    total = 0
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return total


def _cpu_flash_sdpa_flop(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                         out_shape: Any = None, **kwargs: Any) -> int:
    # aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, ...): q (B, H, Sq, D), k (B, H, Sk, D).
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _dynamic_linear_flop(input_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # quantized::linear_dynamic(x, packed_weight): x (..., in) -> (..., out); INT8 MACs count like float ones.
    rows = 1
    for d in input_shape[:-1]:
        rows *= d
    return 2 * rows * input_shape[-1] * out_shape[-1]


def _mm_flop(a_shape: Any, b_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # aten._int_mm / aten._scaled_mm (a: (m, k) INT8 / FP8, b: (k, n)): the matmuls of torchao's
    # INT8-dynamic and FP8 layers, counted like float ones.
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def _packed_linear_flop(input_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    # aten._weight_int4pack_mm(x (m, k), packed INT4 weight, ...) and
    # aten._sparse_semi_structured_linear(x (..., k), compressed 2:4 weight, meta, ...) -> (..., n):
    # counted as the dense layer they stand for (2:4 kernels skip half of these multiply-adds).
    return 2 * math.prod(input_shape[:-1]) * input_shape[-1] * out_shape[-1]


def _sparse_mm_flop(*shapes: Any, out_shape: Any = None, dense_at: int = 1, **kwargs: Any) -> int:
    # aten._cslt_sparse_mm(compressed A, dense B (k, n), ...) and _sparse_semi_structured_mm(packed,
    # meta, dense (k, n)): out (m, n) from k multiply-adds each, dense-equivalent.
    return 2 * math.prod(out_shape) * shapes[dense_at][0]


def _extra_formulas() -> dict[Any, Any]:
    aten = torch.ops.aten
    extra: dict[Any, Any] = {}
    for name, formula in (("_int_mm", _mm_flop), ("_scaled_mm", _mm_flop),
                          ("_weight_int4pack_mm", _packed_linear_flop),
                          ("_weight_int4pack_mm_for_cpu", _packed_linear_flop),
                          ("_sparse_semi_structured_linear", _packed_linear_flop),
                          ("_cslt_sparse_mm", _sparse_mm_flop),
                          ("_sparse_semi_structured_mm", lambda *s, **k: _sparse_mm_flop(*s, dense_at=2, **k))):
        if hasattr(aten, name):
            extra[getattr(aten, name)] = formula
    for name in ("linear_dynamic", "linear_dynamic_fp16"):
        op = getattr(torch.ops.quantized, name, None)
        if op is not None:
            extra[op] = _dynamic_linear_flop
    for name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable"):
        if hasattr(aten, name):
            extra[getattr(aten, name)] = _cpu_flash_sdpa_flop
    return extra


class _CostCounter(FlopCounterMode):
    """FlopCounterMode that also records bytes moved and the innermost module of each counted op."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_extra_formulas())
        self.records: list[OpCost] = []

    def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
        if func_packet in self.flop_registry:
            flops = int(self.flop_registry[func_packet](*args, **kwargs, out_val=out))
            parents = [p for p in self.mod_tracker.parents if p != "Global"]
            layer = max(parents, key=lambda p: (p.count("."), len(p))) if parents else "(top level)"
            moved = _tensor_bytes(args) + _tensor_bytes(kwargs) + _tensor_bytes(out)
            self.records.append(OpCost(layer=layer, op=str(func_packet).split(".")[-1], flops=flops, bytes=moved))
        return super()._count_flops(func_packet, out, args, kwargs)


def count_torch_flops(module: torch.nn.Module, inputs: dict[str, torch.Tensor], *, kind: str = "tensor") -> FlopCount:
    """Count one forward pass of ``module`` on ``inputs`` (keywords for ``kind="text"``, else one
    positional tensor); the batch size is the inputs' leading dim."""
    from frugalml.models._handle import call_module

    batch = int(next(iter(inputs.values())).shape[0])
    counter = _CostCounter()
    with counter, torch.inference_mode():
        call_module(module, inputs, kind)
    flops = sum(r.flops for r in counter.records)
    total_flops = int(counter.get_total_flops())
    if flops != total_flops:  # both come from the same registry; a mismatch means a tracking bug
        log.warning("per-op FLOPs (%d) differ from FlopCounterMode's total (%d)", flops, total_flops)
    return FlopCount(batch=batch, flops=total_flops, bytes=sum(r.bytes for r in counter.records),
                     ops=tuple(counter.records), source="torch.utils.flop_counter")


# ---------------------------------------------------------------------------------------- ONNX
_ONNX_DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}


# op type -> (family, index of the A input, index of the B / weight input). Quantized and ORT-fused
# variants (com.microsoft) do the same arithmetic as their float originals, on other dtypes.
_ONNX_COUNTED: dict[str, tuple[str, int, int]] = {
    "MatMul": ("matmul", 0, 1), "FusedMatMul": ("matmul", 0, 1), "MatMulInteger": ("matmul", 0, 1),
    "DynamicQuantizeMatMul": ("matmul", 0, 1), "MatMulIntegerToFloat": ("matmul", 0, 1),
    "QLinearMatMul": ("matmul", 0, 3),
    "Gemm": ("gemm", 0, 1), "FusedGemm": ("gemm", 0, 1), "QGemm": ("gemm", 0, 3),
    "Conv": ("conv", 0, 1), "FusedConv": ("conv", 0, 1), "ConvInteger": ("conv", 0, 1), "QLinearConv": ("conv", 0, 3),
}
# Heavy ops with no counting rule here: listed as uncounted, never silently left out.
_ONNX_HEAVY_UNCOUNTED = frozenset({"Attention", "MultiHeadAttention", "GroupQueryAttention", "ConvTranspose",
                                   "MatMulNBits", "Einsum", "LSTM", "GRU", "RNN", "QAttention"})


def _runtime_shapes(model: Any, inputs: dict[str, np.ndarray], names: list[str]) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of ``names`` from one ONNX Runtime run (for tensors produced by contrib ops such
    as FusedConv, which ONNX shape inference cannot see through)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for name in names:
        if name not in have:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every named tensor
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name] for i in session.get_inputs() if i.name in inputs}
    outputs = session.run(names, feed)
    return {name: tuple(int(d) for d in np.shape(value)) for name, value in zip(names, outputs)}


_ONNX_INTEGER_OPS = frozenset({"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul",
                               "QGemm", "ConvInteger", "QLinearConv"})


def onnx_precision(count: FlopCount, path: Path | None = None) -> str:
    """``int8`` when integer kernels do most of a graph's counted FLOPs; otherwise, given the graph's
    ``path``, the floating type that holds most of its weight elements (``fp16``, ``bf16``); else ``fp32``."""
    integer = sum(o.flops for o in count.ops if o.op in _ONNX_INTEGER_OPS)
    if count.flops and integer > count.flops / 2:
        return "int8"
    if path is None:
        return "fp32"
    import onnx

    names = {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16", onnx.TensorProto.BFLOAT16: "bf16"}
    elements: dict[str, int] = {}
    for init in onnx.load(str(path), load_external_data=False).graph.initializer:
        if init.data_type in names:
            elements[names[init.data_type]] = elements.get(names[init.data_type], 0) + math.prod(init.dims)
    return max(elements, key=lambda k: elements[k]) if elements else "fp32"


def count_onnx_flops(path: Path, inputs: dict[str, np.ndarray]) -> FlopCount:
    """Count the matrix-product and convolution FLOPs of an ONNX graph for the given concrete inputs.

    Float, quantized (MatMulInteger, QLinearConv, ...) and ORT-fused (FusedConv, FusedGemm,
    FusedMatMul) ops are counted. Shapes come from ONNX shape inference with the batch's dims, and
    where it cannot resolve them (outputs of contrib ops), from one ONNX Runtime run. Ops still
    without shapes, and heavy ops without a rule (Attention, ...), are listed in ``uncounted``.
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    batch = int(next(iter(inputs.values())).shape[0])
    for graph_input in model.graph.input:
        if graph_input.name in inputs:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, size in zip(dims, inputs[graph_input.name].shape):
                dim.ClearField("dim_param")
                dim.dim_value = int(size)
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, tuple[tuple[int, ...] | None, int]] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tensor_type = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
        # No shape at all (after offline fusion, inference may give up on a tensor) is unknown, not a scalar.
        known = tensor_type.HasField("shape") and -1 not in dims
        shapes[value.name] = (dims if known else None, _ONNX_DTYPE_BYTES.get(tensor_type.elem_type, 4))
    for init in inferred.graph.initializer:
        shapes[init.name] = (tuple(init.dims), _ONNX_DTYPE_BYTES.get(init.data_type, 4))

    def shape(name: str) -> tuple[int, ...] | None:
        return shapes.get(name, (None, 4))[0]

    def nbytes(name: str) -> int:
        dims, size = shapes.get(name, (None, 4))
        return int(np.prod(dims)) * size if dims is not None else 0

    counted = [(i, n) for i, n in enumerate(inferred.graph.node) if n.op_type in _ONNX_COUNTED]
    missing = sorted({name for _, n in counted for name in (n.input[_ONNX_COUNTED[n.op_type][1]], n.input[
        _ONNX_COUNTED[n.op_type][2]], n.output[0]) if name and shape(name) is None})
    if missing:
        try:
            for name, dims in _runtime_shapes(model, inputs, missing).items():
                shapes[name] = (dims, shapes.get(name, (None, 4))[1])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own error classes; the ops are listed below
            log.debug("runtime shape probe failed: %s", exc)

    ops: list[OpCost] = []
    uncounted: list[str] = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(inferred.graph.node)
                            if n.op_type in _ONNX_HEAVY_UNCOUNTED]
    for index, node in counted:
        family, ia, ib = _ONNX_COUNTED[node.op_type]
        label = node.name or f"{node.op_type}_{index}"
        a, b, out = shape(node.input[ia]), shape(node.input[ib]), shape(node.output[0])
        if a is None or b is None or out is None or not a or not b:
            uncounted.append(label)
            continue
        attrs = {attr.name: attr.i for attr in node.attribute if attr.type == onnx.AttributeProto.INT}
        if family == "matmul":
            k = a[-2] if attrs.get("transA") and len(a) > 1 else a[-1]
            flops = 2 * int(np.prod(out)) * k
        elif family == "gemm":
            k = a[0] if attrs.get("transA") else a[-1]
            flops = 2 * int(np.prod(out)) * k
        else:  # conv: weight (Cout, Cin/groups, kH, kW); each output element costs Cin/groups * k MACs
            flops = 2 * int(np.prod(out)) * int(np.prod(b[1:]))
        moved = sum(nbytes(name) for name in node.input if name) + nbytes(node.output[0])
        ops.append(OpCost(layer=label, op=node.op_type, flops=int(flops), bytes=int(moved)))
    if uncounted:
        log.warning("%d ONNX ops have no FLOP count (unresolved shapes or no rule): %s",
                    len(uncounted), ", ".join(uncounted[:5]))
    return FlopCount(batch=batch, flops=sum(o.flops for o in ops), bytes=sum(o.bytes for o in ops), ops=tuple(ops),
                     source="onnx-graph", uncounted=tuple(uncounted))


def layer_kinds(module: torch.nn.Module) -> dict[str, str]:
    """Module path (as FlopCounterMode names it) -> class name, for labelling layers."""
    root = type(module).__name__
    kinds: dict[str, str] = defaultdict(str)
    for name, sub in module.named_modules():
        kinds[f"{root}.{name}" if name else root] = type(sub).__name__
    return dict(kinds)

"""TinyML fit: do a model's weights fit in flash and its activations in SRAM?

Both numbers come from the model's ONNX graph, so they hold for any model frugalml can export:

- weight bytes: every initializer at its stored width (int8 weights 1 byte, int32 biases 4, float
  scales 4);
- peak activation bytes by tensor liveness: nodes run in the graph's (topological) order at batch 1;
  a tensor is alive from the node that produces it to the last node that reads it, and the peak is
  the largest sum of live tensors at any node. Activations count 1 byte per element, as an INT8
  runtime (TFLite Micro, CMSIS-NN) stores them; index and shape tensors count at their own width.

These are estimates of what a microcontroller runtime would allocate (it may fuse or reuse buffers
differently); ``Fit.source`` says so, and the tensor at the peak is named so a user can act on it.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Fit", "tinyml_fit"]

_INT_WIDTH = {6: 4, 7: 8, 12: 4, 13: 8, 9: 1, 2: 1, 3: 1, 4: 2, 5: 2}  # onnx TensorProto int types -> bytes


@dataclass(frozen=True)
class Fit:
    weight_bytes: int
    peak_activation_bytes: int
    peak_at: str  # the node at which the live activations peak
    source: str = "estimate: ONNX graph, tensor liveness at batch 1, 1-byte (INT8) activations"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _elem_bytes_weight(data_type: int) -> int:
    import onnx

    return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize)


def tinyml_fit(handle: Any, *, seq_len: int = 64) -> Fit:
    """Weight bytes and peak activation bytes of ``handle`` (see the module docstring)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    with tempfile.TemporaryDirectory(prefix="frugalml-fit-") as tmp:
        path = handle.onnx_path or handle.export_onnx(Path(tmp) / "model.onnx", seq_len=min(seq_len, 16))
        model = onnx.load(str(path))
    graph = model.graph
    weight_bytes = sum(int(np.prod(t.dims, dtype=np.int64)) * _elem_bytes_weight(t.data_type)
                       for t in graph.initializer)
    weight_names = {t.name for t in graph.initializer}
    for node in graph.node:  # constants folded into the graph are weights too
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    weight_bytes += numpy_helper.to_array(attr.t).nbytes
            weight_names.update(node.output)
    # Concrete shapes at batch 1: the first symbolic dim is the batch, the others the sequence.
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        for i, dim in enumerate(dims):
            if not dim.HasField("dim_value"):
                dim.dim_value = 1 if i == 0 else seq_len
    inferred = shape_inference.infer_shapes(model).graph
    sizes: dict[str, int] = {}
    for value in [*inferred.input, *inferred.value_info, *inferred.output]:
        ttype = value.type.tensor_type
        if not ttype.HasField("shape") or any(not d.HasField("dim_value") for d in ttype.shape.dim):
            continue
        elements = int(np.prod([d.dim_value for d in ttype.shape.dim], dtype=np.int64))
        sizes[value.name] = elements * _INT_WIDTH.get(ttype.elem_type, 1)
    # Nodes that read only weights (the DequantizeLinear of a QDQ weight, a transpose of a constant)
    # are folded by a microcontroller runtime: their outputs are weights, not activations.
    for node in graph.node:
        if node.op_type != "Constant" and all(not name or name in weight_names for name in node.input):
            weight_names.update(node.output)
    nodes = [n for n in graph.node if n.op_type != "Constant" and not set(n.output) <= weight_names]
    last_use: dict[str, int] = {}
    born: dict[str, int] = {v.name: 0 for v in graph.input if v.name not in weight_names}
    for index, node in enumerate(nodes):
        for name in node.input:
            if name and name not in weight_names:
                last_use[name] = index
        for name in node.output:
            born.setdefault(name, index)
    for value in graph.output:
        last_use[value.name] = len(nodes)
    peak, peak_at = 0, ""
    for index, node in enumerate(nodes):
        live = sum(sizes.get(name, 0) for name, start in born.items()
                   if start <= index <= last_use.get(name, start))
        if live > peak:
            peak, peak_at = live, f"{node.op_type} {node.name}".strip()
    return Fit(weight_bytes=int(weight_bytes), peak_activation_bytes=int(peak), peak_at=peak_at)

"""FLOPs, MACs and bytes against hand formulas (1 MAC = 2 FLOPs)."""

from __future__ import annotations

import torch
from torch import nn

from frugalml.measure.flops import count_onnx_flops, count_torch_flops


class _Wrap(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_linear() -> None:
    batch, d_in, d_out = 8, 64, 32
    count = count_torch_flops(_Wrap(nn.Linear(d_in, d_out)), {"x": torch.randn(batch, d_in)})
    assert count.flops == 2 * batch * d_in * d_out
    assert count.macs == batch * d_in * d_out
    assert count.flops_per_item == 2 * d_in * d_out
    # bytes: input + weight + bias read, output written, fp32
    assert count.bytes == 4 * (batch * d_in + d_in * d_out + d_out + batch * d_out)
    (layer,) = count.layers()
    assert layer.name == "_Wrap.inner" and layer.intensity == count.flops / count.bytes


def test_torchao_quantized_linears_count_like_float_ones() -> None:
    import pytest

    pytest.importorskip("torchao")
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

    batch, d_in, d_out = 8, 64, 32
    for config in (Int8WeightOnlyConfig(), Int8DynamicActivationInt8WeightConfig()):  # aten.mm / aten._int_mm
        model = _Wrap(nn.Linear(d_in, d_out))
        quantize_(model, config)
        count = count_torch_flops(model, {"x": torch.randn(batch, d_in)})
        assert count.flops == 2 * batch * d_in * d_out, type(config).__name__


def test_conv2d() -> None:
    batch, c_in, c_out, h, w, k = 2, 3, 16, 10, 10, 3
    conv = nn.Conv2d(c_in, c_out, k, padding=1)
    count = count_torch_flops(_Wrap(conv), {"x": torch.randn(batch, c_in, h, w)})
    assert count.flops == 2 * batch * c_out * h * w * c_in * k * k


def test_grouped_conv() -> None:
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # depthwise: each output sees one input channel
    count = count_torch_flops(_Wrap(conv), {"x": torch.randn(1, 8, 5, 5)})
    assert count.flops == 2 * 8 * 5 * 5 * 1 * 3 * 3


class _Attention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, heads, seq, head_dim)
        return nn.functional.scaled_dot_product_attention(x, x, x)


def test_attention_is_counted_explicitly() -> None:
    batch, heads, seq, dim = 2, 4, 16, 8
    count = count_torch_flops(_Attention(), {"x": torch.randn(batch, heads, seq, dim)})
    # QK^T: (s x d)(d x s) and AV: (s x s)(s x d), per batch and head
    assert count.flops == 2 * (2 * batch * heads * seq * seq * dim)


def test_minilm_matches_the_analytic_encoder_formula(minilm) -> None:
    seq, layers, d, ff = 32, 6, 384, 1536
    inputs = {k: torch.tensor(v) for k, v in minilm.encode(["a sentence"] * 2, seq_len=seq).items()}
    count = count_torch_flops(minilm.module, inputs, kind="text")
    # Per token per layer: Q, K, V, O projections (4 d^2) and the FFN (2 d ff) MACs; attention
    # scores and weighted sum (2 s d) MACs. BertModel also runs its pooler (one d x d Linear on
    # the first token) although mean pooling ignores its output: counted, because it runs.
    analytic = 2 * layers * seq * (4 * d * d + 2 * d * ff) + 2 * layers * (2 * seq * seq * d) + 2 * d * d
    assert count.flops_per_item == analytic


def test_onnx_graph_count_matches_torch(digits_mlp, tmp_path) -> None:
    path = digits_mlp.export_onnx(tmp_path / "m.onnx")
    x = digits_mlp.example_inputs[:4]
    onnx_count = count_onnx_flops(path, {"x": x})
    torch_count = count_torch_flops(digits_mlp.module, {"x": torch.tensor(x)})
    assert onnx_count.flops == torch_count.flops and onnx_count.uncounted == ()


def test_onnx_conv_count(tmp_path) -> None:
    from frugalml import load_model

    cnn = load_model("zoo:digits-cnn")
    path = cnn.export_onnx(tmp_path / "c.onnx")
    x = cnn.example_inputs[:3]
    assert count_onnx_flops(path, {"x": x}).flops == count_torch_flops(cnn.module, {"x": torch.tensor(x)}).flops


def _ort_optimized(src, dst) -> None:
    """Save the graph ONNX Runtime runs: FusedConv / FusedGemm (com.microsoft contrib ops) at this level."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])


def test_onnx_fused_and_quantized_ops_are_counted(tmp_path) -> None:
    """A graph after ORT fusion, and after dynamic INT8 quantization, does the float graph's arithmetic:
    the counts agree, nothing is silently dropped, and the INT8 graph is labelled int8."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from frugalml import load_model
    from frugalml.measure.flops import onnx_precision

    cnn = load_model("zoo:digits-cnn")
    plain = cnn.export_onnx(tmp_path / "c.onnx")
    x = {"x": cnn.example_inputs[:4]}
    expected = count_onnx_flops(plain, x).flops
    fused = tmp_path / "fused.onnx"
    _ort_optimized(plain, fused)
    ops = {n.op_type for n in onnx.load(str(fused)).graph.node}
    assert "FusedConv" in ops  # the contrib op whose outputs ONNX shape inference cannot see through
    count = count_onnx_flops(fused, x)
    assert count.flops == expected and count.uncounted == ()
    assert onnx_precision(count) == "fp32"

    mlp = load_model("zoo:digits-mlp")
    src = mlp.export_onnx(tmp_path / "m.onnx")
    quantized = tmp_path / "q.onnx"
    quantize_dynamic(str(src), str(quantized), weight_type=QuantType.QInt8)
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(quantized)).graph.node}
    xm = {"x": mlp.example_inputs[:4]}
    q = count_onnx_flops(quantized, xm)
    assert q.flops == count_onnx_flops(src, xm).flops and q.uncounted == ()
    assert onnx_precision(q) == "int8"
    # INT8 weights move a quarter of the bytes
    assert q.bytes < count_onnx_flops(src, xm).bytes


def test_onnx_node_times_map_back_to_the_file(tmp_path) -> None:
    """ORT renames nodes it rewrites at load time; every counted node still gets its kernel time."""
    from frugalml import load_model
    from frugalml.measure.roofline import time_onnx_nodes

    cnn = load_model("zoo:digits-cnn")
    fused = tmp_path / "fused.onnx"
    _ort_optimized(cnn.export_onnx(tmp_path / "c.onnx"), fused)
    x = {"x": cnn.example_inputs[:16]}
    times = time_onnx_nodes(fused, x, threads=1, repeats=3)
    counted = {op.layer for op in count_onnx_flops(fused, x).ops}
    assert counted <= set(times)
    assert all(t > 0 for t in times.values())

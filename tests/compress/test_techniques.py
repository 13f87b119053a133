"""Each technique on real zoo models: what it changes, what it skips (and says why), what it keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugalml import load_dataset, load_model
from frugalml.compress import (CastPrecision, Distill, DropLayers, ExportOnnx, LowRank, PruneMagnitude, PruneStructured,
                               QuantizeDynamic, QuantizeStatic, compress, measure_fidelity)
from frugalml.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def cnn():
    return load_model("zoo:digits-cnn")


@pytest.fixture(scope="module")
def test_split():
    data = load_dataset("zoo:digits", split="test")
    return data.features(), data.labels()


def _steps(handle):
    return handle.metadata["compression"]["steps"]


def test_original_is_never_modified(cnn) -> None:
    before = {k: v.clone() for k, v in cnn.module.state_dict().items()}
    compress(cnn, [PruneMagnitude(amount=0.9)])
    assert all(torch.equal(before[k], v) for k, v in cnn.module.state_dict().items())


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_quantize_dynamic_keeps_accuracy(digits_mlp, test_split, backend: str) -> None:
    x, y = test_split
    q = compress(digits_mlp, [QuantizeDynamic(backend=backend)])
    assert q.format == ("onnx" if backend == "onnxruntime" else "torch")
    assert measure_fidelity(digits_mlp, q, x, y)["agreement"] >= 0.97
    assert len(_steps(q)[0]["changed"]) == 3
    assert _steps(q)[0]["skipped"] == []  # every weight matrix quantized: none left in float
    if backend == "onnxruntime":
        # ONNX Runtime rewrites each Gemm as a MatMul before it matches the nodes it was asked for.
        assert [n.op_type for n in _onnx_nodes(q)].count("MatMulInteger") == 3


def _onnx_nodes(handle):
    import onnx

    return list(onnx.load(str(handle.onnx_path)).graph.node)


def test_torch_dynamic_int8_uses_the_ranges_this_cpu_allows(digits_mlp, test_split) -> None:
    from frugalml.compress._int8 import int8_bits

    x, _ = test_split
    q = compress(digits_mlp, [QuantizeDynamic(backend="torch")])
    bits = int8_bits("torch")
    (step,) = _steps(q)
    assert (step["metrics"]["activation_bits"], step["metrics"]["weight_bits"]) == bits
    assert step["structure"]["weight_bits"] == "auto"  # decided again where the model is loaded
    layers = [m for m in q.module.modules() if type(m).__name__ == "_DynamicLinear"]
    assert len(layers) == 3 and all(m.reduce_range is (bits.activations == 7) for m in layers)
    weights = layers[0].weight().int_repr()  # within the chosen width, and using all of it
    half = 2 ** (bits.weights - 1)
    assert -half <= int(weights.min()) and int(weights.max()) <= half - 1 and int(weights.abs().max()) >= half - 1
    inputs = torch.tensor(np.asarray(x[:64], dtype=np.float32)) / 16.0  # what the first layer sees
    first = layers[0]
    for reduce_range in (True, False):  # the module runs PyTorch's kernel with the range it was given
        first.reduce_range = reduce_range
        expected = torch.ops.quantized.linear_dynamic(inputs, first._packed_params._packed_params,
                                                      reduce_range=reduce_range)
        assert torch.equal(first(inputs), expected)


def test_quantize_exclude_and_auto(digits_mlp, test_split) -> None:
    q = compress(digits_mlp, [QuantizeDynamic(exclude=("net.4",))])
    (step,) = _steps(q)
    assert "net.4" not in step["changed"] and {"layer": "net.4", "reason": "excluded by the recipe"} in step["skipped"]
    auto = compress(digits_mlp, [QuantizeDynamic(keep_fp32="auto", target=1.0)])
    (step,) = _steps(auto)
    assert set(step["metrics"]["sensitivity"]) == {"net.0", "net.2", "net.4"}
    assert step["metrics"]["calibration_fidelity"] == 1.0  # reached by keeping sensitive layers in FP32


def test_quantize_static_needs_and_uses_calibration(cnn, test_split) -> None:
    x, y = test_split
    q = compress(cnn, [QuantizeStatic(calibration="minmax", samples=64)])
    assert q.format == "onnx" and measure_fidelity(cnn, q, x, y)["agreement"] >= 0.95
    assert _steps(q)[0]["structure"]["ops"] == "all"  # not a text model: INT8 flows between its layers
    with pytest.raises(InvalidArgumentError, match="calibration"):
        compress(load_model(torch.nn.Sequential(torch.nn.Linear(4, 2)), example_inputs=torch.randn(2, 4)),
                 [QuantizeStatic()], data=[])


def test_magnitude_pruning_is_honest(cnn) -> None:
    p = compress(cnn, [PruneMagnitude(amount=0.5)])
    (step,) = _steps(p)
    assert step["metrics"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert step["metrics"]["speedup_expected"] is False and "no size or speed gain" in step["metrics"]["note"]
    weights = torch.cat([p.module.features[0].weight.flatten(), p.module.classifier[1].weight.flatten()])
    assert (weights == 0).any()


def test_gradual_magnitude_pruning_keeps_its_zeros_through_recovery(cnn, test_split) -> None:
    config = PruneMagnitude(amount=0.8, steps=3, schedule="cubic", recover_epochs=1)
    assert [round(config.sparsity_at(t), 4) for t in (1, 2, 3)] == [round(0.8 * (1 - (2 / 3) ** 3), 4),
                                                                   round(0.8 * (1 - (1 / 3) ** 3), 4), 0.8]
    assert PruneMagnitude(amount=0.6, steps=3, schedule="linear").sparsity_at(1) == pytest.approx(0.2)
    p = compress(cnn, [config], data="zoo:digits")
    (step,) = _steps(p)
    assert [r["step"] for r in step["metrics"]["schedule"]] == [1, 2, 3]
    assert all(r["fidelity"] is not None for r in step["metrics"]["schedule"])
    assert step["metrics"]["sparsity"] == pytest.approx(0.8, abs=0.01)  # recovery did not regrow pruned weights
    assert not any(name.endswith("_orig") for name, _ in p.module.named_parameters())  # masks made permanent
    with pytest.raises(InvalidArgumentError, match="schedule"):
        PruneMagnitude(schedule="exponential")


def test_structured_pruning_shrinks_and_distillation_recovers(cnn, test_split) -> None:
    x, y = test_split
    pruned = compress(cnn, [PruneStructured(amount=0.5)])
    assert pruned.module.features[0].out_channels == 8 and pruned.module.classifier[3].out_features == 10
    assert sum(p.numel() for p in pruned.module.parameters()) < 0.4 * sum(p.numel() for p in cnn.module.parameters())
    (step,) = _steps(pruned)
    assert any("output layer" in s["reason"] for s in step["skipped"])
    recovered = compress(cnn, [PruneStructured(amount=0.5), Distill(epochs=4, lr=1e-3)])
    before = measure_fidelity(cnn, pruned, x, y)["accuracy"]
    after = measure_fidelity(cnn, recovered, x, y)["accuracy"]
    assert after > before and after >= 0.9


class _Recurrent(torch.nn.Module):
    """A custom model with a GRU, whose width torch-pruning cannot change."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Linear(16, 64)
        self.gru = torch.nn.GRU(64, 32, batch_first=True)
        self.head = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.GELU(), torch.nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, time, 16)
        out, _ = self.gru(torch.relu(self.emb(x)))
        return self.head(out[:, -1])


def test_structured_pruning_keeps_and_lists_a_layer_it_cannot_follow() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 10, 16)
    model = load_model(_Recurrent(), example_inputs=x, task="classification")
    pruned = compress(model, [PruneStructured(amount=0.5)])
    # emb feeds the GRU: torch-pruning cannot follow its width, so it stays whole and is listed.
    assert pruned.module.emb.out_features == 64 and pruned.module.gru.input_size == 64
    assert pruned.module.head[0].out_features == 16 and pruned.module.head[2].in_features == 16
    (step,) = _steps(pruned)
    reasons = {s["layer"]: s["reason"] for s in step["skipped"]}
    assert "no pruning rule for gru (GRU)" in reasons["emb"] and "full width" in reasons["emb"]
    assert "output layer" in reasons["head.2"]
    assert step["changed"] == ["head.0", "head.2"]
    assert pruned.predict(x.numpy()).shape == (8, 3)
    assert model.module.head[0].out_features == 32  # the original is untouched


class _Scaled(torch.nn.Module):
    """A custom layer holding a bare parameter: torch-pruning resizes it with the layer before it."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(0.5, 1.5, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def test_structured_pruning_lists_only_the_custom_layers_it_left_alone() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), _Scaled(32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    x = torch.randn(16, 8)
    pruned = compress(load_model(net, example_inputs=x, task="classification"), [PruneStructured(amount=0.5)])
    assert pruned.module[0].out_features == 16 and pruned.module[1].scale.shape == (16,)  # resized together
    (step,) = _steps(pruned)
    assert [s["layer"] for s in step["skipped"]] == ["3"]  # the output layer only; "1" was resized, not listed
    assert pruned.predict(x.numpy()).shape == (16, 2)


@pytest.mark.parametrize(("step", "layer", "reason"), [
    (QuantizeDynamic(), "gru", "GRU: dynamic INT8 covers Linear layers only"),
    (QuantizeDynamic(backend="onnxruntime"), "/inner/gru/GRU", "GRU: not quantized by dynamic INT8"),
    (LowRank(energy=0.9), "gru", "GRU: only Linear layers are factorized"),
    (PruneMagnitude(amount=0.5), "gru", "GRU: magnitude pruning covers Linear and Conv1d / Conv2d layers"),
    (PruneStructured(amount=0.5), "gru", "torch-pruning has no pruning rule for a GRU: unchanged"),
])
def test_a_layer_with_weights_a_technique_does_not_cover_is_listed(step, layer: str, reason: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 10, 16)
    out = compress(load_model(_Recurrent(), example_inputs=x, task="classification"), [step], data=x.numpy())
    reasons = {s["layer"]: s["reason"] for s in _steps(out)[0]["skipped"]}
    assert reasons[layer].startswith(reason)
    assert not any(name.startswith(("emb", "/inner/emb")) and "dynamic INT8" in r for name, r in reasons.items())


def test_lowrank_factorizes_what_saves_and_lists_the_rest(digits_mlp) -> None:
    low = compress(digits_mlp, [LowRank(energy=0.6)])
    (step,) = _steps(low)
    assert step["structure"]["ranks"] and all(isinstance(r, int) for r in step["structure"]["ranks"].values())
    name, rank = next(iter(step["structure"]["ranks"].items()))
    factor = low.module.get_submodule(name)
    assert factor[0].out_features == rank
    full = compress(digits_mlp, [LowRank(energy=1.0)])
    assert all("saves nothing" in s["reason"] for s in _steps(full)[0]["skipped"])


def test_lowrank_exact_at_full_rank() -> None:
    from frugalml.compress.lowrank import factorize

    linear = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16)
    torch.testing.assert_close(factorize(linear, 8)(x), linear(x), atol=1e-5, rtol=1e-5)


def test_cast_bf16(cnn, test_split) -> None:
    x, y = test_split
    half = compress(cnn, [CastPrecision(dtype="bf16")])
    assert next(half.module.parameters()).dtype == torch.bfloat16
    assert measure_fidelity(cnn, half, x, y)["agreement"] >= 0.97


def test_export_onnx_graph(cnn, test_split) -> None:
    x, _ = test_split
    exported = compress(cnn, [ExportOnnx()])
    assert exported.format == "onnx" and _steps(exported)[0]["metrics"]["optimize"] == "graph"
    np.testing.assert_allclose(exported.predict(x[:20]), cnn.predict(x[:20]), atol=1e-4)
    # Its layers stay in operators the quantizers take (no FusedConv / FusedGemm), so INT8 after it
    # covers every convolution and Gemm, statically and dynamically.
    assert not any(n.op_type.startswith("Fused") for n in _onnx_nodes(exported))
    static = compress(cnn, [ExportOnnx(), QuantizeStatic(samples=32)])
    assert len(_steps(static)[1]["changed"]) == 4 and _steps(static)[1]["skipped"] == []
    dynamic = compress(cnn, [ExportOnnx(), QuantizeDynamic(backend="onnxruntime")])
    reasons = {s["layer"]: s["reason"] for s in _steps(dynamic)[1]["skipped"]}
    assert len(_steps(dynamic)[1]["changed"]) == 2 and len(reasons) == 2  # the Gemms; the convolutions listed
    assert all(r.startswith("Conv: not quantized by dynamic INT8") for r in reasons.values())


@pytest.mark.parametrize("optimize", ["graph", "transformer"])
def test_onnx_dynamic_int8_takes_the_embedding_tables(minilm, optimize: str) -> None:
    texts = load_dataset("zoo:stdlib-docs", split="test").texts()[:64]
    full = compress(minilm, [ExportOnnx(optimize=optimize), QuantizeDynamic(backend="onnxruntime")], data=texts,
                    seq_len=32)
    step = _steps(full)[1]
    assert step["skipped"] == []  # every weight in INT8: MatMuls, the fused attention, the embedding tables
    tables = [n for n in step["changed"] if "embeddings" in n or "EmbedLayerNormalization" in n]
    assert len(tables) == (3 if optimize == "graph" else 1)
    kept = compress(minilm, [ExportOnnx(optimize=optimize), QuantizeDynamic(backend="onnxruntime", embeddings=False)],
                    data=texts, seq_len=32)
    assert {s["layer"] for s in _steps(kept)[1]["skipped"]} == set(tables)
    assert full.onnx_path.stat().st_size < 0.5 * kept.onnx_path.stat().st_size  # zoo:minilm: 23 MB against 59
    reference = minilm.predict(texts, seq_len=32)
    out = full.predict(texts, seq_len=32)
    cos = np.sum(out * reference, axis=1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
    assert cos.mean() >= 0.98


def test_static_quantization_of_an_optimized_transformer_graph(minilm, tmp_path, monkeypatch) -> None:
    # ONNX Runtime's optimizer saves a graph without value_info and with contrib ops (FusedMatMul);
    # its calibrator then found no range for the attention Softmax and crashed.
    monkeypatch.chdir(tmp_path)  # ONNX Runtime's shape inference writes into the cwd when it gives up
    texts = load_dataset("zoo:stdlib-docs", split="train").texts()[:24]
    q = compress(minilm, [ExportOnnx(optimize="graph"), QuantizeStatic(calibration="minmax", samples=16)],
                 data=texts, seq_len=16)
    import onnx

    ops = {n.op_type for n in onnx.load(str(q.onnx_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    out = q.predict(texts[:4])
    assert out.shape == (4, 384) and np.isfinite(out).all()
    assert list(tmp_path.iterdir()) == []  # nothing left in the user's working directory


def test_static_quantization_of_a_transformer_quantizes_its_weight_nodes(minilm, tmp_path, monkeypatch) -> None:
    # Quantizing every operator puts the attention scores, which carry the padding mask (about -3.4e38),
    # on one INT8 scale: every real score rounds to zero. The default for text models quantizes the
    # weight nodes only.
    monkeypatch.chdir(tmp_path)
    texts = load_dataset("zoo:stdlib-docs", split="train").texts()
    held_out = texts[200:264]
    auto = compress(minilm, [QuantizeStatic(samples=32)], data=texts[:32], seq_len=32)
    every = compress(minilm, [QuantizeStatic(samples=32, ops="all")], data=texts[:32], seq_len=32)
    (step,) = _steps(auto)
    assert step["structure"]["ops"] == "weights" and _steps(every)[0]["structure"]["ops"] == "all"
    good = measure_fidelity(minilm, auto, held_out, seq_len=32)["mean_cosine"]
    bad = measure_fidelity(minilm, every, held_out, seq_len=32)["mean_cosine"]
    assert good > 0.9 > 0.7 > bad


def test_text_techniques_on_minilm(minilm) -> None:
    texts = load_dataset("zoo:stdlib-docs", split="train").texts()[:48]
    dropped = compress(minilm, [DropLayers(keep=2)], data=texts, seq_len=16)
    assert len(dropped.module.encoder.encoder.layer) == 2
    assert _steps(dropped)[0]["structure"]["keep_indices"] == [0, 5]
    ffn = compress(minilm, [PruneStructured(amount=0.5, target="ffn")], data=texts, seq_len=16)
    layer = ffn.module.encoder.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 768 and layer.output.dense.in_features == 768
    assert layer.attention.self.query.out_features == 384  # attention untouched
    distilled = compress(minilm, [DropLayers(keep=3), Distill(epochs=1, batch_size=8, lr=1e-4)], data=texts, seq_len=16)
    history = _steps(distilled)[1]["metrics"]
    assert history["best_fidelity"] >= history["start_fidelity"]
    with pytest.raises(InvalidArgumentError, match="only 6 layers"):
        compress(minilm, [DropLayers(keep=7)], data=texts)
    with pytest.raises(InvalidArgumentError, match="ffn"):
        compress(load_model("zoo:digits-mlp"), [PruneStructured(target="ffn")])


def test_attention_head_pruning_and_its_artifact(minilm, tmp_path) -> None:
    from frugalml.compress import save_model

    texts = load_dataset("zoo:stdlib-docs", split="train").texts()[:16]
    pruned = compress(minilm, [PruneStructured(amount=0.5, target="heads")], data=texts, seq_len=16)
    attn = pruned.module.encoder.encoder.layer[0].attention
    assert attn.self.num_attention_heads == 6 and attn.self.query.out_features == 6 * 32  # 12 heads of 32 -> 6
    assert attn.output.dense.in_features == 192 and attn.output.dense.out_features == 384  # hidden size kept
    assert pruned.module.encoder.encoder.layer[0].intermediate.dense.out_features == 1536  # FFN untouched
    step = _steps(pruned)[0]
    assert set(step["structure"]["attention_heads"].values()) == {6} and len(step["structure"]["attention_heads"]) == 6
    assert step["metrics"]["heads_after"] == step["structure"]["attention_heads"]
    assert step["metrics"]["params_after"] < step["metrics"]["params_before"]
    out = pruned.predict(texts[:4], seq_len=16)
    assert out.shape == (4, 384) and np.isfinite(out).all()
    reloaded = load_model(save_model(pruned, tmp_path / "heads"))
    assert reloaded.module.encoder.encoder.layer[0].attention.self.num_attention_heads == 6
    np.testing.assert_allclose(reloaded.predict(texts[:4], seq_len=16), out, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="heads"):
        compress(load_model("zoo:digits-mlp"), [PruneStructured(target="heads")])


def test_onnx_model_with_torch_technique_is_refused(digits_mlp, tmp_path) -> None:
    onnx_model = load_model(digits_mlp.export_onnx(tmp_path / "m.onnx"))
    with pytest.raises(InvalidArgumentError, match="needs a PyTorch model"):
        compress(onnx_model, [PruneMagnitude()])
    compress(onnx_model, [QuantizeDynamic(backend="onnxruntime")])


def test_torch_steps_after_torch_quantization_are_refused(digits_mlp) -> None:
    with pytest.raises(InvalidArgumentError, match="last PyTorch step"):
        compress(digits_mlp, [QuantizeDynamic(), PruneMagnitude()])


def test_bucketed_predict_matches(minilm) -> None:
    texts = ["short one.", "a much longer sentence with many more words in it than the others.", "medium size text"]
    np.testing.assert_allclose(minilm.predict(texts, bucket=True, batch_size=2), minilm.predict(texts), atol=1e-5)


def test_bucket_lengths_round_up_to_the_multiple(minilm, monkeypatch) -> None:
    from frugalml.models._handle import TorchRunner

    texts = [" ".join(["word"] * n) for n in (1, 3, 5, 9, 14, 20, 31, 40)]
    seen = []
    prepare = TorchRunner.prepare
    monkeypatch.setattr(TorchRunner, "prepare", lambda self, items, seq_len: seen.append(seq_len) or
                        prepare(self, items, seq_len))
    out = minilm.predict(texts, bucket=True, batch_size=2, pad_multiple=16)
    assert seen and all(length % 16 == 0 for length in seen) and len(set(seen)) < len(seen)
    np.testing.assert_allclose(out, minilm.predict(texts), atol=1e-5)  # padding is masked: same embeddings
    with pytest.raises(InvalidArgumentError, match="pad_multiple"):
        minilm.predict(texts, bucket=True, pad_multiple=0)


def test_pad_rows_rounds_batches_to_powers_of_two(minilm, digits_mlp, monkeypatch) -> None:
    from frugalml.models._handle import TorchRunner

    rows = []
    prepare = TorchRunner.prepare
    monkeypatch.setattr(TorchRunner, "prepare", lambda self, items, seq_len: rows.append(len(items)) or
                        prepare(self, items, seq_len))
    texts = [" ".join(["word"] * n) for n in (1, 3, 5, 9, 14, 20, 31)]  # 7 texts: batches of 4 + 3
    reference = minilm.predict(texts)
    rows.clear()
    out = minilm.predict(texts, bucket=True, batch_size=4, pad_rows=True)
    assert rows == [4, 4] and out.shape == (7, 384)
    np.testing.assert_allclose(out, reference, atol=1e-5)
    x = digits_mlp.example_inputs[:5]  # one batch of 5 -> 8 rows, capped at batch_size 6 -> 6
    reference = digits_mlp.predict(x)
    rows.clear()
    # rtol: logits up to ~20, and the kernel's summation order depends on the rows in the batch (AVX-512 / AMX)
    np.testing.assert_allclose(digits_mlp.predict(x, batch_size=6, pad_rows=True), reference, rtol=1e-5, atol=1e-5)
    assert rows == [6]


def test_torch_compile_step_and_its_artifact(digits_mlp, test_split, tmp_path) -> None:
    from frugalml.compress import Compile, save_model

    x, _ = test_split
    compiled = compress(digits_mlp, [Compile()], data="zoo:digits")
    assert hasattr(compiled.module, "_orig_mod")  # the torch.compile wrapper
    (step,) = _steps(compiled)
    assert step["structure"]["compile"] == {"mode": "default", "dynamic": None, "backend": "inductor"}
    np.testing.assert_allclose(compiled.predict(x[:8]), digits_mlp.predict(x[:8]), atol=1e-5)
    folder = save_model(compiled, tmp_path / "compiled")
    assert not any(k.startswith("_orig_mod") for k in __import__("safetensors.torch", fromlist=["load_file"])
                   .load_file(str(folder / "model.safetensors")))  # plain weights on disk
    reloaded = load_model(folder)
    assert hasattr(reloaded.module, "_orig_mod")  # compiled again on load
    with pytest.raises(InvalidArgumentError, match="mode"):
        Compile(mode="fastest")


def test_onnxruntime_quantizer_logs_stay_out_of_the_root_logger(caplog) -> None:
    import logging

    torch.manual_seed(0)
    # A LayerNorm scale under per-channel static INT8 makes ONNX Runtime log "Axis 1 is out-of-range"
    # through the root logger; pre-processing advice comes the same way.
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(32, 8)
    caplog.set_level(logging.DEBUG)
    out = compress(load_model(net, example_inputs=x, task="classification"),
                   [QuantizeStatic(per_channel=True)], data=x.numpy())
    assert out.onnx_path is not None
    from_ort = [r for r in caplog.records if r.name == "root" and "onnxruntime" in r.pathname]
    assert not from_ort
    assert any(r.name == "frugalml.compress.quantize" and r.getMessage().startswith("onnxruntime.quantization: ")
               for r in caplog.records)
    logging.getLogger().warning("a user's own message")  # the filter is gone afterwards
    assert caplog.records[-1].getMessage() == "a user's own message"

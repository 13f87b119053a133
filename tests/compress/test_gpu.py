"""torchao weight quantization and 2:4 sparsity: the CPU paths for real, clear errors where a GPU is
needed, artifacts that replay the step on load; on a GPU, each keeps the model working."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalml import load_model
from frugalml.compress import (Compile, Distill, DropLayers, PruneMagnitude, QuantizeWeights, Sparsify24, compress,
                               save_model)
from frugalml.compress.gpu import mask_24
from frugalml.errors import InvalidArgumentError, MeasurementError, ModelLoadError

TEXTS = ["Return the number of items.", "Open the file and read it.", "Sort the list in place.",
         "Raise an error when the key is missing."] * 4


@pytest.mark.parametrize("config", [QuantizeWeights(dtype="int4"), QuantizeWeights(dtype="fp8"), Sparsify24()])
def test_cuda_only_techniques_on_the_cpu_are_a_clear_error(digits_mlp, config) -> None:
    with pytest.raises(MeasurementError, match="needs a CUDA GPU"):
        compress(digits_mlp, [config])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_device_cuda_without_gpu_is_a_clear_error(digits_mlp) -> None:
    with pytest.raises(InvalidArgumentError, match="device"):
        compress(digits_mlp, [QuantizeWeights()], device="cuda")


def test_bad_options() -> None:
    with pytest.raises(InvalidArgumentError, match="dtype"):
        QuantizeWeights(dtype="int2")
    with pytest.raises(InvalidArgumentError, match="group_size"):
        QuantizeWeights(dtype="int4", group_size=100)
    with pytest.raises(InvalidArgumentError, match="recover_epochs"):
        Sparsify24(recover_epochs=-1)
    with pytest.raises(InvalidArgumentError, match="keep_zeros"):
        Distill(keep_zeros="yes")
    with pytest.raises(InvalidArgumentError, match="device"):
        compress("zoo:digits-mlp", [QuantizeWeights()], device="tpu")


@pytest.mark.parametrize("dtype", ["int8", "int8_dynamic"])
def test_int8_on_the_cpu_round_trips_through_an_artifact(digits_mlp, tmp_path: Path, dtype: str) -> None:
    x = digits_mlp.example_inputs[:64]
    small = compress(digits_mlp, [QuantizeWeights(dtype=dtype)])
    step = small.metadata["compression"]["steps"][0]
    assert step["changed"] and step["structure"]["device"] == "cpu"
    from frugalml.compress._int8 import wide_sums

    # int8_dynamic is 20x slower than FP32 on CPUs without VNNI: the step says so.
    assert ("without VNNI" in step["metrics"].get("note", "")) == (dtype == "int8_dynamic"
                                                                     and not wide_sums("inductor"))
    assert type(small.module.get_submodule(step["changed"][0]).weight).__name__ != "Parameter"  # torchao tensor
    ref, out = digits_mlp.predict(x), small.predict(x)
    assert np.mean(ref.argmax(1) == out.argmax(1)) > 0.95
    saved = save_model(small, tmp_path / dtype)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["architecture"]["replay"]["technique"] == "quantize_weights"
    assert manifest["architecture"]["dtype"] == "float32"  # the float weights are what is stored
    # INT8 weights: about a quarter of the float bytes in memory (biases and scales stay float).
    assert manifest["metrics"]["deployed_bytes"] < 0.4 * manifest["files"]["model.safetensors"]["bytes"]
    loaded = load_model(saved)
    np.testing.assert_allclose(loaded.predict(x), out, atol=1e-5)  # the replayed quantization is the same
    # The profiler takes torchao tensors: parameters, in-memory size and FLOPs of the dense layers.
    from frugalml import profile

    p, base = (profile(h, batch_sizes=[1], max_time_s=0.2, energy_min_s=0.05, layers=False)
               for h in (small, digits_mlp))
    assert p.params == base.params and p.size_bytes < 0.5 * base.size_bytes
    assert p.flops_per_item == base.flops_per_item


def test_no_pytorch_step_may_follow_a_replayed_one(digits_mlp) -> None:
    with pytest.raises(InvalidArgumentError, match="follows quantize_weights"):
        compress(digits_mlp, [QuantizeWeights(), PruneMagnitude()])
    compress(digits_mlp, [QuantizeWeights(), Compile(backend="aot_eager")])  # compile may follow
    # Many compiled candidates of one model class must not exhaust dynamo's per-function cache
    # (past it, dynamo silently runs the model uncompiled).
    assert torch._dynamo.config.recompile_limit >= 256


def test_excluding_every_layer_is_an_error(digits_mlp) -> None:
    names = [n for n, m in digits_mlp.module.named_modules() if isinstance(m, torch.nn.Linear)]
    with pytest.raises(InvalidArgumentError, match="exclude"):
        compress(digits_mlp, [QuantizeWeights(exclude=tuple(names))])


def test_mask_24_keeps_the_two_largest_of_every_four() -> None:
    weight = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    keep = mask_24(weight)
    assert keep.shape == weight.shape and (keep.reshape(-1, 4).sum(1) == 2).all()
    groups, kept = weight.abs().reshape(-1, 4), keep.reshape(-1, 4)
    assert (groups[kept].reshape(-1, 2).min(1).values >= groups[~kept].reshape(-1, 2).max(1).values).all()


def test_distillation_keeps_a_pruned_pattern_only_when_asked(digits_mlp) -> None:
    pruned = compress(digits_mlp, [PruneMagnitude(amount=0.5)]).module
    zeros = {n: p == 0 for n, p in pruned.named_parameters() if p.dim() >= 2}
    for keep, expect_same in ((True, True), (False, False)):
        out = compress(digits_mlp, [PruneMagnitude(amount=0.5), Distill(epochs=1, lr=1e-3, keep_zeros=keep)])
        params = dict(out.module.named_parameters())
        same = all(bool((params[n][z] == 0).all()) for n, z in zeros.items())
        assert same == expect_same
        record = out.metadata["compression"]["steps"][1]["metrics"]
        assert record["best_fidelity"] > record["start_fidelity"]  # trained weights came back, not the start
        assert record["device"] == "cpu" and (record["kept_zeros"] > 0) == keep


@pytest.mark.cuda
@pytest.mark.parametrize("config", [QuantizeWeights(dtype="int8"), QuantizeWeights(dtype="int8_dynamic"),
                                    QuantizeWeights(dtype="int4"), QuantizeWeights(dtype="fp8"),
                                    Sparsify24(), Sparsify24(recover_epochs=1)])
def test_on_gpu_and_through_an_artifact(minilm, config, tmp_path: Path) -> None:
    small = compress(minilm, [config], data=TEXTS, seq_len=16, device="cuda")
    step = small.metadata["compression"]["steps"][0]
    assert step["changed"]
    out = small.predict(TEXTS, seq_len=16, device="cuda")
    ref = minilm.predict(TEXTS, seq_len=16, device="cuda")
    assert out.shape == (len(TEXTS), 384)
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.mean() > 0.8
    loaded = load_model(save_model(small, tmp_path / "a"))
    np.testing.assert_allclose(loaded.predict(TEXTS, seq_len=16, device="cuda"), out, atol=2e-2)


@pytest.mark.cuda
def test_reduce_overhead_compile_runs_repeatedly_on_gpu(minilm) -> None:
    small = compress(minilm, [DropLayers(keep=5), Compile(mode="reduce-overhead", dynamic=False)], data=TEXTS,
                     seq_len=16, device="cuda")
    first = small.predict(TEXTS, seq_len=16, batch_size=4, device="cuda")  # four replays of one graph
    second = small.predict(TEXTS, seq_len=16, batch_size=4, device="cuda")
    np.testing.assert_allclose(first, second, atol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_a_gpu_artifact_without_gpu_is_a_clear_load_error(digits_mlp, tmp_path: Path) -> None:
    small = compress(digits_mlp, [QuantizeWeights(dtype="int8")])
    saved = save_model(small, tmp_path / "a")
    manifest_path = saved / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["architecture"]["replay"]["device"] = "cuda"  # as if quantized on a GPU
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="CUDA GPU"):
        load_model(saved)


@pytest.mark.slow
def test_int8_dynamic_then_inductor_compile_round_trips(minilm, tmp_path: Path) -> None:
    small = compress(minilm, [QuantizeWeights(dtype="int8_dynamic"), Compile(mode="default", dynamic=False)],
                     data=TEXTS, seq_len=16)
    out = small.predict(TEXTS, seq_len=16)
    saved = save_model(small, tmp_path / "a")
    manifest = json.loads((saved / "manifest.json").read_text())["architecture"]
    assert manifest["replay"]["dtype"] == "int8_dynamic" and manifest["compile"]["mode"] == "default"
    np.testing.assert_allclose(load_model(saved).predict(TEXTS, seq_len=16), out, atol=1e-5)  # replay, recompile
    ref = minilm.predict(TEXTS, seq_len=16)
    assert ((out * ref).sum(1) > 0.99).all()

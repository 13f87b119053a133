"""quantize_dynamic with backend inductor: torch.export + torchao's x86 INT8 quantizer + TorchInductor."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import torch

from frugalml import load_dataset, load_model
from frugalml.compress import (
    CastPrecision,
    Compile,
    QuantizeDynamic,
    Recipe,
    _inductor,
    compress,
    save_model,
)
from frugalml.compress._int8 import Int8Bits, int8_bits
from frugalml.compress.quantize import _with_module
from frugalml.compress.runtime import is_compiled
from frugalml.errors import InvalidArgumentError

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="the inductor INT8 backend targets x86 CPUs")


@pytest.fixture(scope="module")
def digits_test():
    data = load_dataset("zoo:digits", split="test")
    return data.features(), data.labels()


def _quantized_layers(module: torch.nn.Module) -> int:
    """Linear weights the converted graph dequantizes per channel: one per INT8 layer."""
    graph = module._orig_mod.graph_module.graph
    return sum(1 for n in graph.nodes if "dequantize_per_channel" in str(n.target))


def test_int8_compiled_model_and_its_artifact(digits_mlp, digits_test, tmp_path) -> None:
    x, y = digits_test
    q = compress(digits_mlp, [QuantizeDynamic(backend="inductor")], data="zoo:digits")
    (step,) = q.metadata["compression"]["steps"]
    assert step["structure"] == {"backend": "inductor", "quantized": ["net.0", "net.2", "net.4"], "per_channel": True,
                                 "weight_bits": "auto"}
    assert (step["metrics"]["activation_bits"], step["metrics"]["weight_bits"]) == int8_bits("inductor")
    from frugalml.measure.devices import native_bf16_cpu

    assert step["metrics"]["float_ops"] == ("bf16" if native_bf16_cpu() else "fp32")
    assert q.module.bf16 == native_bf16_cpu()
    assert step["metrics"]["compile_s"] > 0  # compiled inside the step, not at the user's first call
    assert isinstance(q.module, _inductor.InductorInt8) and is_compiled(q.module)
    assert _quantized_layers(q.module) == 3
    from frugalml.measure.roofline import precision_of

    assert precision_of(q.module) == "int8"  # what the roofline compares with the CPU's INT8 peak
    original = digits_mlp.predict(x).argmax(1)
    out = q.predict(x)
    assert np.mean(out.argmax(1) == original) >= 0.98
    assert abs(np.mean(out.argmax(1) == y) - np.mean(original == y)) <= 0.02
    # The compiled kernels compute what the uncompiled INT8 graph does (up to rounding at the
    # quantization steps, where an activation one ulp from a rounding boundary may go either way).
    reference = _with_module(q, q.module._orig_mod).predict(x)
    assert np.mean(reference.argmax(1) == out.argmax(1)) >= 0.99
    for rows in (1, 3):  # batch sizes the first compile did not see
        assert q.predict(x[:rows]).shape == (rows, 10)
    with pytest.raises(InvalidArgumentError, match="compiled for x86 CPUs"):
        q.runner("torch", "cuda")  # named for what it is, on any machine (not "no GPU")

    folder = save_model(q, tmp_path / "int8")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["architecture"]["quantized"]["backend"] == "inductor"
    from safetensors.torch import load_file

    stored = load_file(str(folder / "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in stored.values())  # float weights; quantized again on load
    loaded = load_model(folder)
    assert isinstance(loaded.module, _inductor.InductorInt8) and is_compiled(loaded.module)
    assert np.mean(loaded.predict(x).argmax(1) == out.argmax(1)) >= 0.98


@pytest.mark.parametrize("bf16", [True, False])
def test_float_operations_in_either_precision_return_float32(digits_mlp, digits_test, bf16: bool) -> None:
    x, _ = digits_test
    names = ["net.0", "net.2", "net.4"]
    model = _inductor.inductor_int8(digits_mlp.module, digits_mlp.input_spec, names, bits=Int8Bits(8, 8), bf16=bf16)
    with torch.inference_mode():
        assert model(torch.from_numpy(x[:4].astype(np.float32))).dtype == torch.float32  # whatever ran inside
    out = _with_module(digits_mlp, model).predict(x)
    assert np.mean(out.argmax(1) == digits_mlp.predict(x).argmax(1)) >= 0.97


def test_exclude_and_keep_fp32_auto_leave_layers_float(digits_mlp, digits_test) -> None:
    x, _ = digits_test
    q = compress(digits_mlp, [QuantizeDynamic(backend="inductor", exclude=("net.4",))], data="zoo:digits")
    (step,) = q.metadata["compression"]["steps"]
    assert step["structure"]["quantized"] == ["net.0", "net.2"]
    assert step["skipped"] == [{"layer": "net.4", "reason": "excluded by the recipe"}]
    assert _quantized_layers(q.module) == 2  # the export's module names are the model's
    auto = compress(digits_mlp, [QuantizeDynamic(backend="inductor", keep_fp32="auto", target=1.0)], data="zoo:digits")
    (step,) = auto.metadata["compression"]["steps"]
    kept = [s["layer"] for s in step["skipped"]]
    assert sorted(kept + step["structure"]["quantized"]) == ["net.0", "net.2", "net.4"]
    assert _quantized_layers(auto.module) == len(step["structure"]["quantized"])
    assert set(step["metrics"]["sensitivity"]) == {"net.0", "net.2", "net.4"}  # each scored alone, uncompiled
    assert step["metrics"]["calibration_fidelity"] == 1.0
    assert auto.predict(x[:4]).shape == (4, 10)


def test_bad_combinations_are_refused(digits_mlp) -> None:
    with pytest.raises(InvalidArgumentError, match="per_channel"):
        QuantizeDynamic(backend="inductor", per_channel=False)
    with pytest.raises(InvalidArgumentError, match="compiles the model itself"):
        Recipe([QuantizeDynamic(backend="inductor"), Compile()])
    with pytest.raises(InvalidArgumentError, match="float32"):
        compress(digits_mlp, [CastPrecision(dtype="bf16"), QuantizeDynamic(backend="inductor")], data="zoo:digits")
    with pytest.raises(InvalidArgumentError, match="backend"):
        QuantizeDynamic(backend="tensorrt")


def test_other_architectures_are_named(monkeypatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(InvalidArgumentError, match="x86 CPUs; this machine is aarch64"):
        _inductor.check_x86()


def test_untraceable_model_names_the_backend(digits_mlp) -> None:
    class Branchy(torch.nn.Module):  # data-dependent control flow: torch.export cannot capture it
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(InvalidArgumentError, match="torch.export could not capture Branchy"):
        _inductor.converted(Branchy(), digits_mlp.input_spec, ["fc"], bits=Int8Bits(8, 8))


def test_sentence_encoder_at_every_batch_and_length(minilm) -> None:
    texts = load_dataset("zoo:stdlib-docs", split="test").texts()[:24]
    q = compress(minilm, [QuantizeDynamic(backend="inductor")], data=texts, seq_len=16)
    (step,) = q.metadata["compression"]["steps"]
    assert _quantized_layers(q.module) == len(step["structure"]["quantized"]) == 36  # 6 x (q, k, v, out, 2 FFN)
    # The BERT pooler feeds nothing a sentence embedding uses: listed, not silently left out.
    reasons = {s["layer"]: s["reason"] for s in step["skipped"]}
    assert reasons.pop("encoder.pooler.dense") == "unused by the model's output (torch.export leaves it out)"
    # The embedding tables are lookups, not Linear layers: listed as left in float.
    assert sorted(reasons) == [f"encoder.embeddings.{t}_embeddings" for t in ("position", "token_type", "word")]
    assert all(r.startswith("embedding lookup: ") for r in reasons.values())
    reference = minilm.predict(texts, seq_len=32)
    out = q.predict(texts, seq_len=32)
    cos = np.sum(out * reference, axis=1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
    assert cos.mean() >= 0.98
    assert q.predict(texts[:1]).shape == (1, 384)  # batch 1 at its own length (a new compile)

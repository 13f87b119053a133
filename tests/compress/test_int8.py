"""INT8 bit widths: which CPUs sum 8-bit x 8-bit products without overflow, and the overflow case run
for real through each backend on this machine."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from frugalml import load_model
from frugalml.compress import QuantizeDynamic, QuantizeStatic, compress
from frugalml.compress._int8 import BACKENDS, Int8Bits, int8_bits, wide_sums
from frugalml.errors import InvalidArgumentError

AVX2 = ["avx", "avx2", "fma", "f16c"]
FEATURES = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16"]


def test_bits_by_cpu() -> None:
    x86 = {"machine": "x86_64", "engine": "x86"}
    # Without VNNI: weights to 7 bits, activations keep 8 (every backend).
    for backend in BACKENDS:
        assert int8_bits(backend, features=AVX2, **x86) == Int8Bits(8, 7)
        assert int8_bits(backend, features=[*AVX2, "avx512_vnni"], **x86) == Int8Bits(8, 8)
    # fbgemm's VNNI kernels are AVX-512 only; oneDNN and ONNX Runtime use AVX-VNNI too.
    assert int8_bits("torch", features=[*AVX2, "avx_vnni"], **x86) == Int8Bits(8, 7)
    assert int8_bits("inductor", features=[*AVX2, "avx_vnni"], **x86) == Int8Bits(8, 8)
    assert int8_bits("onnxruntime", features=["amx_int8"], **x86) == Int8Bits(8, 8)
    # Explicit widths: 8 on such a CPU keeps activations to 7 where frugalml sets them (PyTorch's
    # default); ONNX Runtime's activations are always 8-bit.
    assert int8_bits("torch", 8, features=AVX2, **x86) == Int8Bits(7, 8)
    assert int8_bits("inductor", 8, features=AVX2, **x86) == Int8Bits(7, 8)
    assert int8_bits("onnxruntime", 8, features=AVX2, **x86) == Int8Bits(8, 8)
    assert int8_bits("onnxruntime", 7, features=[*AVX2, "avx512_vnni"], **x86) == Int8Bits(8, 7)
    # Arm kernels widen before they sum; PyTorch's other engines keep its 7-bit activations.
    assert int8_bits("onnxruntime", features=[], machine="aarch64") == Int8Bits(8, 8)
    assert int8_bits("torch", features=[], machine="aarch64", engine="qnnpack") == Int8Bits(7, 8)
    assert int8_bits("torch", features=[*AVX2, "avx512_vnni"], machine="x86_64", engine="onednn") == Int8Bits(7, 8)


@given(st.sampled_from(BACKENDS), st.lists(st.sampled_from(FEATURES), unique=True),
       st.sampled_from(["auto", 7]), st.sampled_from(["x86_64", "AMD64", "aarch64", "arm64"]),
       st.sampled_from(["x86", "fbgemm", "qnnpack"]))
def test_default_and_7_never_pair_two_full_operands_where_sums_saturate(backend: str, features: list[str], bits,
                                                                       machine: str, engine: str) -> None:
    chosen = int8_bits(backend, bits, features=features, machine=machine, engine=engine)
    assert chosen.activations in (7, 8) and chosen.weights in (7, 8)
    if not wide_sums(backend, features=features, machine=machine):
        assert chosen != (8, 8)
    if bits == 7:
        assert chosen.weights == 7


@pytest.mark.parametrize("value", [True, "7", 7.0, 6, 16, None, "full"])
def test_weight_bits_is_validated(value) -> None:
    for config in (QuantizeDynamic, QuantizeStatic):
        with pytest.raises(InvalidArgumentError, match="weight_bits"):
            config(weight_bits=value)


def test_version_1_recipes_keep_8_bit_weights() -> None:
    from frugalml.compress import Recipe

    old = Recipe.from_dict([{"technique": "quantize_dynamic", "version": 1, "backend": "onnxruntime"},
                            {"technique": "quantize_static", "version": 1}])
    assert [s.weight_bits for s in old.steps] == [8, 8]
    new = Recipe.from_dict([{"technique": "quantize_dynamic"}, {"technique": "quantize_static", "weight_bits": 7}])
    assert [s.weight_bits for s in new.steps] == ["auto", 7]
    assert Recipe.from_text(new.to_yaml()) == new
    # version 3 of quantize_static added `ops`: recipes before it quantized every operator
    assert old.steps[1].ops == "all" and new.steps[1].ops == "auto"
    assert Recipe.from_dict([{"technique": "quantize_static", "version": 2}]).steps[0].ops == "all"
    with pytest.raises(InvalidArgumentError, match="ops"):
        QuantizeStatic(ops="some")
    # version 3 of quantize_dynamic added `embeddings`: recipes before it left embedding tables in float
    assert old.steps[0].embeddings is False and new.steps[0].embeddings == "auto"
    assert Recipe.from_dict([{"technique": "quantize_dynamic", "version": 2}]).steps[0].embeddings is False
    assert Recipe.from_text(Recipe([QuantizeDynamic(backend="onnxruntime", embeddings=False)]).to_yaml()).steps[
        0].embeddings is False
    with pytest.raises(InvalidArgumentError, match="embeddings"):
        QuantizeDynamic(embeddings="yes")
    with pytest.raises(InvalidArgumentError, match="embeddings.*backend torch"):
        QuantizeDynamic(backend="torch", embeddings=True)


def worst_case() -> tuple:
    """A Linear layer whose every product is the largest INT8 product (255 x 127, or 255 x 63 with
    7-bit weights): one pair of them overflows a 16-bit sum. The exact outputs are +-383."""
    width = 384
    layer = torch.nn.Linear(width, 4, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.weight[1] = -1.0
    x = np.ones((8, width), dtype=np.float32)
    x[:, 0] = 0.0  # min 0, max 1: every other activation quantizes to 255
    handle = load_model(torch.nn.Sequential(layer), example_inputs=x, task="regression")
    return handle, x, np.tile(np.array([383.0, -383.0, 383.0, 383.0], dtype=np.float32), (8, 1))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("weight_bits", ["auto", 7])
def test_the_largest_products_do_not_overflow(backend: str, weight_bits) -> None:
    """On a CPU without VNNI, 8-bit weights and activations returned about 193 here instead of 383."""
    handle, x, exact = worst_case()
    quantized = compress(handle, [QuantizeDynamic(backend=backend, weight_bits=weight_bits)])
    (step,) = quantized.metadata["compression"]["steps"]
    assert (step["metrics"]["activation_bits"], step["metrics"]["weight_bits"]) == int8_bits(backend, weight_bits)
    np.testing.assert_allclose(quantized.predict(x), exact, rtol=0.02)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the inductor backend targets x86")
def test_the_largest_products_compiled_by_inductor() -> None:
    """oneDNN's kernels compiled by TorchInductor (the uncompiled graph computes in float and never
    overflows, so only the compiled model shows it)."""
    handle, x, exact = worst_case()
    quantized = compress(handle, [QuantizeDynamic(backend="inductor")])
    np.testing.assert_allclose(quantized.predict(x), exact, rtol=0.02)


def test_static_quantization_of_the_largest_products(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # ONNX Runtime's calibration may write beside the working directory
    handle, x, exact = worst_case()
    quantized = compress(handle, [QuantizeStatic(samples=8)], data=x)
    (step,) = quantized.metadata["compression"]["steps"]
    assert step["metrics"]["weight_bits"] == int8_bits("onnxruntime").weights
    np.testing.assert_allclose(quantized.predict(x), exact, rtol=0.02)

"""TinyML fit from the ONNX graph: weight bytes by stored width, peak activations by tensor liveness."""

from __future__ import annotations

import frugalml
from frugalml.compress import QuantizeStatic, compress
from frugalml.measure.tinyml import tinyml_fit


def test_fit_of_the_digits_cnn() -> None:
    handle = frugalml.load_model("zoo:digits-cnn")
    params = sum(p.numel() for p in handle.module.parameters())
    fit = tinyml_fit(handle)
    assert 4 * params <= fit.weight_bytes <= 4 * params + 64  # float32 initializers (+ a shape constant)
    # The largest live set: the second convolution's (32, 8, 8) output read by its ReLU, which writes
    # another (32, 8, 8): 2 x 2048 one-byte elements.
    assert fit.peak_activation_bytes == 2 * 32 * 8 * 8 and "Relu" in fit.peak_at
    int8 = tinyml_fit(compress(handle, [QuantizeStatic()], data="zoo:digits"))
    assert int8.weight_bytes < 0.3 * fit.weight_bytes  # int8 weights; biases stay int32, scales float
    assert int8.peak_activation_bytes == fit.peak_activation_bytes  # DequantizeLinear of weights is folded
    assert "estimate" in int8.source

"""GPU techniques: a clear error without a GPU; on a GPU, each keeps the model working."""

from __future__ import annotations

import pytest
import torch

from frugalml.compress import QuantizeWeights, Sparsify24, compress, save_model
from frugalml.errors import InvalidArgumentError, MeasurementError


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("config", [QuantizeWeights(dtype="int8"), Sparsify24()])
def test_without_gpu_is_a_clear_error(digits_mlp, config) -> None:
    with pytest.raises(MeasurementError, match="needs a CUDA GPU"):
        compress(digits_mlp, [config])


def test_bad_options() -> None:
    with pytest.raises(InvalidArgumentError, match="dtype"):
        QuantizeWeights(dtype="int2")
    with pytest.raises(InvalidArgumentError, match="group_size"):
        QuantizeWeights(dtype="int4", group_size=100)


@pytest.mark.cuda
@pytest.mark.parametrize("config", [QuantizeWeights(dtype="int8"), Sparsify24()])
def test_on_gpu(minilm, config, tmp_path) -> None:

    texts = ["Return the number of items.", "Open the file and read it."] * 4
    small = compress(minilm, [config], data=texts, seq_len=16)
    assert small.metadata["compression"]["steps"][0]["changed"]
    runner = small.runner("torch", "cuda")
    out = runner.to_numpy(runner(runner.prepare(texts, 16)))
    assert out.shape == (8, 384)
    with pytest.raises(InvalidArgumentError, match="not supported yet"):
        save_model(small, tmp_path / "x")

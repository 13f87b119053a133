"""compare_latency(): models timed head to head on the same inputs, and its errors."""

from __future__ import annotations

import json

import pytest

from frugalml.compress import ExportOnnx, compress
from frugalml.errors import InvalidArgumentError
from frugalml.measure import compare_latency


def test_a_pytorch_model_against_its_onnx_export(digits_mlp) -> None:
    onnx = compress(digits_mlp, [ExportOnnx()])
    rounds: list[tuple[int, int]] = []
    c = compare_latency([digits_mlp, onnx], batch=4, rounds=4, round_s=0.05, on_progress=lambda d, t: rounds.append((d, t)))
    assert [x.runtime for x in c.contenders] == ["torch", "onnxruntime"] and c.batch == 4 and c.seq_len is None
    assert c.orders == ((0, 1), (1, 0), (0, 1), (1, 0)) and rounds == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for x in c.contenders:
        assert len(x.p50_by_round_ms) == len(x.p95_by_round_ms) == len(x.mean_by_round_ms) == 4
        assert all(p50 <= p95 for p50, p95 in zip(x.p50_by_round_ms, x.p95_by_round_ms))
        assert min(x.p95_by_round_ms) <= x.p95_ms <= max(x.p95_by_round_ms)  # the median of the rounds
        assert x.n >= 4 * 5 and x.throughput_items_per_s > 0
    assert c.ratio(0, 1) == pytest.approx(c.contenders[0].p50_ms / c.contenders[1].p50_ms)
    assert c.ratio(1, 1, stat="p95") == 1.0
    assert json.loads(json.dumps(c.to_dict()))["contenders"][1]["runtime"] == "onnxruntime"


def test_text_models_get_the_same_tokens(minilm) -> None:
    c = compare_latency([minilm, minilm], data=["a short text", "another one"], batch=2, seq_len=16, rounds=2,
                        round_s=0.01)
    assert c.seq_len == 16 and len(c.contenders) == 2


@pytest.mark.parametrize("models, kwargs, name", [
    ("one", {}, "models"),
    (["zoo:digits-mlp"], {}, "models"),
    (["zoo:digits-mlp", "zoo:digits-mlp"], {"rounds": 5}, "rounds"),
    (["zoo:digits-mlp", "zoo:digits-mlp"], {"batch": 0}, "batch"),
    (["zoo:digits-mlp", "zoo:digits-mlp"], {"settle_s": float("nan")}, "settle_s"),
    (["zoo:digits-mlp", "zoo:digits-mlp"], {"device": "tpu"}, "device"),
    (["zoo:digits-mlp", "zoo:digits-mlp"], {"seq_len": 8}, "seq_len"),
])
def test_bad_arguments(models, kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        compare_latency(models, round_s=0.01, **kwargs)


def test_models_of_different_inputs_are_refused(digits_mlp, minilm) -> None:
    with pytest.raises(InvalidArgumentError, match="mix input kinds"):
        compare_latency([digits_mlp, minilm])


def test_bad_ratio_index(digits_mlp) -> None:
    c = compare_latency([digits_mlp, digits_mlp], rounds=2, round_s=0.01)
    with pytest.raises(InvalidArgumentError, match="contender index"):
        c.ratio(0, 2)

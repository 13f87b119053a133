"""Splitting a served batch of texts by length: the plan is a partition, optimal under its cost model
(checked against every partition by brute force), never dearer than one batch; the overhead fit; and
a served model's outputs are the same split or not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import InvalidArgumentError
from frugalml.serve import ServedModel
from frugalml.serve._split import fit_overhead, plan_batches


def _cost(parts: list[np.ndarray], lengths: np.ndarray, overhead: float, rows=lambda n: n) -> float:
    return sum(overhead + rows(len(p)) * int(lengths[p].max()) for p in parts)


def _partitions(items: list[int]):
    """Every way to split ``items`` into non-empty groups (Bell(n) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _partitions(rest):
        for i in range(len(smaller)):
            yield smaller[:i] + [[first, *smaller[i]]] + smaller[i + 1:]
        yield [[first], *smaller]


def _brute_force(lengths: np.ndarray, overhead: float, rows=lambda n: n) -> float:
    """The cheapest split over every partition of the texts, not only runs of the sorted order."""
    return min(_cost([np.array(g) for g in groups], lengths, overhead, rows)
               for groups in _partitions(list(range(len(lengths)))))


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


lengths_st = st.lists(st.integers(1, 128), min_size=1, max_size=7)  # Bell(7) = 877 partitions


@settings(max_examples=150, deadline=None)
@given(lengths_st, st.floats(0, 500), st.booleans())
def test_the_plan_is_an_optimal_partition(raw: list[int], overhead: float, pow2_rows: bool) -> None:
    lengths = np.array(raw)
    rows = _pow2 if pow2_rows else (lambda n: n)
    parts = plan_batches(lengths, overhead_tokens=overhead, rows=rows)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(raw)))  # every text once
    for p in parts:
        assert list(lengths[p]) == sorted(lengths[p])  # each sub-batch ordered by length
    cost = _cost(parts, lengths, overhead, rows)
    assert cost <= _cost([np.arange(len(raw))], lengths, overhead, rows) + 1e-6  # never dearer than one batch
    assert cost == pytest.approx(_brute_force(lengths, overhead, rows))


def test_what_the_overhead_decides() -> None:
    lengths = [60, 8, 9, 61, 10, 7]
    assert [sorted(p.tolist()) for p in plan_batches(lengths, overhead_tokens=math.inf)] == [[0, 1, 2, 3, 4, 5]]
    # cheap calls: the four short texts and the two long ones apart (4 x 10 + 2 x 61 + 2 x 5, not 6 x 61 + 5)
    assert [sorted(p.tolist()) for p in plan_batches(lengths, overhead_tokens=5)] == [[1, 2, 4, 5], [0, 3]]
    assert len(plan_batches(lengths, overhead_tokens=0)) == 6  # free calls: one per distinct length
    # a length rounded up to 64 (a GPU's multiple): the texts cost the same together, one call is cheaper
    assert len(plan_batches(lengths, overhead_tokens=5, length_of=lambda n: 64)) == 1


@pytest.mark.parametrize(("lengths", "overhead", "match"), [
    ([], 1.0, "non-empty"), ([3, 0], 1.0, ">= 1"), ([[3]], 1.0, "non-empty"),
    ([3], -1.0, ">= 0"), ([3], float("nan"), ">= 0"), ([3], "5", ">= 0"),
])
def test_plan_validates(lengths, overhead, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        plan_batches(lengths, overhead_tokens=overhead)


def test_fit_overhead() -> None:
    # 2 ms per call + 0.1 ms per token: the overhead is 20 tokens
    assert fit_overhead((16, 0.002 + 16e-4), (512, 0.002 + 512e-4)) == pytest.approx(20.0)
    assert fit_overhead((16, 0.005), (512, 0.005)) == math.inf  # no dearer when larger (a GPU with room)
    assert fit_overhead((16, 0.005), (512, 0.004)) == math.inf  # noise
    assert fit_overhead((16, 0.0001), (512, 0.1)) == 0.0  # the line crosses below the origin: no fixed cost
    with pytest.raises(InvalidArgumentError, match="more tokens"):
        fit_overhead((512, 0.1), (16, 0.01))


def test_split_batches_give_the_same_embeddings(minilm) -> None:
    texts = ["a", "the dog barked at the cat", "x y", " ".join(["word"] * 60), "a cat sat on the mat today",
             " ".join(["long"] * 90)]
    served = ServedModel("zoo:minilm")
    whole = served.run(texts)
    served.overhead_tokens_ = 0.0  # every distinct length its own sub-batch
    assert np.allclose(served.run(texts), whole, atol=1e-5)
    assert np.allclose(served.run(texts[:1]), whole[:1], atol=1e-5)


def test_warm_up_times_the_overhead_only_where_it_can_split(minilm) -> None:
    served = ServedModel("zoo:minilm")
    served.warm_up(max_batch=1)
    assert served.overhead_tokens_ is None  # batches of one: nothing to split
    served.warm_up(max_batch=8)
    assert served.overhead_tokens_ is not None and served.overhead_tokens_ >= 0  # a timing: its value varies
    off = ServedModel("zoo:minilm", split_batches=False)
    off.warm_up(max_batch=8)
    assert off.overhead_tokens_ is None
    digits = ServedModel("zoo:digits-mlp")
    digits.warm_up(max_batch=8)
    assert digits.overhead_tokens_ is None  # tensors have no lengths


def test_readyz_reports_the_fixed_cost(minilm) -> None:
    from fastapi.testclient import TestClient

    from frugalml.serve import ServeConfig, create_app

    model = ServedModel("zoo:minilm")
    with TestClient(create_app(ServeConfig(model="zoo:minilm", max_batch=8), models={"zoo:minilm": model})) as client:
        info = client.get("/readyz").json()
    assert model.overhead_tokens_ is not None  # the app's start-up warmed it up for batches of 8
    if math.isfinite(model.overhead_tokens_):
        assert info["split_overhead_tokens"] == round(model.overhead_tokens_, 1)
    else:  # a batch of 8 x 64 tokens took no longer than one text: it never splits
        assert "split_overhead_tokens" not in info

"""Federated simulation: partitions (Hypothesis), int8 updates, and a real Flower + Ray run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.store import open_store
from frugalml.train import PrivacySettings
from frugalml.train._federated import (
    dequantize_update,
    dirichlet_partition,
    quantize_update,
    simulate,
)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12), st.sampled_from([None, 0.1, 0.5, 5.0]), st.integers(0, 10_000))
def test_partition_assigns_every_row_once(clients: int, alpha: float | None, seed: int) -> None:
    y = np.random.default_rng(seed).integers(0, 5, size=200)
    parts = dirichlet_partition(y, clients, alpha=alpha, seed=seed)
    joined = np.concatenate(parts)
    assert len(parts) == clients and sorted(joined.tolist()) == list(range(200))
    assert min(len(p) for p in parts) >= 2


def test_small_alpha_is_skewed() -> None:
    y = np.repeat(np.arange(10), 100)
    skewed = dirichlet_partition(y, 10, alpha=0.05, seed=0)
    iid = dirichlet_partition(y, 10, alpha=None, seed=0)
    assert np.median([len(np.unique(y[p])) for p in skewed]) < np.median([len(np.unique(y[p])) for p in iid]) == 10


def test_fewer_rows_than_clients_is_a_clear_error() -> None:
    with pytest.raises(DataError, match=r"clients=50: the data has 30 training rows, fewer than 2 per client"):
        dirichlet_partition(np.zeros(30, dtype=int), 50, alpha=0.5, seed=0)
    with pytest.raises(DataError, match="fewer than 2 per client"):
        simulate(clients=1000, rounds=1, record=False)


def test_bad_options() -> None:
    for kwargs, needle in (({"clients": 1}, "at least 2"), ({"alpha": 0.0}, "alpha=0.0"),
                           ({"strategy": "fedsgd"}, "fedavg, fedprox"), ({"compress_updates": "int4"}, "none, int8"),
                           ({"privacy": PrivacySettings(epsilon=0)}, "epsilon=0")):
        with pytest.raises(InvalidArgumentError, match=needle):
            simulate(rounds=1, record=False, **kwargs)


@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=50))
def test_int8_round_trip_error_is_at_most_half_a_step(values: list[float]) -> None:
    delta = {"a": np.array(values, dtype=np.float32), "b": np.zeros(3, np.float32)}
    flat, scales = quantize_update(delta)
    assert flat.dtype == np.int8 and flat.size == len(values) + 3 and scales.dtype == np.float32
    back = dequantize_update(flat, scales, delta)
    assert np.abs(back["a"] - delta["a"]).max() <= scales[0] / 2 + 1e-6 and not back["b"].any()


def test_flower_simulation_with_int8_updates_and_dp(sqlite_url: str) -> None:
    result = simulate(clients=4, rounds=3, compress_updates="int8", privacy=PrivacySettings(epsilon=8),
                      store=sqlite_url)
    assert [r["round"] for r in result.rounds] == [1, 2, 3] and result.failures == 0
    assert result.final_accuracy > 0.2  # 10 classes, 3 noisy rounds: chance is 0.1
    assert result.download_bytes == result.upload_bytes_float32  # float32 down, as Flower counts it
    assert result.upload_bytes_float32 / result.upload_bytes > 3.5  # the int8 payload
    q = result.privacy
    assert q is not None and q["epsilon_max"] <= 8 * 1.01 and q["noise_multiplier_min"] > 0
    assert result.centralized_accuracy is not None and result.gap is not None
    run = open_store(sqlite_url).get_run(result.run_id)
    assert run.kind == "federated" and {"final_accuracy", "upload_bytes", "epsilon"} <= {m.name for m in
                                                                                         run.measurements}
    from frugalml.report.html import render_run

    page = render_run(run, plotly="/static/plotly.min.js")
    assert "fig-federated-rounds" in page and "bytes up" in page

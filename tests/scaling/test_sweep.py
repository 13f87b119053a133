"""The sweep trains real models, records each point in the store inside the sweep run, and fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalml.errors import InvalidArgumentError
from frugalml.scaling._report import points_for, write_scaling_report
from frugalml.scaling._sweep import SweepConfig, load_sweep_config, sweep
from frugalml.store import open_store

TINY = {"model_sizes": [8, 16, 24], "data_sizes": [4096, 16384], "seq_len": 32, "batch_size": 8,
        "eval_tokens": 4096}


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sweep') / 'runs.db'}"
    events = []
    result = sweep(SweepConfig(**TINY, store=url), on_progress=lambda d, t, m: events.append((d, t, m)))
    return url, result, events


def test_sweep_trains_every_point_and_records_it(swept) -> None:
    url, result, events = swept
    assert len(result.points) == 6 and events[-1][:2] == (6, 6)
    n = sorted({p["n_params"] for p in result.points})
    assert n[0] < n[1] < n[2]  # a wider model has more parameters
    for p in result.points:
        assert p["n_tokens"] <= p["data"] and p["flops"] == 6 * p["n_params"] * p["n_tokens"]
        assert 0 < p["loss"] < 6  # nats per byte: below the uniform 5.55 once trained at all
    # more data lowers the held-out loss of the largest model
    largest = sorted((p for p in result.points if p["size"] == 24), key=lambda p: p["data"])
    assert largest[1]["loss"] < largest[0]["loss"]
    store = open_store(url)
    children = store.list_runs(parent_id=result.run_id)
    assert len(children) == 6 and {c.kind for c in children} == {"train"}
    assert {m.name for m in store.get_run(children[0].id).measurements} >= {"n_params", "n_tokens", "flops", "loss"}
    assert result.fit is not None and result.fit.n_points == 6


def test_fit_and_report_from_the_sweep_run(swept, tmp_path: Path) -> None:
    url, result, _ = swept
    points = points_for(None, result.run_id, url)
    assert len(points) == 6
    out = write_scaling_report(points, result.fit, tmp_path / "s.html")
    text = out.read_text()
    for div in ("fig-loss-n", "fig-loss-d", "fig-isoflop", "fig-frontier"):
        assert f'id="{div}"' in text
    with pytest.raises(InvalidArgumentError, match="either a data file or --run"):
        points_for(None, None, url)
    # the UI's page for the sweep run is the same report
    from frugalml.report.html import render_run

    page = render_run(open_store(url).get_run(result.run_id), plotly="/static/plotly.min.js")
    assert 'id="fig-isoflop"' in page and "Fitted law" in page


def test_sweep_config_errors(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("model_size: [1, 2]\n")
    with pytest.raises(InvalidArgumentError, match="model_size"):
        load_sweep_config(tmp_path / "s.yaml")
    with pytest.raises(InvalidArgumentError, match="exceeds"):
        sweep(SweepConfig(data_sizes=[1000, 10**8], store=f"sqlite:///{tmp_path / 'r.db'}"))


def test_digits_mlp_sweep(tmp_path: Path) -> None:
    cfg = SweepConfig(task="digits-mlp", model_sizes=[4, 16, 64], data_sizes=[100, 800], epochs=3, batch_size=32,
                      store=f"sqlite:///{tmp_path / 'r.db'}")
    result = sweep(cfg, fit=False)
    assert len(result.points) == 6 and result.fit is None
    by = {(p["size"], p["data"]): p for p in result.points}
    assert by[(64.0, 800.0)]["loss"] < by[(4.0, 100.0)]["loss"]  # bigger and more data: lower held-out loss
    assert by[(16.0, 800.0)]["n_tokens"] == 800 and by[(16.0, 800.0)]["flops"] == 6 * by[(16.0, 800.0)]["n_params"] * 800 * 3


@pytest.mark.cuda
def test_sweep_on_cuda(tmp_path: Path) -> None:
    result = sweep(SweepConfig(**TINY, device="cuda", store=f"sqlite:///{tmp_path / 'r.db'}"), fit=False)
    assert len(result.points) == 6 and all(0 < p["loss"] < 6 for p in result.points)

"""The UI's routes over a real store (FastAPI's TestClient): list, filters, run pages, comparison, cost, API."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from frugalml.errors import InvalidArgumentError
from frugalml.ui import create_app
from frugalml._net import check_bind


@pytest.fixture(scope="module")
def client(searched: dict) -> TestClient:
    return TestClient(create_app(searched["url"]))


def test_run_list_and_filters(client: TestClient, searched: dict) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for key in ("first", "second", "profile", "failed"):
        assert f"id='run-{searched[key]}'" in page.text
    compress = client.get("/", params={"kind": "compress"}).text  # each row's one-line result
    # a digits model's artifact is tens of kB: shown as such, not as "0.0 MB"
    assert "agreement " in compress and re.search(r"\d+\.\d (kB|MB)", compress) and "0.0 MB" not in compress
    only = client.get("/", params={"kind": "optimize"}).text
    assert f"id='run-{searched['first']}'" in only and f"id='run-{searched['profile']}'" not in only
    failed = client.get("/", params={"status": "failed"}).text
    assert f"id='run-{searched['failed']}'" in failed and f"id='run-{searched['first']}'" not in failed
    named = client.get("/", params={"q": "digits-mlp"}).text
    assert f"id='run-{searched['profile']}'" in named and f"id='run-{searched['first']}'" not in named
    assert "No runs match" in client.get("/", params={"q": "nothing-like-this"}).text
    assert client.get("/", params={"limit": 0}).status_code == 422


def test_run_pages(client: TestClient, searched: dict) -> None:
    search = client.get(f"/runs/{searched['first']}").text
    assert 'id="fig-pareto"' in search and "<script src='/static/plotly.min.js'>" in search
    assert "Runs inside this one" in search and search.count("class='child-link'") == 4  # compress, gate, 2 profiles
    profile = client.get(f"/runs/{searched['profile']}").text
    assert "Profile of zoo:digits-mlp" in profile
    failed = client.get(f"/runs/{searched['failed']}").text
    assert "the model file is truncated" in failed
    missing = client.get("/runs/99999")
    assert missing.status_code == 404 and "no such run" in missing.text


def test_compare(client: TestClient, searched: dict) -> None:
    a, b = searched["first"], searched["second"]
    page = client.get("/compare", params=[("run", a), ("run", b)])
    assert page.status_code == 200 and 'id="fig-fronts"' in page.text and "quality" in page.text
    assert f"#{b} / #{a}" in page.text and "run_energy" in page.text
    profiles = client.get("/compare", params=[("run", searched["profile"]), ("run", searched["profile"])]).text
    assert 'id="fig-latency"' in profiles and "1x" in profiles
    one = client.get("/compare", params=[("run", a)])
    assert one.status_code == 400 and "exactly two runs; 1 were given" in one.text


def test_cost_of_experimentation(client: TestClient, searched: dict) -> None:
    cost = client.get("/api/cost").json()
    assert cost["total"]["runs"] == len(client.get("/api/runs").json())
    assert cost["nested_runs"] >= 8  # each search's compress, gate and two profiles ran inside it
    assert cost["total"]["energy_j"] > 0 and cost["total"]["co2e_g"] > 0
    assert cost["by_kind"]["optimize"]["runs"] == 2 and cost["by_kind"]["profile"]["failed"] == 1
    page = client.get("/cost").text
    assert "Cost of experimentation" in page and 'id="fig-cost"' in page


def test_api_and_static(client: TestClient, searched: dict) -> None:
    runs = client.get("/api/runs", params={"kind": "optimize"}).json()
    assert [r["id"] for r in runs] == [searched["second"], searched["first"]]
    assert "result" not in runs[0]
    one = client.get(f"/api/runs/{searched['first']}").json()
    assert one["result"]["chosen"] is not None and one["kind"] == "optimize"
    assert client.get("/api/runs/99999").status_code == 404
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 3_000_000
    assert client.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize("host, port, match", [("127.0.0.1", 0, "port"), ("127.0.0.1", 70000, "port"),
                                               ("", 8765, "host")])
def test_bind_is_validated(host: str, port: int, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        check_bind(host, port)

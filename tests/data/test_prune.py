"""Data pruning: EL2N and forgetting scores rank the examples that should rank first; prune_data keeps,
evaluates, records and writes; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalml.data import prune_data
from frugalml.data._prune import score_examples
from frugalml.errors import DataError, InvalidArgumentError


def _blobs(n: int = 300, flipped: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two well-separated Gaussian blobs with the labels of ``flipped`` rows swapped."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = (rng.normal(size=(n, 4)) + 4.0 * y[:, None]).astype(np.float32)
    bad = rng.choice(n, size=flipped, replace=False)
    y[bad] = 1 - y[bad]
    return x, y.astype(np.int64), bad


@pytest.mark.parametrize("method", ["el2n", "forgetting"])
def test_mislabelled_examples_score_highest(method: str) -> None:
    x, y, bad = _blobs()
    rows = np.arange(len(y))
    scores = score_examples(x, y, rows, method=method, n_classes=2, epochs=3 if method == "el2n" else 8, models=2)
    top = set(np.argsort(-scores)[:len(bad)].tolist())
    assert len(top & set(bad.tolist())) >= 0.8 * len(bad)  # a flipped label is hard early and often forgotten
    assert scores.shape == (len(y),)


def test_forgetting_ranks_never_learned_first_and_random_is_uniform() -> None:
    x, y, _ = _blobs(flipped=0)
    y[:3] = 2  # a third class of 3 rows inside class 0's blob: never learned in 5 epochs
    scores = score_examples(x, y, np.arange(len(y)), method="forgetting", n_classes=3, epochs=5)
    assert set(np.argsort(-scores)[:3].tolist()) == {0, 1, 2} and scores[:3].min() >= 5  # above any count
    r = score_examples(x, y, np.arange(len(y)), method="random", n_classes=3, seed=1)
    assert r.shape == (len(y),) and len(np.unique(r)) == len(y)
    with pytest.raises(InvalidArgumentError, match="method"):
        score_examples(x, y, np.arange(len(y)), method="el2", n_classes=3)


@pytest.fixture
def blobs_csv(tmp_path: Path) -> Path:
    x, y, _ = _blobs(n=200, flipped=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["label"] = np.where(y == 1, "b", "a")
    path = tmp_path / "blobs.csv"
    frame.to_csv(path, index=False)
    return path


def test_prune_keeps_evaluates_and_records(blobs_csv: Path, store_url: str) -> None:
    from frugalml.store import open_store

    r = prune_data(blobs_csv, label_column="label", keep=[0.25, 0.5], test_fraction=0.25, evaluate=True, seeds=2,
                   train_epochs=5, store=store_url)
    assert len(r.train_rows) == 150 and {k: len(v) for k, v in r.kept.items()} == {0.25: 38, 0.5: 75}
    assert set(r.kept[0.25]) <= set(r.kept[0.5]) <= set(r.train_rows)  # the top fraction grows, never leaves train
    ranked = np.array(r.train_rows)[np.argsort(-np.array(r.scores), kind="stable")]
    assert set(r.kept[0.5]) == set(ranked[:75].tolist())
    for name in ("el2n", "random"):
        assert set(r.accuracy[name]) == {"0.25", "0.5"} and len(r.accuracy[name]["0.5"]["values"]) == 2
    assert r.accuracy["all"]["1.0"]["mean"] > 0.95  # the blobs are separable
    run = open_store(store_url).get_run(r.run_id)
    assert run.kind == "prune-data" and run.status == "succeeded" and run.result["kept_rows"] == {"0.25": 38, "0.5": 75}
    assert ("accuracy@0.5", "el2n") in {(m.name, m.source) for m in run.measurements}
    from frugalml.report.html import render_run

    page = render_run(run, plotly="/static/plotly.min.js")
    assert "fig-prune" in page and "Accuracy by fraction kept" in page


def test_prune_on_text_and_by_split_column(tmp_path: Path) -> None:
    words = {"a": "cat purr sleep whisker meow", "b": "dog bark fetch tail woof"}
    rng = np.random.default_rng(0)
    rows = [(" ".join(rng.choice(words[c].split(), 4)), c, "test" if i % 5 == 0 else "train")
            for i, c in enumerate(["a", "b"] * 40)]
    path = tmp_path / "t.jsonl"
    pd.DataFrame(rows, columns=["text", "label", "split"]).to_json(path, orient="records", lines=True)
    r = prune_data(path, label_column="label", split_column="split", keep=0.5, evaluate=True, seeds=1, train_epochs=5,
                   record=False)
    assert len(r.train_rows) == 64 and len(r.kept[0.5]) == 32 and r.run_id is None
    assert r.accuracy["all"]["1.0"]["mean"] == 1.0  # the two vocabularies do not overlap


def test_prune_bad_input(blobs_csv: Path) -> None:
    for keep in (0.0, 1.0, [0.5, 2.0]):
        with pytest.raises(InvalidArgumentError, match="keep"):
            prune_data(blobs_csv, label_column="label", keep=keep, record=False)
    with pytest.raises(InvalidArgumentError, match="keeps no row"):
        prune_data(blobs_csv, label_column="label", keep=0.001, record=False)
    with pytest.raises(InvalidArgumentError, match="method"):
        prune_data(blobs_csv, label_column="label", method="grand", record=False)
    with pytest.raises(DataError, match="label_column"):
        prune_data(blobs_csv, label_column="y", record=False)


def test_cli_prune_data(cli, blobs_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "kept.parquet"
    code, stdout, _ = cli(["data", "prune-data", str(blobs_csv), "--label-column", "label", "--keep", "0.3",
                           "--keep", "0.6", "--out", str(out), "--json"])
    doc = json.loads(stdout)
    assert code == 0 and doc["kept_rows"] == {"0.3": 45, "0.6": 90} and doc["out"]["rows"] == 90
    kept = pd.read_parquet(out)
    assert len(kept) == 90 and kept.columns[0] == "row" and "label" in kept.columns
    code, stdout, _ = cli(["data", "prune-data", str(blobs_csv), "--label-column", "label", "--evaluate", "--seeds", "1",
                           "--method", "random"])
    assert code == 0 and "random accuracy" in stdout and "points" in stdout
    code, _, err = cli(["data", "prune-data", str(blobs_csv), "--label-column", "label", "--keep", "1.5"])
    assert code == 2 and "keep" in err and "Traceback" not in err

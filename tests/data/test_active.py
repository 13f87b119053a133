"""Active learning: each strategy's scores and picks, `select` on a partly labelled file, the simulation,
and the CLI's two commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalml.data import select, simulate_al
from frugalml.data._active import score_rows, select_rows
from frugalml.errors import DataError, InvalidArgumentError

PROBS = np.array([[0.98, 0.01, 0.01], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0], [0.34, 0.33, 0.33]])


def test_probability_strategies_rank_the_doubtful_first() -> None:
    pool = np.arange(4) + 100
    assert select_rows("uncertainty", 1, pool=pool, probs=PROBS)[0][0] == 103  # max p 0.34
    assert select_rows("margin", 1, pool=pool, probs=PROBS)[0][0] == 102  # top two tie
    assert select_rows("entropy", 1, pool=pool, probs=PROBS)[0][0] == 103  # nearly uniform
    rows, scores = select_rows("uncertainty", 4, pool=pool, probs=PROBS)
    assert rows[-1] == 100 and list(scores) == sorted(scores, reverse=True)  # the confident row last
    assert score_rows("margin", PROBS)[2] == pytest.approx(1.0)  # a tie is the most informative margin


def test_bald_is_disagreement_between_samples() -> None:
    agree = np.stack([PROBS, PROBS])
    assert np.allclose(score_rows("bald", samples=agree), 0.0)
    flip = np.stack([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    scores = score_rows("bald", samples=flip)
    assert scores[0] == pytest.approx(np.log(2)) and scores[1] == pytest.approx(0.0)
    with pytest.raises(InvalidArgumentError, match="bald needs"):
        score_rows("bald", PROBS)


def test_coreset_covers_the_space() -> None:
    features = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    picks, gaps = select_rows("coreset", 3, pool=np.arange(1, 5), features=features, labelled=np.array([0]))
    assert set(picks.tolist()) == {2, 3, 4}  # the far corners before the near neighbour
    assert gaps[0] == pytest.approx(200.0)  # (10, 10) is 10^2 + 10^2 from the labelled origin
    rows, scores = select_rows("random", 4, pool=np.arange(4), seed=1)
    assert len(set(rows.tolist())) == 4 and np.isnan(scores).all()
    with pytest.raises(InvalidArgumentError, match="strategy"):
        select_rows("smart", 1, pool=np.arange(4), probs=PROBS)


@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo:digits with labels kept on the first 150 rows only (the rest: the pool)."""
    from frugalml.datasets import load_dataset

    frame = load_dataset("zoo:digits").frame.copy()
    frame["label"] = frame["label"].astype("Int64")
    frame.loc[frame.index[150:], "label"] = pd.NA
    path = tmp_path_factory.mktemp("al") / "partial.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("strategy", ["uncertainty", "margin", "entropy", "bald", "coreset", "random"])
def test_select_chooses_unlabelled_rows(partial: Path, strategy: str) -> None:
    s = select(partial, label_column="label", strategy=strategy, budget=12, seed=3)
    assert len(s.rows) == len(set(s.rows)) == 12 and min(s.rows) >= 150  # only unlabelled rows
    assert s.n_labelled == 150 and s.n_unlabelled == 1797 - 150
    if strategy in ("coreset", "random"):
        assert s.predicted == [None] * 12
    else:
        assert list(s.scores) == sorted(s.scores, reverse=True)
        assert all(p in {str(d) for d in range(10)} for p in s.predicted)  # integer labels, not "4.0"


def test_select_uses_the_callers_probabilities(partial: Path, tmp_path: Path) -> None:
    n = 1797
    probs = np.full((n, 10), 0.05)
    probs[:, 0] = 0.55  # confident everywhere...
    probs[700] = [0.3, 0.3] + [0.05] * 8  # ...except row 700 (a tie) and row 20 (labelled: never chosen)
    probs[20] = probs[700]
    np.save(tmp_path / "p.npy", probs)
    s = select(partial, label_column="label", strategy="margin", budget=1, probs=tmp_path / "p.npy")
    assert s.rows == [700] and s.model.startswith("given")
    pool_only = pd.DataFrame(probs[150:])  # one row per unlabelled row also works, as a CSV
    pool_only.to_csv(tmp_path / "p.csv", index=False)
    assert select(partial, label_column="label", strategy="margin", budget=1, probs=tmp_path / "p.csv").rows == [700]
    other = probs.copy()
    other[900] = [0.0, 1.0] + [0.0] * 8  # two passes that disagree only on row 900
    probs[900] = [1.0] + [0.0] * 9
    b = select(partial, label_column="label", strategy="bald", budget=1, probs=[probs, other])
    assert b.rows == [900]
    with pytest.raises(InvalidArgumentError, match="not probabilities"):
        select(partial, label_column="label", budget=1, probs=np.log(probs + 1e-9))
    with pytest.raises(InvalidArgumentError, match="1797 rows"):
        select(partial, label_column="label", budget=1, probs=probs[:10])
    with pytest.raises(InvalidArgumentError, match="bald needs"):
        select(partial, label_column="label", strategy="bald", budget=1, probs=probs)


def test_select_bad_input(partial: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(full, index=False)
    with pytest.raises(DataError, match="nothing to choose from"):
        select(full, label_column="y", budget=1)
    one = tmp_path / "one.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, 0, None]}).to_csv(one, index=False)
    with pytest.raises(DataError, match="at least 2"):
        select(one, label_column="y", budget=1)
    assert select(one, label_column="y", strategy="coreset", budget=5).rows == [2]  # no model needed
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"a": 1, "y": 1}\n{"a": 2, "y": "cat"}\n{"a": 3, "y": null}\n')
    with pytest.raises(DataError, match="mixes numbers and text"):
        select(mixed, label_column="y", budget=1)
    with pytest.raises(DataError, match="Did you mean 'label'"):
        select(partial, label_column="lable", budget=1)


def test_select_on_text(tmp_path: Path) -> None:
    rows = [("the cat sat on the mat", "cat"), ("a dog barked at the cat", "dog"), ("cats purr and sleep", "cat"),
            ("dogs fetch sticks", "dog"), ("a sleepy cat", None), ("the dog and the cat", None), ("dogs run", None)]
    path = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    for strategy in ("margin", "coreset"):
        s = select(path, label_column="label", strategy=strategy, budget=2)
        assert set(s.rows) <= {4, 5, 6} and len(s.rows) == 2


def test_simulation_reaches_the_target_and_is_recorded(store_url: str) -> None:
    from frugalml.store import open_store

    r = simulate_al("zoo:digits", label_column="label", split_column="split", strategies=("margin",), seeds=(0,),
                    batch=20, max_labels=600, store=store_url)
    assert 0.9 < r.full_accuracy <= 1.0 and r.target == pytest.approx(0.95 * r.full_accuracy)
    assert set(r.curves) == {"margin", "random"}  # random is always the baseline
    for strategy in ("margin", "random"):
        (curve,) = r.curves[strategy]
        assert curve[0][0] == 20 and all(b[0] - a[0] == 20 for a, b in zip(curve, curve[1:]))
        assert r.labels_needed[strategy][0] == curve[-1][0] and curve[-1][1] >= r.target
        assert all(acc < r.target for _, acc in curve[:-1])  # stopped at the first count reaching it
    assert set(r.to_dict()["savings_vs_random"]) == {"margin"}
    run = open_store(store_url).get_run(r.run_id)
    assert run.kind == "simulate-al" and run.status == "succeeded"
    assert run.result["labels_needed"]["margin"] == r.labels_needed["margin"]
    assert {(m.name, m.source) for m in run.measurements} >= {("labels_needed", "margin"), ("labels_needed", "random")}
    from frugalml.report.html import render_run

    page = render_run(run, plotly="/static/plotly.min.js")
    assert "fig-al-curves" in page and "Labels needed to reach" in page


def test_simulation_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match="strategy"):
        simulate_al("zoo:digits", label_column="label", strategies=("smart",), record=False)
    with pytest.raises(InvalidArgumentError, match="initial"):
        simulate_al("zoo:digits", label_column="label", initial=5000, record=False)
    with pytest.raises(InvalidArgumentError, match="target_fraction"):
        simulate_al("zoo:digits", label_column="label", target_fraction=1.5, record=False)
    with pytest.raises(DataError, match="split_column"):
        simulate_al("zoo:digits", label_column="label", split_column="label", record=False)


def test_cli_select_and_simulate(cli, partial: Path, tmp_path: Path) -> None:
    import json

    out = tmp_path / "to-label.csv"
    code, stdout, _ = cli(["data", "select", str(partial), "--label-column", "label", "--budget", "5", "--out", str(out)])
    assert code == 0 and "5 of 1,647 unlabelled rows by margin" in stdout
    written = pd.read_csv(out)
    assert len(written) == 5 and list(written.columns[:1]) == ["row"] and {"score", "predicted"} <= set(written.columns)
    code, _, err = cli(["data", "select", str(partial), "--label-column", "label", "--out", str(out)])
    assert code == 2 and "--overwrite" in err
    code, stdout, _ = cli(["data", "select", str(partial), "--label-column", "label", "--strategy", "random",
                           "--budget", "3", "--json"])
    assert code == 0 and len(json.loads(stdout)["selected"]) == 3
    code, _, err = cli(["data", "select", str(partial), "--label-column", "label", "--strategy", "smart"])
    assert code == 2 and "strategy='smart'" in err and "Traceback" not in err
    code, stdout, _ = cli(["data", "simulate-al", "zoo:digits", "--label-column", "label", "--split-column", "split",
                           "--strategy", "margin", "--seeds", "1", "--batch", "40", "--json"])
    doc = json.loads(stdout)
    assert code == 0 and set(doc["labels_needed"]) == {"margin", "random"} and doc["run_id"] is not None
    code, _, err = cli(["data", "simulate-al", "zoo:digits", "--label-column", "label", "--seeds", "0"])
    assert code == 2 and "seeds" in err

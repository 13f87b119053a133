"""Active-learning building blocks: each strategy's scores and picks, and a small simulation."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.data._active import score_rows, select_rows, simulate_al
from frugalml.errors import InvalidArgumentError

PROBS = np.array([[0.98, 0.01, 0.01], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0], [0.34, 0.33, 0.33]])


def test_probability_strategies_rank_the_doubtful_first() -> None:
    pool = np.arange(4) + 100
    assert select_rows("uncertainty", 1, pool=pool, probs=PROBS)[0] == 103  # max p 0.34
    assert select_rows("margin", 1, pool=pool, probs=PROBS)[0] == 102  # top two tie
    assert select_rows("entropy", 1, pool=pool, probs=PROBS)[0] == 103  # nearly uniform
    assert select_rows("uncertainty", 4, pool=pool, probs=PROBS)[-1] == 100  # the confident row last


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
    picks = select_rows("coreset", 3, pool=np.arange(1, 5), features=features, labelled=np.array([0]))
    assert set(picks.tolist()) == {2, 3, 4}  # the far corners before the near neighbour
    assert len(set(select_rows("random", 4, pool=np.arange(4), seed=1).tolist())) == 4
    with pytest.raises(InvalidArgumentError, match="strategy"):
        select_rows("smart", 1, pool=np.arange(4), probs=PROBS)


def test_simulation_reaches_the_target_and_records_curves() -> None:
    from frugalml.datasets import load_dataset

    d = load_dataset("zoo:digits")
    f = d.frame
    x = f[list(d.feature_columns)].to_numpy(np.float32)
    y = f[d.label_column].to_numpy()
    train = (f["split"] == "train").to_numpy()
    r = simulate_al(x[train], y[train], x[~train], y[~train], strategies=("margin", "random"), seeds=(0,),
                    batch=20, max_labels=600)
    assert 0.9 < r.full_accuracy <= 1.0 and r.target == pytest.approx(0.95 * r.full_accuracy)
    for strategy in ("margin", "random"):
        (curve,) = r.curves[strategy]
        assert curve[0][0] == 20 and all(b[0] - a[0] == 20 for a, b in zip(curve, curve[1:]))
        assert r.labels_needed[strategy][0] == curve[-1][0] and curve[-1][1] >= r.target
    assert set(r.to_dict()["savings_vs_random"]) == {"margin"}

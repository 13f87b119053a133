"""evaluate(): task metrics, bootstrap CIs, per-group metrics through fairlearn, drops vs a reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

import frugalml
from frugalml.compress import PruneMagnitude, compress
from frugalml.errors import DataError, InvalidArgumentError
from frugalml.evaluate import Evaluator, evaluate
from frugalml.evaluate._metrics import _ece, to_probabilities


def test_classification_matches_sklearn_and_reference_has_no_drop() -> None:
    handle = frugalml.load_model("zoo:digits-cnn")
    ev = evaluate(handle, "zoo:digits", reference=handle, limit=None)
    test = frugalml.load_dataset("zoo:digits", split="test")
    pred = handle.predict(test.features().reshape(-1, 1, 8, 8)).argmax(1)
    assert ev.n_items == len(test) == 360
    assert ev.overall["accuracy"].value == pytest.approx(np.mean(pred == test.labels()))
    assert ev.overall["macro_f1"].value == pytest.approx(f1_score(test.labels(), pred, average="macro"))
    acc = ev.overall["accuracy"]
    assert acc.low <= acc.value <= acc.high and acc.high - acc.low < 0.1
    assert ev.drop["accuracy"].value == 0 and ev.overall["agreement"].value == 1.0
    assert ev.by_group == {}  # zoo:digits has no group column


def test_subgroup_drop_shows_what_the_average_hides() -> None:
    base = frugalml.load_model("zoo:digits-fair-cnn")
    pruned = compress(base, [PruneMagnitude(amount=0.8)], data="zoo:digits-fair")
    ev = evaluate(pruned, "zoo:digits-fair", reference=base)
    assert set(ev.by_group) == {"rotated", "upright"} and ev.group_sizes["rotated"] == 40
    group, drop = ev.worst_group_drop
    assert group == "rotated" and drop > ev.drop["accuracy"].value  # the minority loses more than the average
    assert ev.difference() == pytest.approx(abs(ev.by_group["upright"]["accuracy"] - ev.by_group["rotated"]["accuracy"]))
    assert ev.worst_group()[0] == "rotated"
    doc = ev.to_dict()
    assert doc["worst_group_drop"][0] == "rotated" and doc["relative_drop"] == pytest.approx(
        ev.drop["accuracy"].value / ev.reference["accuracy"])


def test_embedding_fidelity_needs_a_reference() -> None:
    handle = frugalml.load_model("zoo:minilm")
    ev = Evaluator("zoo:stdlib-docs", handle, limit=40).evaluate(handle)
    assert ev.primary == "mean_cosine" and ev.overall["mean_cosine"].value == pytest.approx(1.0, abs=1e-5)
    assert ev.drop["mean_cosine"].value == pytest.approx(0.0, abs=1e-5)
    assert ev.by_group and all(g["top10_agreement"] == pytest.approx(1.0) for g in ev.by_group.values())
    with pytest.raises(InvalidArgumentError, match="reference"):
        Evaluator("zoo:stdlib-docs", None, limit=40).evaluate(handle)


def test_callable_metric_and_regression() -> None:
    handle = frugalml.load_model("zoo:digits-mlp")
    ev = evaluate(handle, "zoo:digits", metric=lambda y, p: float(np.mean(p.argmax(1) == y)), metric_name="acc",
                  n_boot=50)
    assert ev.primary == "acc" and ev.overall["acc"].value > 0.9
    reg = evaluate(handle, "zoo:digits", task="regression", n_boot=20)
    assert reg.primary == "mae" and reg.higher_is_better["mae"] is False and reg.overall["rmse"].value >= reg.quality


def test_bad_arguments() -> None:
    handle = frugalml.load_model("zoo:digits-mlp")
    with pytest.raises(InvalidArgumentError, match="task"):
        evaluate(handle, "zoo:digits", task="ranking")
    with pytest.raises(InvalidArgumentError, match="metric"):
        evaluate(handle, "zoo:digits", metric="accuracy")
    with pytest.raises(DataError, match="group_column"):
        evaluate(handle, "zoo:digits", group_column="nope")
    with pytest.raises(InvalidArgumentError, match="n_boot"):
        evaluate(handle, "zoo:digits", n_boot=0)
    with pytest.raises(InvalidArgumentError, match="device"):
        evaluate(handle, "zoo:digits", device="gpu")


def test_probabilities_and_calibration_error() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 3.0]])
    probs = to_probabilities(logits)
    assert np.allclose(probs.sum(1), 1) and np.allclose(to_probabilities(probs), probs)
    # Always 90% confident and right 90% of the time: perfectly calibrated.
    assert _ece(np.full(10, 0.9), np.array([1] * 9 + [0], dtype=float)) == pytest.approx(0.0)
    assert _ece(np.full(10, 0.9), np.zeros(10)) == pytest.approx(0.9)


def test_text_labels_are_scored_through_the_models_class_names(text_classifier, sqlite_url) -> None:
    handle = frugalml.load_model(text_classifier["dir"])
    csv = str(text_classifier["csv"])
    ev = evaluate(handle, csv, reference=handle, text_column="sentence", label_column="sentiment",
                  group_column="region", n_boot=20, store=sqlite_url)
    data = frugalml.load_dataset(csv, text_column="sentence")
    truth = np.where(data.frame["sentiment"] == "pos", 1, 0)  # id2label: 0 neg, 1 pos
    pred = handle.predict(data.texts(), seq_len=64).argmax(1)
    assert ev.n_items == 60 and ev.overall["accuracy"].value == pytest.approx(np.mean(pred == truth))
    assert set(ev.by_group) == {"north", "south"} and ev.group_sizes == {"north": 48, "south": 12}
    doc = ev.to_dict()
    assert doc["model"] == str(text_classifier["dir"]) and doc["data"] == csv and doc["run_id"] == ev.run_id
    run = frugalml.open_store(sqlite_url).get_run(ev.run_id)
    assert run.kind == "evaluate" and run.status == "succeeded"
    assert {m.name for m in run.measurements} >= {"accuracy", "drop:accuracy", "worst_group_drop"}
    with pytest.raises(InvalidArgumentError, match="seed"):
        evaluate(handle, csv, text_column="sentence", label_column="sentiment", seed=-1)

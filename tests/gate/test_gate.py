"""Budgets, verdicts and their CI outputs, contexts, and the gate catching a subgroup failure."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from frugalml.compress import PruneMagnitude, compress_to_dir
from frugalml.config import Budgets, DropBudget, config_from_dict
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate import Estimate
from frugalml.gate import CONTEXTS, Measured, Regression, Verdict, check_budgets, gate, get_context


def _measured(p95: float = 10.0, size: int = 30_000_000) -> Measured:
    return Measured(model="m", device="cpu", latency_p95_ms={1: Estimate(p95, p95 * 0.9, p95 * 1.1)},
                    latency_p50_ms={1: p95 / 2}, throughput_items_per_s={1: 100.0}, size_bytes=size, params=1,
                    peak_memory_bytes=50_000_000, energy_j_per_item={1: 0.002}, energy_source="estimate")


def test_budget_rows_margins_and_violations() -> None:
    budgets = Budgets.model_validate({"latency_p95_ms": 20, "size_mb": 25, "throughput_items_per_s": {"batch": 1,
                                      "min": 50}, "energy_mj_per_item": 1, "peak_memory_mb": 100})
    rows = {r.budget: r for r in check_budgets(_measured(), budgets)}
    lat = rows["latency_p95_ms@1"]
    assert lat.passed and lat.margin == pytest.approx(10) and lat.violation == pytest.approx(-0.5)
    assert (lat.low, lat.high) == (pytest.approx(9.0), pytest.approx(11.0)) and not lat.uncertain
    size = rows["size_mb"]
    assert not size.passed and size.margin == pytest.approx(-5) and size.violation == pytest.approx(0.2)
    assert rows["throughput_items_per_s@1"].passed and rows["throughput_items_per_s@1"].margin == pytest.approx(50)
    assert not rows["energy_mj_per_item@1"].passed and rows["energy_mj_per_item@1"].note == "estimate"
    assert rows["peak_memory_mb"].passed
    straddle = check_budgets(_measured(p95=19.5), Budgets.model_validate({"latency_p95_ms": 20}))[0]
    assert straddle.passed and straddle.uncertain


def test_quality_budgets_without_an_evaluation_fail_and_say_why() -> None:
    rows = check_budgets(_measured(), Budgets(quality_drop=DropBudget(max=0.01), worst_group_drop=0.02))
    assert all(not r.passed and r.measured is None and r.violation == 1.0 for r in rows)


def test_worst_group_note_names_a_group_only_where_one_dropped() -> None:
    # every group held or improved: "worst" is then whichever group came first, and naming it read as
    # a finding ("group difflib", drop 0)
    from dataclasses import replace

    from frugalml.evaluate import Evaluation, dropped_group

    ev = Evaluation(task="classification", primary="accuracy", higher_is_better={"accuracy": True}, n_items=100,
                    overall={"accuracy": Estimate(0.9, 0.85, 0.95)}, reference={"accuracy": 0.9},
                    drop={"accuracy": Estimate(0.0, -0.02, 0.02)}, group_column="g",
                    by_group={"a": {"accuracy": 0.9}, "b": {"accuracy": 0.95}}, group_sizes={"a": 50, "b": 50},
                    group_drop={"a": 0.0, "b": -0.05})
    budgets = Budgets(worst_group_drop=0.02)
    row = check_budgets(replace(_measured(), evaluation=ev), budgets)[0]
    assert row.passed and row.measured == 0.0 and row.note == "no group dropped"
    assert dropped_group(ev.worst_group_drop) is None and "no group dropped" in ev_headline(ev)
    ev.group_drop["b"] = 0.03
    row = check_budgets(replace(_measured(), evaluation=ev), budgets)[0]
    assert not row.passed and row.note == "group b" and dropped_group(ev.worst_group_drop) == "b"


def ev_headline(ev) -> str:  # noqa: ANN001 - the one-line summary the store and `runs list` show
    from frugalml.evaluate import evaluation_headline

    return evaluation_headline(ev.to_dict())


def test_verdict_outputs() -> None:
    rows = check_budgets(_measured(), Budgets.model_validate({"latency_p95_ms": 20, "size_mb": 25}))
    verdict = Verdict(model="m", context="edge-cpu", checks=rows, baseline="run 3", regressions=[
        Regression("latency_p95_ms@1", Estimate(10, 9.5, 10.5), Estimate(8, 7.8, 8.2), 0.05, regressed=True)])
    assert not verdict.passed and verdict.failed == ["size_mb", "latency_p95_ms@1"]
    suite = ElementTree.fromstring(verdict.to_junit()).find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    failures = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failures == ["size_mb", "regression latency_p95_ms@1"]
    md = verdict.to_markdown()
    assert "❌ fail" in md and "| size_mb | 30 | ≤ 25 MB | -5 | ❌ fail |" in md and "1.25x" in md
    assert json.loads(json.dumps(verdict.to_dict()))["passed"] is False


def test_contexts() -> None:
    assert set(CONTEXTS) == {"cloud-gpu", "edge-cpu", "mobile", "tinyml"}
    assert get_context("tinyml").int8_only and get_context("tinyml").budgets.sram_kb == 256
    assert get_context("edge-cpu").cost == "latency_p95_ms"
    with pytest.raises(InvalidArgumentError, match="Did you mean 'edge-cpu'"):
        get_context("edge-cp")


@pytest.fixture(scope="module")
def pruned_fair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gate") / "pruned"
    compress_to_dir("zoo:digits-fair-cnn", [PruneMagnitude(amount=0.8)], out, data="zoo:digits-fair")
    return out


def test_gate_catches_a_subgroup_the_average_hides(pruned_fair: Path, sqlite_url: str) -> None:
    cfg = config_from_dict({"model": "zoo:digits-fair-cnn", "data": "zoo:digits-fair",
                            "budgets": {"quality_drop": 0.03, "worst_group_drop": 0.05},
                            "search": {"latency_max_s": 0.5}})
    verdict = gate(pruned_fair, cfg, store=sqlite_url)
    rows = {r.budget.split(" ")[0]: r for r in verdict.checks}
    assert rows["quality_drop"].passed  # the average accuracy budget holds ...
    assert not rows["worst_group_drop"].passed and rows["worst_group_drop"].note == "group rotated"  # ... the minority's does not
    assert not verdict.passed and verdict.run_id is not None
    assert set(verdict.measured.latency_p95_ms) == {1, 32}  # edge-cpu's batch sizes


def test_gate_regression_against_a_stored_run(pruned_fair: Path, sqlite_url: str) -> None:
    import frugalml

    cfg = config_from_dict({"model": "zoo:digits-fair-cnn", "data": "zoo:digits-fair",
                            "budgets": {"quality_drop": 0.5, "worst_group_drop": 0.5},
                            "search": {"latency_max_s": 0.5}, "store": sqlite_url})
    run = frugalml.profile("zoo:digits-fair-cnn", batch_sizes=[1, 32], max_time_s=0.5, store=sqlite_url)
    verdict = gate(pruned_fair, cfg, baseline=run.run_id, tolerance=0.5)
    assert [r.metric for r in verdict.regressions] == ["latency_p95_ms@1", "latency_p95_ms@32"]
    assert verdict.baseline.startswith(f"run {run.run_id}")
    with pytest.raises(InvalidArgumentError, match="baseline"):
        gate(pruned_fair, cfg, baseline="/no/such/model")
    assert all(r.method == "ci" and r.rounds is None for r in verdict.regressions)


def test_gate_races_a_baseline_model_head_to_head(pruned_fair: Path, sqlite_url: str) -> None:
    cfg = config_from_dict({"model": "zoo:digits-fair-cnn", "data": "zoo:digits-fair",
                            "budgets": {"quality_drop": 0.5, "worst_group_drop": 0.5},
                            "search": {"latency_max_s": 0.3}, "store": sqlite_url})
    verdict = gate(pruned_fair, cfg, baseline=pruned_fair, tolerance=0.5)  # the model against itself
    assert verdict.baseline == str(pruned_fair)
    assert [r.metric for r in verdict.regressions] == ["latency_p95_ms@1", "latency_p95_ms@32"]
    for r in verdict.regressions:
        assert r.method == "head-to-head" and r.rounds == 6 and 0 <= r.rounds_slower <= 6
        assert r.regressed == (r.rounds_slower == 6)  # slower by more than the tolerance in every round
        assert r.measured.low <= r.measured.value <= r.measured.high  # the median within the rounds' range
    doc = verdict.to_dict()["regressions"][0]
    assert doc["method"] == "head-to-head" and doc["rounds"] == 6
    # A baseline of another input kind is refused before anything is measured or recorded.
    from frugalml.compress import ExportOnnx, compress_to_dir
    from frugalml.store import open_store

    text_dir = pruned_fair.parent / "minilm-onnx"
    compress_to_dir("zoo:minilm", [ExportOnnx()], text_dir)
    before = len(open_store(sqlite_url).list_runs(kind="gate"))
    with pytest.raises(InvalidArgumentError, match="baseline=.*takes text inputs"):
        gate(pruned_fair, cfg, baseline=text_dir)
    assert len(open_store(sqlite_url).list_runs(kind="gate")) == before
    md = verdict.to_markdown()
    assert "measured (range over the rounds)" in md and "slower by more than 50% in every round" in md


def test_a_users_own_classifier_and_csv_through_compress_gate_and_serve(text_classifier, sqlite_url: str) -> None:
    """A fine-tuned text classifier with named classes and a CSV whose columns are 'sentence' and
    'sentiment' (text labels): the column roles of frugal.yaml reach every step (profiling, calibration,
    distillation with hard labels), and the class names travel into the artifact and the server."""
    import json

    from frugalml import load_dataset, load_model
    from frugalml.compress import Distill, QuantizeDynamic
    from frugalml.serve._model import ServedModel

    csv = str(text_classifier["csv"])
    out = text_classifier["dir"].parent / "int8"
    data = load_dataset(csv, text_column="sentence", label_column="sentiment")
    result = compress_to_dir(text_classifier["dir"], [Distill(epochs=1, alpha=0.5), QuantizeDynamic()], out,
                             data=data, store=sqlite_url)
    assert "accuracy" in result.metrics  # the text labels were mapped, so accuracy could be measured
    assert json.loads((out / "manifest.json").read_text())["class_names"] == ["neg", "pos"]
    assert load_model(out).class_names == ["neg", "pos"]
    cfg = config_from_dict({"model": str(text_classifier["dir"]), "context": "edge-cpu",
                            "data": {"eval": csv, "text_column": "sentence", "label_column": "sentiment",
                                     "group_column": "region"},
                            "budgets": {"quality_drop": 0.5, "worst_group_drop": 0.5},
                            "search": {"latency_max_s": 0.2}})
    verdict = gate(out, cfg, store=sqlite_url)
    assert verdict.measured.evaluation.group_sizes == {"north": 48, "south": 12}
    assert set(verdict.measured.latency_p95_ms) == {1, 32}
    served = ServedModel(str(out))
    answer = served.answer(served.run(["a good day"])[0])
    assert answer["label"] in ("neg", "pos") and answer["label"] == ["neg", "pos"][answer["index"]]

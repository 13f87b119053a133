"""optimize(): the search end to end on a small model, resumability, interrupts, infeasible budgets, the space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import frugalml
from frugalml.config import config_from_dict
from frugalml.errors import InvalidArgumentError
from frugalml.gate import get_context
from frugalml.search import optimize, screening_params, study_name_for, suggest


def _config(store: str, **search) -> frugalml.FrugalConfig:
    return config_from_dict({
        "model": "zoo:digits-cnn", "data": "zoo:digits", "store": store,
        "budgets": {"quality_drop": 0.02},
        "search": {"trials": 4, "latency_max_s": 0.3, "techniques": ["quantize", "runtime", "lowrank"], **search},
    })


def test_search_saves_the_chosen_model_and_resumes(tmp_path: Path, sqlite_url: str) -> None:
    cfg = _config(sqlite_url)
    events: list[dict] = []
    result = optimize(cfg, out_dir=tmp_path / "out", on_progress=events.append)
    assert result.ok and len(result.candidates) == 4 and result.resumed_trials == 0
    numbers = {c["number"] for c in result.candidates}
    assert 0 in numbers and result.candidates[0]["recipe_text"] == "(empty)"  # the unchanged baseline is a candidate
    assert set(result.pareto) <= numbers and result.chosen["feasible"]
    feasible = [c for c in result.candidates if c["feasible"]]
    # edge-cpu: lowest p95 under the budgets; the best three by their trials are timed again head to
    # head (a run-off): the fastest there and those it did not beat in every round are tied, and the
    # most accurate of them wins.
    ranked = sorted(feasible, key=lambda c: (c["cost"], -c["quality"], c["number"]))
    runoff = result.runoff
    assert len(feasible) >= 2 and runoff is not None and runoff["trial_pick"] == ranked[0]["number"]
    assert [f["number"] for f in runoff["finalists"]] == [c["number"] for c in ranked[:3]]
    assert all(len(f["by_round"]) == runoff["rounds"] == 6 for f in runoff["finalists"])
    fastest = min(runoff["finalists"], key=lambda f: (f["cost"], -f["quality"], f["number"]))
    tied = [f for f in runoff["finalists"] if f["number"] in runoff["tied"]]
    assert fastest in tied and result.chosen["number"] == runoff["pick"]
    assert runoff["pick"] == max(tied, key=lambda f: (f["quality"], -f["cost"], -f["number"]))["number"]
    for f in runoff["finalists"]:  # a finalist left out of the tie was slower than the fastest in every round
        assert f in tied or all(a < b for a, b in zip(fastest["by_round"], f["by_round"]))
    assert "timed again head to head" in result.why
    assert (runoff["tie_note"] is None) == (len(tied) == 1)  # a tie is explained, in `why` too
    assert runoff["tie_note"] is None or runoff["tie_note"] in result.why
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["chosen"]["number"] == result.chosen["number"] and summary["verdict"]["checks"]
    assert summary["runoff"]["pick"] == result.chosen["number"]
    assert "plotly" in (tmp_path / "out" / "report.html").read_text()
    model = frugalml.load_model(tmp_path / "out" / "model")  # a verified artifact
    assert model.metadata["compression"]["recipe"] == result.chosen["recipe"]
    assert events[-1]["done"] == 4 and any(e["best"] for e in events)
    store = frugalml.open_store(sqlite_url)
    run = store.get_run(store.list_runs(kind="optimize")[0].id)
    assert run.status == "succeeded" and run.result["chosen"]["number"] == result.chosen["number"]

    again = optimize(cfg, trials=5)  # the same study: four trials come back, one new one runs
    assert again.resumed_trials == 4 and len(again.candidates) == 5 and again.study == result.study


def test_interrupt_keeps_finished_trials(sqlite_url: str) -> None:
    cfg = _config(sqlite_url, trials=3)

    def stop_after_first(event: dict) -> None:
        if event["done"] == 1 and "done" in event["message"]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(cfg, on_progress=stop_after_first)
    failed = frugalml.open_store(sqlite_url).list_runs(kind="optimize")[0]
    assert failed.status == "failed" and "interrupted" in failed.error
    resumed = optimize(cfg)
    assert resumed.resumed_trials == 1 and len(resumed.candidates) == 3


def test_a_time_limit_stops_new_trials_and_the_study_resumes(sqlite_url: str) -> None:
    cfg = _config(sqlite_url, trials=3, techniques=["quantize", "runtime"])
    # A limit already past when the first trial ends: that trial runs (the first of a run always
    # starts), no other starts, and the result says why it has fewer trials than asked.
    short = optimize(cfg, timeout_s=1e-6)
    assert len(short.candidates) == 1 and short.ok
    assert short.stopped_early.startswith("1 of 3 trials: no new trial started after the 1e-06 s time limit")
    assert short.config["search"]["timeout_s"] == 1e-6
    again = optimize(cfg)  # no limit: the same study continues where it stopped
    assert again.study == short.study and again.resumed_trials == 1 and len(again.candidates) == 3
    assert again.stopped_early is None
    roomy = optimize(cfg, trials=4, timeout_s=3600)  # a limit not reached changes nothing
    assert len(roomy.candidates) == 4 and roomy.stopped_early is None


def test_no_feasible_candidate_names_the_closest(sqlite_url: str) -> None:
    cfg = config_from_dict({"model": "zoo:digits-cnn", "data": "zoo:digits", "store": sqlite_url,
                            "budgets": {"latency_p95_ms": 0.000001, "quality_drop": 0.02},
                            "search": {"trials": 2, "latency_max_s": 0.3, "techniques": ["runtime"]}})
    result = optimize(cfg)
    assert not result.ok and result.closest is not None and result.missed == ["latency_p95_ms@1"]
    assert result.why == "no candidate meets every budget" and result.runoff is None


def test_broken_technique_is_not_combined(sqlite_url: str) -> None:
    # A quality floor above what even the original reaches: low-rank alone breaks it, so the search
    # never combines it further.
    cfg = config_from_dict({"model": "zoo:digits-cnn", "data": "zoo:digits", "store": sqlite_url,
                            "budgets": {"min_quality": 0.999},
                            "search": {"trials": 3, "latency_max_s": 0.3, "techniques": ["lowrank"]}})
    result = optimize(cfg)
    broken = {c["broken"] for c in result.candidates if c["broken"]}
    assert broken == {"lowrank@0.05"}
    # lowrank 0.9 discards more energy than the broken 0.95: never tried; the rest is the unchanged model.
    assert [c["recipe_text"] for c in result.candidates] == ["(empty)", "lowrank(energy=0.95)"]


def test_harsher_settings_of_a_broken_technique_are_ruled_out() -> None:
    from frugalml.search.space import implied_broken

    broken = {"structure=drop_layers@1", "lowrank@0.05"}
    assert implied_broken("structure=drop_layers@2", broken) == "structure=drop_layers@1"
    assert implied_broken("lowrank@0.10", broken) == "lowrank@0.05"
    assert implied_broken("structure=prune_ffn@0.25", broken) is None
    assert implied_broken("quantize=static@0", {"quantize=dynamic/onnx/keep=none@0"}) is None


def test_space_follows_the_context() -> None:
    import optuna

    handle = frugalml.load_model("zoo:digits-cnn")
    tiny = get_context("tinyml")
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(5):
        trial = study.ask()
        candidate = suggest(trial, handle, tiny, {"quantize", "prune", "lowrank"}, distill_items=16)
        assert candidate.recipe.describe().endswith("quantize_static")  # INT8 only
        study.tell(trial, [0.0, 0.0])
    screen = screening_params(handle, get_context("edge-cpu"), {"quantize", "runtime"})
    assert screen[0] == {"quantize": "none", "runtime": "torch"}
    assert {"quantize": "static", "runtime": "torch"} in screen


def test_study_name_is_stable_and_bad_overrides_fail(tmp_path: Path, sqlite_url: str) -> None:
    a, b = _config(sqlite_url), _config(sqlite_url, trials=9)
    assert study_name_for(a) == study_name_for(b)  # more trials continue the same study
    assert study_name_for(_config(sqlite_url, finalists=1)) == study_name_for(a)  # the run-off follows the trials
    assert study_name_for(_config(sqlite_url, timeout_s=60)) == study_name_for(a)  # a time limit continues it too
    assert study_name_for(a) != study_name_for(_config(sqlite_url, seed=1))
    import frugalml.search._optimize as module

    with pytest.MonkeyPatch.context() as mp:  # a CPU with native BF16 searches a larger space: its own study
        from frugalml.compress._int8 import Int8Bits

        mp.setattr(module, "native_bf16_cpu", lambda: False)
        mp.setattr(module, "int8_bits", lambda backend: Int8Bits(7, 8) if backend == "torch" else Int8Bits(8, 8))
        plain = study_name_for(a)  # as on Arm: the names of studies from before these rules
        mp.setattr(module, "native_bf16_cpu", lambda: True)
        bf16 = study_name_for(a)
        mp.setattr(module, "int8_bits", lambda backend: Int8Bits(8, 8))  # PyTorch INT8 scores differently there
        vnni = study_name_for(a)
        mp.setattr(module, "int8_bits", lambda backend: Int8Bits(8, 7))  # and so does 7-bit weights' INT8
        assert len({plain, bf16, vnni, study_name_for(a)}) == 4
    with pytest.raises(InvalidArgumentError, match="search.executor"):
        optimize(a, executor="spark")
    with pytest.raises(InvalidArgumentError, match="search.timeout_s"):
        optimize(a, timeout_s=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InvalidArgumentError, match="out_dir"):
        optimize(a, out_dir=tmp_path / "full")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        optimize(a, out_dir=tmp_path / "full" / "x")
    gpu = config_from_dict({"context": "cloud-gpu", "store": sqlite_url})
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="CUDA GPU"):
            optimize(gpu)


def test_ray_executor_runs_trials_as_tasks(sqlite_url: str) -> None:
    ray = pytest.importorskip("ray")
    cfg = _config(sqlite_url, trials=2, executor="ray", techniques=["runtime"])
    try:
        result = optimize(cfg)
    finally:
        ray.shutdown()
    assert result.ok and len(result.candidates) == 2 and all(c["measured"] for c in result.candidates)


def test_unreachable_ray_cluster_is_a_clear_error(sqlite_url: str) -> None:
    pytest.importorskip("ray")
    cfg = _config(sqlite_url, executor="ray")
    with pytest.raises(InvalidArgumentError, match="cannot reach a Ray cluster"):
        optimize(cfg, address="127.0.0.1:1")
    with pytest.raises(InvalidArgumentError, match="host:port"):
        optimize(cfg, address="nonsense")


def test_trials_of_a_killed_process_are_failed_on_resume(sqlite_url: str) -> None:
    import socket

    import optuna
    from optuna.trial import TrialState

    cfg = _config(sqlite_url, trials=1, techniques=["runtime"])
    study = optuna.create_study(study_name=study_name_for(cfg), storage=sqlite_url,
                                directions=["maximize", "minimize"])
    orphan = study.ask()  # left RUNNING by a process that no longer exists on this host
    orphan.set_user_attr("owner", f"{socket.gethostname()}:999999999")
    other = study.ask()  # a live trial on another machine sharing the study: left alone
    other.set_user_attr("owner", "elsewhere:1")
    result = optimize(cfg)
    states = {t.number: t.state for t in optuna.load_study(study_name=result.study, storage=sqlite_url).trials}
    assert states[orphan.number] == TrialState.FAIL and states[other.number] == TrialState.RUNNING
    assert len(result.candidates) == 1


@pytest.mark.cuda
def test_cloud_gpu_search_on_cuda(sqlite_url: str) -> None:
    cfg = config_from_dict({"model": "zoo:minilm", "context": "cloud-gpu", "store": sqlite_url,
                            "search": {"trials": 3, "latency_max_s": 1.0}})
    result = optimize(cfg)
    assert result.candidates and result.context == "cloud-gpu"
    assert result.objectives[1].startswith("throughput") and result.maximize == [True, True]


def _example():
    """examples/own_model_search.py, imported: its model class and training are the tests' too."""
    import importlib.util

    path = Path(__file__).parents[2] / "examples" / "own_model_search.py"
    spec = importlib.util.spec_from_file_location("own_model_search", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def _trained_net() -> torch.nn.Module:
    return _example().train(epochs=10)


def test_search_of_a_users_module_passed_as_an_object(tmp_path: Path, sqlite_url: str) -> None:
    net = _trained_net()
    cfg = config_from_dict({"task": "classification", "data": "zoo:digits", "store": sqlite_url,
                            "budgets": {"quality_drop": 0.03},
                            "search": {"trials": 4, "latency_max_s": 0.3, "techniques": ["quantize", "lowrank"]}})
    result = optimize(cfg, model=net, example_inputs=torch.randn(8, 64), out_dir=tmp_path / "out")
    label = result.config["model"]
    assert label.startswith("object:TinyClassifier@") and len(label.rsplit("@", 1)[1]) == 12
    assert result.reference["overall"][result.objectives[0]]["value"] > 0.8  # the object itself was evaluated
    # Every candidate runs as ONNX, the form its artifact can take.
    assert all("export_onnx" in c["recipe_text"] or "quantize_static" in c["recipe_text"] for c in result.candidates)
    assert result.ok and result.verdict is not None and result.verdict.passed
    saved = json.loads((tmp_path / "out" / "model" / "manifest.json").read_text())
    assert saved["format"] == "onnx" and saved["source"]["sha256"].startswith(label.rsplit("@", 1)[1])
    store = frugalml.open_store(sqlite_url)
    assert store.list_runs(kind="optimize")[0].name == label

    again = optimize(cfg, model=net, example_inputs=torch.randn(8, 64))  # the same weights: the same study
    assert again.study == result.study and again.resumed_trials == 4
    with torch.no_grad():
        net.out.weight[0, 0] += 1.0
    assert optimize(cfg, model=net, example_inputs=torch.randn(8, 64), trials=1).study != result.study


def test_a_model_object_is_checked(sqlite_url: str) -> None:
    net = _example().TinyClassifier()
    cfg = config_from_dict({"data": "zoo:digits", "store": sqlite_url, "search": {"trials": 1}})
    with pytest.raises(InvalidArgumentError, match="executor.*exists only in this process"):
        optimize(cfg, model=net, example_inputs=torch.randn(4, 64), executor="ray")
    with pytest.raises(InvalidArgumentError, match="cloud-gpu search runs PyTorch"):
        optimize(config_from_dict({**cfg.to_dict(), "context": "cloud-gpu"}), model=net,
                 example_inputs=torch.randn(4, 64))
    with pytest.raises(InvalidArgumentError, match="model='str'.*ModelHandle or a torch.nn.Module"):
        optimize(cfg, model="zoo:digits-mlp")
    with pytest.raises(InvalidArgumentError, match="example_inputs.*only for a torch.nn.Module"):
        optimize(cfg, model=frugalml.load_model("zoo:digits-mlp"), example_inputs=torch.randn(4, 64))
    with pytest.raises(InvalidArgumentError, match="example_inputs.*Pass model="):
        optimize(cfg, example_inputs=torch.randn(4, 64))
    with pytest.raises(InvalidArgumentError, match="example_inputs"):
        optimize(cfg, model=net)  # a module needs a batch of its inputs
    assert not frugalml.open_store(sqlite_url).list_runs(kind="optimize")  # nothing started


@pytest.mark.slow
def test_the_own_model_example_runs(tmp_path: Path, sqlite_url: str, monkeypatch) -> None:
    monkeypatch.setenv("FRUGAL_STORE", sqlite_url)
    assert _example().main(str(tmp_path / "out")) == 0
    assert json.loads((tmp_path / "out" / "model" / "manifest.json").read_text())["format"] == "onnx"


def test_a_searched_object_is_gated_against_itself(tmp_path: Path, sqlite_url: str) -> None:
    from frugalml.errors import ModelLoadError

    net = _trained_net()
    cfg = config_from_dict({"task": "classification", "data": "zoo:digits", "store": sqlite_url,
                            "budgets": {"quality_drop": 0.03},
                            "search": {"trials": 1, "latency_max_s": 0.3, "techniques": ["quantize"]}})
    result = optimize(cfg, model=net, example_inputs=torch.randn(8, 64), out_dir=tmp_path / "out")
    saved = config_from_dict(result.config)  # what summary.json holds: model object:TinyClassifier@...
    with pytest.raises(ModelLoadError, match="passed to optimize\\(\\) as an object.*reference=handle"):
        frugalml.gate(tmp_path / "out" / "model", saved)
    reference = frugalml.load_model(net, example_inputs=torch.randn(8, 64), task="classification")
    verdict = frugalml.gate(tmp_path / "out" / "model", saved, reference=reference)
    ev = verdict.measured.evaluation
    assert verdict.passed and ev.drop[ev.primary].value <= 0.03
    with pytest.raises(InvalidArgumentError, match="reference='TinyClassifier': must be a ModelHandle"):
        frugalml.gate(tmp_path / "out" / "model", saved, reference=net)


def test_a_handle_passed_in_is_not_modified(sqlite_url: str) -> None:
    handle = frugalml.load_model(_trained_net(), example_inputs=torch.randn(8, 64))
    assert handle.task is None
    cfg = config_from_dict({"task": "classification", "data": "zoo:digits", "store": sqlite_url,
                            "search": {"trials": 1, "latency_max_s": 0.2, "techniques": ["quantize"]}})
    result = optimize(cfg, model=handle)
    assert result.reference["task"] == "classification" and handle.task is None


def test_failed_trials_are_reported_with_their_error(sqlite_url: str, monkeypatch) -> None:
    import sys

    compress_module = sys.modules["frugalml.compress"]  # (frugalml.compress is also the function's name)
    real = compress_module.compress

    def compress_failing_static(model, recipe, **kwargs):
        if any(step.technique == "quantize_static" for step in recipe):
            raise RuntimeError("calibration exploded")
        return real(model, recipe, **kwargs)

    monkeypatch.setattr(compress_module, "compress", compress_failing_static)
    # The space as on a CPU without BF16 or VNNI (on one with them, a bf16 cast and the compiled INT8
    # are offered too): four distinct recipes exist with quantize alone (none, dynamic INT8 keeping no /
    # the sensitive layers in FP32, static INT8); static fails, so three of the five trials finish.
    import frugalml.search.space as space

    monkeypatch.setattr(space, "native_bf16_cpu", lambda: False)
    monkeypatch.setattr(space, "compiled_int8_offered", lambda: False)
    result = optimize(_config(sqlite_url, trials=5, techniques=["quantize"]))
    assert len(result.candidates) == 3 and result.ok
    assert [f["recipe_text"] for f in result.failed] == ["quantize_static"]
    assert result.failed[0]["error"] == "RuntimeError: calibration exploded"
    assert "1 failed (the first, #" in result.stopped_early and "calibration exploded" in result.stopped_early
    assert result.to_dict()["failed"] == result.failed


def test_finalists_1_takes_the_best_trial_as_measured(sqlite_url: str) -> None:
    result = optimize(_config(sqlite_url, trials=2, techniques=["runtime"], finalists=1))
    feasible = [c for c in result.candidates if c["feasible"]]
    assert len(feasible) == 2 and result.runoff is None and "head to head" not in result.why
    assert result.chosen["cost"] == min(c["cost"] for c in feasible)


def test_runoff_within_noise_is_decided_by_quality() -> None:
    from frugalml.search._optimize import _runoff_pick

    def row(number: int, quality: float, by_round: list[float]) -> dict:
        return {"number": number, "quality": quality, "cost": float(sorted(by_round)[2]), "by_round": by_round,
                "feasible": True}

    fast = row(1, 0.97, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    close = row(2, 0.98, [1.1, 0.9, 1.1, 0.9, 1.1, 1.1])  # slower by median, faster in two rounds: a tie
    slow = row(3, 0.99, [1.2, 1.2, 1.2, 1.2, 1.2, 1.2])  # slower in every round: out, despite its quality
    winner, tied = _runoff_pick([fast, close, slow], get_context("edge-cpu"), higher_quality=True)
    assert winner is close and tied == [fast, close]
    winner, tied = _runoff_pick([fast, slow], get_context("edge-cpu"), higher_quality=True)
    assert winner is fast and tied == [fast]
    # throughput (cloud-gpu) is maximised: the same rows read as items/s flip the roles
    winner, tied = _runoff_pick([fast, close, slow], get_context("cloud-gpu"), higher_quality=True)
    assert winner is slow and tied == [slow]

"""`frugal optimize` and `frugal gate`: exit codes 0 / 1 / 2, JUnit and Markdown outputs, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from frugalml.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _yaml(tmp_path: Path, store: str, budgets: str, trials: int = 2) -> Path:
    path = tmp_path / "frugal.yaml"
    path.write_text(f"model: zoo:digits-cnn\ndata: zoo:digits\nstore: {store}\nbudgets:\n{budgets}\n"
                    f"search:\n  trials: {trials}\n  latency_max_s: 0.3\n  techniques: [runtime]\n")
    return path


def test_optimize_then_gate_pass(tmp_path: Path, sqlite_url: str, capsys) -> None:
    cfg = _yaml(tmp_path, sqlite_url, "  quality_drop: 0.02")
    code, out, _ = run_cli(["optimize", "--config", str(cfg), "-o", str(tmp_path / "out")], capsys)
    assert code == 0 and "chosen" in out and "Gate" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["chosen"] is not None
    # Both trials (the unchanged model, its ONNX export) meet the budgets: they are raced again.
    assert "Run-off" in out and summary["runoff"]["pick"] == summary["chosen"]["number"]
    junit, md = tmp_path / "gate.xml", tmp_path / "gate.md"
    code, out, _ = run_cli(["gate", str(tmp_path / "out" / "model"), "--config", str(cfg), "--junit", str(junit),
                            "--markdown", str(md)], capsys)
    assert code == 0 and "PASS" in out
    assert ElementTree.parse(junit).getroot().find("testsuite").get("failures") == "0"
    assert md.read_text().startswith("### frugal gate: ✅ pass")


def test_gate_fail_exits_1_and_json(tmp_path: Path, sqlite_url: str, capsys) -> None:
    cfg = _yaml(tmp_path, sqlite_url, "  size_mb: 0.001")
    code, out, _ = run_cli(["gate", "zoo:digits-cnn", "--config", str(cfg), "--json"], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False and doc["failed"] == ["size_mb"]


def test_a_frugal_yaml_in_the_working_directory_is_the_config(tmp_path: Path, sqlite_url: str, capsys,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Run where a project keeps its frugal.yaml, `frugal gate MODEL` reads it (and says so on stderr),
    # not the built-in default (which refuses a digits model).
    _yaml(tmp_path, sqlite_url, "  size_mb: 0.001")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["gate", "zoo:digits-cnn", "--json"], capsys)
    assert code == 1 and json.loads(out)["failed"] == ["size_mb"]
    assert "config: ./frugal.yaml (found in the working directory)" in err
    monkeypatch.chdir(tmp_path.parent)
    code, _, err = run_cli(["gate", "zoo:digits-cnn", "--store", sqlite_url], capsys)
    assert code == 2 and "config: the built-in default" in err and "the built-in default gates text" in err


def test_optimize_without_a_feasible_candidate_exits_1(tmp_path: Path, sqlite_url: str, capsys) -> None:
    cfg = _yaml(tmp_path, sqlite_url, "  size_mb: 0.001", trials=1)
    code, out, _ = run_cli(["optimize", "--config", str(cfg), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "no candidate meets every budget" in out and "missing size_mb" in out


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets:\n  latency_p95: 3\n")
    code, _, err = run_cli(["optimize", "--config", str(bad)], capsys)
    assert code == 2 and "budgets.latency_p95" in err and "latency_p95_ms" in err and "Traceback" not in err
    code, _, err = run_cli(["gate", "zoo:nope"], capsys)
    assert code == 2 and "zoo:nope" in err
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    code, _, err = run_cli(["gate", "zoo:digits-mlp", "--store", store], capsys)  # no --config: the default is for text
    assert code == 2 and "the built-in default gates text embedding models" in err and "--config" in err
    assert not (tmp_path / "runs.db").exists()  # refused before anything was measured or recorded
    code, _, err = run_cli(["optimize", "--executor", "spark"], capsys)
    assert code == 2 and "search.executor" in err
    code, _, err = run_cli(["optimize", "--timeout", "5d"], capsys)
    assert code == 2 and "--timeout='5d': is not a duration" in err and "Traceback" not in err


def test_optimize_time_limit_says_why_it_stopped(tmp_path: Path, sqlite_url: str, capsys) -> None:
    cfg = _yaml(tmp_path, sqlite_url, "  quality_drop: 0.02", trials=2)
    code, out, _ = run_cli(["optimize", "--config", str(cfg), "-o", str(tmp_path / "o"), "--timeout", "0.000001s"],
                           capsys)
    assert code == 0 and "stopped early: 1 of 2 trials: no new trial started after the 1e-06 s time limit" in out

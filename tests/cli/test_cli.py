"""The CLI: output, exit codes (0 ok, 2 usage error), one-line errors without tracebacks, --debug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from frugalml.cli import main

FAST = ["--max-time", "0.3"]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_profile_json_and_runs(capsys, sqlite_url: str) -> None:
    code, out, _ = run_cli(["profile", "zoo:digits-mlp", "--batch-sizes", "1,4", "--json", "--store", sqlite_url,
                            *FAST], capsys)
    assert code == 0
    doc = json.loads(out)
    assert set(doc["latency_ms"]) == {"1", "4"} and doc["run_id"] == 1 and doc["roofline"]["bound"]
    code, out, _ = run_cli(["runs", "list", "--store", sqlite_url], capsys)
    assert code == 0 and "profile" in out and "zoo:digits-mlp" in out and "succeeded" in out
    code, out, _ = run_cli(["runs", "show", "1", "--store", sqlite_url, "--json"], capsys)
    shown = json.loads(out)
    assert shown["result"]["latency_ms"]["1"]["p50"] == doc["latency_ms"]["1"]["p50"]
    assert any(m["name"] == "latency_p95" for m in shown["measurements"])
    code, out, _ = run_cli(["runs", "show", "1", "--store", sqlite_url], capsys)
    assert code == 0 and "latency_p99" in out and "run.succeeded" in out


def test_profile_table(capsys, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run_cli(["profile", "zoo:digits-cnn", "--batch-sizes", "2", "--store", sqlite_url, *FAST], capsys)
    assert code == 0 and "Profile of zoo:digits-cnn" in out and "Roofline" in out and "Conv2d" in out
    # captured, as in a CI log or a pipe: the tables are laid out whole, never cut to 80 columns
    assert "…" not in out and "energy per item" in out and " p50 CI " in out


def test_compare_table_json_and_store(capsys, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    argv = ["compare", "zoo:digits-mlp", "zoo:digits-mlp", "--batch", "4", "--rounds", "2", "--round-s", "0.05",
            "--store", sqlite_url]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0 and "Head to head at batch 4" in out and "p50 vs #0" in out and "1.00x" in out
    code, out, _ = run_cli([*argv, "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and [c["name"] for c in doc["contenders"]] == ["zoo:digits-mlp"] * 2 and doc["rounds"] == 2
    from frugalml import open_store

    store = open_store(sqlite_url)
    run = store.get_run(doc["run_id"])
    assert run.kind == "compare" and run.status == "succeeded" and run.result["batch"] == 4
    rows = [m for m in run.measurements if m.name in ("latency_p50", "latency_p95", "throughput")]
    assert len(rows) == 6 and sorted({m.source for m in rows}) == ["0:zoo:digits-mlp", "1:zoo:digits-mlp"]
    code, out, _ = run_cli(["runs", "list", "--store", sqlite_url, "--kind", "compare"], capsys)
    assert code == 0 and "p50 vs the first: 1.00x" in " ".join(out.split())


@pytest.mark.parametrize("argv, fragment", [
    (["profile", "zoo:nope"], "model='zoo:nope': no such built-in model"),
    (["profile", "/no/such/model"], "no such file or directory"),
    (["profile", "zoo:digits-mlp", "--batch-sizes", "0"], "batch_sizes='0'"),
    (["profile", "zoo:digits-mlp", "--batch-sizes", "1,,2"], "comma-separated"),
    (["profile", "zoo:digits-mlp", "--device", "gpu"], "Did you mean 'cpu'"),
    (["profile", "zoo:digits-mlp", "--store", "mysql://x@y/z"], "not supported"),
    (["runs", "show", "999"], "no such run"),
    (["compare", "zoo:digits-mlp"], "models='[zoo:digits-mlp]': needs at least two"),  # brackets are not markup
    (["compare", "zoo:digits-mlp", "zoo:digits-cnn", "--rounds", "3"], "Pass rounds=4"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv: list[str], fragment: str, sqlite_url: str) -> None:
    if "--store" not in argv:
        argv = [*argv, "--store", sqlite_url]
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert fragment in " ".join(err.split())
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3  # one message, wrapped at most


def test_pickle_is_refused_then_trusted(capsys, tmp_path: Path, sqlite_url: str) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(3, 2), path)
    code, _, err = run_cli(["profile", str(path), "--store", sqlite_url], capsys)
    assert code == 2 and "--trust-pickle" in " ".join(err.split())


def test_typer_usage_error_is_exit_2(capsys) -> None:
    code, _, err = run_cli(["profile"], capsys)
    assert code == 2 and "Missing argument" in err


def test_every_argument_keeps_its_help(capsys) -> None:
    """Each positional argument of every command has help, and `--help` shows it (click 8.5 with
    typer < 0.21 blanked all of them; pyproject.toml caps click for that)."""
    import typer

    # importing the command modules registers their commands, as main() does
    from frugalml.cli import _compress, _data, _optimize, _profile, _report, _runs, _scaling, _serve, _train  # noqa: F401
    from frugalml.cli._app import app

    def walk(command, path):
        for param in getattr(command, "params", []):
            if param.param_type_name == "argument":
                yield path, param
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, path + [name])

    arguments = list(walk(typer.main.get_command(app), []))
    assert len(arguments) >= 10
    blank = [" ".join(path) + " " + param.name for path, param in arguments if not (param.help or "").strip()]
    assert blank == []
    code, out, _ = run_cli(["compare", "--help"], capsys)
    assert code == 0 and "Two or more models" in " ".join(out.split())


def test_version(capsys) -> None:
    from frugalml import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and __version__ in out


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """Through a real process: exit code, stderr, and --debug's traceback."""
    env_store = f"sqlite:///{tmp_path / 'r.db'}"
    plain = subprocess.run([sys.executable, "-m", "frugalml", "profile", "zoo:nope", "--store", env_store],
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and "zoo:nope" in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "frugalml", "--debug", "profile", "zoo:nope", "--store", env_store],
                           capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr

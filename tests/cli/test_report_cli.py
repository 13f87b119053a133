"""`frugal report`, `frugal card`, `frugal ui`: files written, exit codes and one-line errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


def test_report_and_card_from_a_run_id(cli, searched: dict, tmp_path: Path) -> None:
    code, out, _ = cli(["report", str(searched["first"]), "--store", searched["url"], "-o",
                            str(tmp_path / "r.html")])
    assert code == 0 and "wrote" in out and (tmp_path / "r.html").stat().st_size > 3_000_000
    code, out, _ = cli(["card", str(searched["first"]), "--store", searched["url"], "-o",
                            str(tmp_path / "CARD.md")])
    assert code == 0 and (tmp_path / "CARD.md").read_text().startswith("# Model card")


@pytest.mark.parametrize("argv, needle", [
    (["report", "nowhere"], "target='nowhere'"),
    (["report", "999999"], "run_id=999999"),
    (["card", "PROFILE"], "is a profile run"),
    (["ui", "--port", "70000"], "port=70000"),
])
def test_usage_errors_exit_2_with_one_line(cli, searched: dict, argv: list[str], needle: str) -> None:
    argv = [a.replace("PROFILE", str(searched["profile"])) for a in argv]
    code, _, err = cli([*argv, "--store", searched["url"]])
    assert code == 2 and needle in err and "Traceback" not in err


def test_ui_refuses_a_taken_port(cli, searched: dict) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli(["ui", "--store", searched["url"], "--port", str(port)])
    assert code == 2 and f"port={port}" in err and "cannot listen" in err

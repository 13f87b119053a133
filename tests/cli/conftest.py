"""CLI fixtures: ``cli(argv)`` runs ``frugal`` in-process and returns (exit code, stdout, stderr)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from frugalml.cli import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    def run(argv: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        out, err = capsys.readouterr()
        return int(info.value.code or 0), out, err

    return run

"""Where a report's data comes from: a run in the store (by id) or an output directory / JSON file.

Both give the same plain dicts: an ``optimize`` run's result *is* the ``summary.json`` that
``frugal optimize -o DIR`` writes, a ``profile`` run's result is ``Profile.to_dict()``, and a
``compare`` run's is ``Comparison.to_dict()`` (what ``frugal compare --json`` prints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugalml.errors import InvalidArgumentError

__all__ = ["ReportSource", "load_source"]


@dataclass(frozen=True)
class ReportSource:
    """What to report on: ``kind`` (optimize, profile, compress, gate, ...), its ``data`` (the run's
    result or the file's contents), and the store ``run`` when it came from one."""

    kind: str
    data: dict[str, Any]
    run: Any = None  # frugalml.store.RunRecord | None
    origin: str = ""


def _kind_of(data: dict[str, Any]) -> str:
    if "candidates" in data and "objectives" in data:
        return "optimize"
    if "latency_ms" in data and "roofline" in data:
        return "profile"
    if "contenders" in data and "orders" in data:
        return "compare"
    if "checks" in data and "passed" in data:
        return "gate"
    if "overall" in data and "primary" in data:
        return "evaluate"
    return "unknown"


def load_source(target: int | str | Path, *, store: Any = None) -> ReportSource:
    """A run id (``12``, or ``"12"``) read from ``store`` (a URL or Store; default store when None),
    or a path: an output directory holding ``summary.json``, or a JSON file."""
    if isinstance(target, bool):
        raise InvalidArgumentError("target", target, "is neither a run id nor a path",
                                   "Pass a run id from 'frugal runs list' or an output directory.")
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        from frugalml.store import Store, open_store

        opened = store if isinstance(store, Store) else open_store(store)
        run = opened.get_run(int(target))
        if run.result is None:
            why = f"failed: {run.error}" if run.status == "failed" else f"is {run.status}"
            raise InvalidArgumentError("run_id", run.id, f"has no result to report on (the run {why})",
                                       "Pick a succeeded run from 'frugal runs list --status succeeded'.")
        return ReportSource(run.kind, run.result, run, origin=f"run #{run.id} in {opened.safe_url}")
    path = Path(target)
    if path.is_dir():
        path = path / "summary.json"
        if not path.is_file():
            raise InvalidArgumentError("target", str(target), "is a directory without summary.json",
                                       "Pass the directory 'frugal optimize -o DIR' wrote, or a run id.")
    if not path.is_file():
        raise InvalidArgumentError("target", str(target), "is neither a run id nor an existing file or directory",
                                   "Pass a run id from 'frugal runs list' or an output directory.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError("target", str(path), f"is not valid JSON ({exc})",
                                   "Pass the summary.json frugal wrote, unedited.") from None
    if not isinstance(data, dict) or _kind_of(data) == "unknown":
        raise InvalidArgumentError("target", str(path), "is not a frugal search summary, profile, comparison "
                                   "or evaluation", "Pass summary.json from 'frugal optimize -o DIR', or the output "
                                   "of 'frugal profile --json', 'frugal compare --json' or 'frugal evaluate --json'.")
    return ReportSource(_kind_of(data), data, None, origin=str(path))

"""Writing chosen rows of a dataset (rows to label, rows kept by pruning) to a new file, atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalml.errors import InvalidArgumentError

__all__ = ["check_out", "write_rows"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}


def check_out(out: str | Path, *, overwrite: bool = False) -> Path:
    """``out`` as a Path, refused (before any work is done) for an unsupported extension or an existing
    file without ``overwrite``."""
    target = Path(out)
    if target.suffix.lower() not in _FORMATS:
        raise InvalidArgumentError("out", str(out), f"has an unsupported extension {target.suffix!r}",
                                   "Use .csv, .parquet or .jsonl.")
    if target.exists() and not overwrite:
        raise InvalidArgumentError("out", str(out), "exists", "Choose a new path, or pass --overwrite.")
    return target


def write_rows(data: str | Any, rows: Sequence[int], out: str | Path, *, extra: dict[str, Sequence[Any]] | None = None,
               text_column: str | None = None, label_column: str | None = None, overwrite: bool = False) -> int:
    """Write ``rows`` (0-based positions, in the order given) of ``data`` with all its columns, a ``row``
    column first and ``extra`` columns last, as CSV, Parquet or JSONL by ``out``'s extension. The file
    appears whole or not at all; the input is never modified. Returns the rows written."""
    from frugalml.datasets import Dataset, load_dataset

    target = check_out(out, overwrite=overwrite)
    fmt = _FORMATS[target.suffix.lower()]
    dataset = data if isinstance(data, Dataset) else load_dataset(data, text_column=text_column,
                                                                  label_column=label_column)
    if not isinstance(data, Dataset) and not str(data).startswith("zoo:") and target.resolve() == Path(data).resolve():
        raise InvalidArgumentError("out", str(out), "is the input file", "Write the rows to a new file.")
    frame = dataset.frame.iloc[list(rows)].copy()
    frame.insert(0, "row", list(rows))
    for name, values in (extra or {}).items():
        frame[name] = list(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        if fmt == "csv":
            frame.to_csv(tmp, index=False)
        elif fmt == "jsonl":
            frame.to_json(tmp, orient="records", lines=True)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return len(frame)

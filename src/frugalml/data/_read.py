"""Reading a dataset in bounded memory: CSV, TSV, Parquet, JSONL, a folder of text files or a built-in
(``zoo:NAME``, already in memory), in chunks.

Every reader yields pandas DataFrames of at most ``chunk_rows`` rows, with a global ``_row`` column (the
row's position in the input, 0-based) so findings can name rows. Problems a user can fix (no such file,
an unreadable or empty file, a missing column, a column mixing numbers and text) are one
:class:`~frugalml.errors.DataError` naming the file, the column and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from frugalml.errors import DataError, InvalidArgumentError

__all__ = ["Source", "iter_chunks", "open_source"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Source:
    """A dataset: its path, format (csv, tsv, parquet, jsonl, folder, or zoo) and column names.

    A built-in (format ``zoo``) has ``path`` ``zoo:NAME`` (never opened), its rows in ``frame``, and in
    ``roles`` the columns it declares (``text_column``, ``label_column``, ``group_column``,
    ``split_column``), which callers use where the user names none.
    """

    path: Path
    format: str
    columns: tuple[str, ...]
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    roles: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How messages name the dataset: ``zoo:NAME`` or the file's name."""
        return str(self.path) if self.format == "zoo" else self.path.name

    def require(self, column: str | None, role: str) -> None:
        if column is not None and column not in self.columns:
            from frugalml._validate import nearest

            hint = nearest(column, self.columns)
            raise DataError(role, column, f"is not a column of {self.name}",
                            f"Available columns: {', '.join(self.columns)}." + (f" Did you mean {hint!r}?" if hint else ""))


def _zoo_source(spec: str) -> Source:
    from frugalml.datasets import load_dataset

    dataset = load_dataset(spec)  # checks the name (with a suggestion) as every other data command does
    frame = dataset.frame
    roles = {"text_column": dataset.text_column, "label_column": dataset.label_column,
             "group_column": dataset.group_column, "split_column": "split" if "split" in frame.columns else None}
    return Source(Path(spec), "zoo", tuple(map(str, frame.columns)), frame=frame,
                  roles={k: v for k, v in roles.items() if v is not None})


def open_source(path: str | Path) -> Source:
    """Check ``path`` (a file, a folder, or ``zoo:NAME``) and read its column names (without reading the
    data of a file)."""
    if str(path).startswith("zoo:"):
        return _zoo_source(str(path))
    p = Path(path)
    if not p.exists():
        raise DataError("data", str(path), "no such file or folder",
                        "Check the path, or use a built-in such as zoo:digits.")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file())
        if not files:
            raise DataError("data", str(path), "is a folder without .txt files",
                            "Pass a CSV, TSV, Parquet or JSONL file, a folder of .txt files (one example per file; "
                            "a sub-folder name is its label), or zoo:NAME.")
        return Source(p, "folder", ("text", "label", "file"))
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InvalidArgumentError("data", str(path), f"has an unsupported extension {p.suffix!r}",
                                   "Use .csv, .tsv, .parquet, .jsonl, a folder of .txt files, or zoo:NAME.")
    if p.stat().st_size == 0:
        raise DataError("data", str(path), "is empty", "Pass a file with a header and at least one row.")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            columns = tuple(pq.ParquetFile(p).schema_arrow.names)
        elif fmt in ("csv", "tsv"):
            columns = tuple(pd.read_csv(p, nrows=0, sep="\t" if fmt == "tsv" else ",").columns)
        else:
            columns = tuple(next(pd.read_json(p, lines=True, chunksize=1)).columns)
    except (ValueError, OSError, UnicodeDecodeError, StopIteration) as exc:
        raise DataError("data", str(path), f"cannot be read as {fmt} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})", f"Check that it is a valid {fmt} file.") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid etc. (not ValueError subclasses)
        raise DataError("data", str(path), f"cannot be read as {fmt} ({type(exc).__name__})",
                        f"Check that it is a valid {fmt} file.") from None
    if not columns:
        raise DataError("data", str(path), "has no columns", "Pass a file with a header row.")
    return Source(p, fmt, tuple(map(str, columns)))


def iter_chunks(source: Source, *, columns: Sequence[str] | None = None, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """The rows of ``source`` in chunks, each with a ``_row`` column; only ``columns`` when given."""
    wanted = list(dict.fromkeys(columns)) if columns else None
    offset = 0
    try:
        for chunk in _raw_chunks(source, wanted, chunk_rows):
            if chunk.empty:
                continue
            chunk = chunk.reset_index(drop=True)
            chunk["_row"] = range(offset, offset + len(chunk))
            offset += len(chunk)
            yield chunk
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError("data", str(source.path), f"stopped being readable after row {offset} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                        "Check the file for a truncated or malformed row.") from None
    if offset == 0:
        raise DataError("data", str(source.path), "has no rows", "Pass a file with at least one row.")


def _raw_chunks(source: Source, columns: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if source.frame is not None:
        frame = source.frame[columns] if columns else source.frame
        for i in range(0, len(frame), chunk_rows):
            yield frame.iloc[i:i + chunk_rows].copy()
    elif source.format in ("csv", "tsv"):
        yield from pd.read_csv(source.path, usecols=columns, chunksize=chunk_rows,
                               sep="\t" if source.format == "tsv" else ",")
    elif source.format == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(source.path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    elif source.format == "jsonl":
        for chunk in pd.read_json(source.path, lines=True, chunksize=chunk_rows):
            yield chunk[columns] if columns else chunk
    else:
        files = sorted(f for f in source.path.rglob("*.txt") if f.is_file())
        for i in range(0, len(files), chunk_rows):
            rows = []
            for f in files[i:i + chunk_rows]:
                label = f.parent.name if f.parent != source.path else None
                rows.append({"text": f.read_text(encoding="utf-8", errors="replace"), "label": label,
                             "file": str(f.relative_to(source.path))})
            frame = pd.DataFrame(rows)
            yield frame[columns] if columns else frame

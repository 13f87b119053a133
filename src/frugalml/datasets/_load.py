"""`load_dataset(spec)`: a zoo name or a file (CSV, Parquet, JSONL) or a folder of text files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from frugalml._validate import nearest, zoo_fix
from frugalml.datasets._dataset import Dataset
from frugalml.datasets._zoo import ZOO_DATASETS, load_zoo_dataset
from frugalml.errors import DataError

__all__ = ["load_dataset"]

_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def _read_table(path: Path, argument: str) -> pd.DataFrame:
    kind = _SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "tsv":
            return pd.read_csv(path, sep="\t")
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
        if kind == "parquet":
            try:
                return pd.read_parquet(path)
            except ImportError:
                raise DataError(argument, str(path), "reading Parquet needs pyarrow",
                                "Run: pip install 'frugalml[parquet]'.") from None
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(argument, str(path), "the file is empty", "Pass a file with a header row and data rows.") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(argument, str(path), f"could not be read as {kind} ({type(exc).__name__}: {exc})".rstrip(),
                        "Check the file's format and encoding (UTF-8).") from None
    raise DataError(argument, str(path), f"unknown file type {path.suffix!r}",
                    f"Use one of {', '.join(sorted(_SUFFIXES))}, a folder of .txt files, or zoo:NAME.")


def _read_text_folder(path: Path, argument: str) -> pd.DataFrame:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(argument, str(path), "the folder holds no .txt files",
                        "Put one document per .txt file in it, or pass a CSV / JSONL file.")
    rows = []
    for file in files:
        try:
            rows.append((file.read_text(encoding="utf-8").strip(), str(file.relative_to(path).parent)))
        except UnicodeDecodeError:
            raise DataError(argument, str(file), "is not UTF-8 text", "Re-encode it as UTF-8.") from None
    # The sub-folder a file sits in is its group: a common layout for labelled text.
    return pd.DataFrame(rows, columns=["text", "folder"])


def _check_column(frame: pd.DataFrame, name: str | None, argument: str, spec: str) -> str | None:
    if name is None or name in frame.columns:
        return name
    columns = [str(c) for c in frame.columns]
    hint = nearest(name, columns)
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    raise DataError(argument, name, f"no such column in {spec}",
                    f"Use one of: {', '.join(columns)}.{suggestion}")


def load_dataset(
    spec: str | Path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    group_column: str | None = None,
    split: str | None = None,
    argument: str = "data",
) -> Dataset:
    """Load a dataset from ``zoo:NAME``, a CSV / TSV / Parquet / JSONL file, or a folder of .txt files.

    For files, ``text_column`` defaults to ``"text"`` when such a column exists; otherwise every
    numeric column except the label is a feature. ``split`` keeps the rows of one split (needs a
    ``split`` column, as the zoo datasets have). ``argument`` is the name errors give ``spec``: the
    caller's parameter (``reference``, ``current``) where it is not ``data``.
    """
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise DataError(argument, spec, "must be a path or zoo:NAME", "Pass e.g. zoo:stdlib-docs or data.csv.")
    text = str(spec)
    if text.startswith("zoo:"):
        name = text[4:]
        if name not in ZOO_DATASETS:
            raise DataError(argument, text, "no such built-in dataset", zoo_fix(name, ZOO_DATASETS))
        dataset = load_zoo_dataset(name)
        frame = dataset.frame
        roles = {"text_column": text_column or dataset.text_column,
                 "label_column": label_column or dataset.label_column,
                 "group_column": group_column or dataset.group_column}
        for role, column in roles.items():
            _check_column(frame, column, role, text)
        dataset = Dataset(name=dataset.name, frame=frame, feature_columns=dataset.feature_columns,
                          feature_shape=dataset.feature_shape, **roles)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise DataError(argument, text, "no such file or folder", "Check the path, or use a built-in such as zoo:digits.")
        frame = _read_text_folder(path, argument) if path.is_dir() else _read_table(path, argument)
        if frame.empty:
            raise DataError(argument, text, "holds no rows", "Pass a dataset with at least one row.")
        if text_column is None and "text" in frame.columns:
            text_column = "text"
        for role, column in (("text_column", text_column), ("label_column", label_column),
                             ("group_column", group_column)):
            _check_column(frame, column, role, text)
        features = None
        if text_column is None:
            skip = {label_column, group_column, "split"}
            numeric = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]
            features = tuple(str(c) for c in numeric) or None
        dataset = Dataset(name=text, frame=frame, text_column=text_column, feature_columns=features,
                          label_column=label_column, group_column=group_column,
                          feature_shape=(len(features),) if features else None)
    return dataset.split(split) if split is not None else dataset

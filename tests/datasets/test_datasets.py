"""Datasets: the zoo's determinism and shape, file formats, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml import load_dataset
from frugalml.errors import DataError


def test_stdlib_docs_is_large_deterministic_and_grouped() -> None:
    from frugalml.datasets._zoo import _extract_stdlib_docs, _stdlib_docs_frame
    import sysconfig

    data = load_dataset("zoo:stdlib-docs")
    texts = data.texts()
    assert len(texts) >= 5000
    assert len(set(t.lower() for t in texts)) == len(texts)  # de-duplicated
    assert all(t[0].isupper() and t.endswith(".") for t in texts[:500])
    assert data.group_column == "source" and data.frame["source"].nunique() >= 6
    # Extraction from scratch gives exactly the cached corpus.
    fresh = _extract_stdlib_docs(Path(sysconfig.get_paths()["stdlib"]))
    assert fresh["text"].tolist() == _stdlib_docs_frame()["text"].tolist()
    splits = data.frame["split"].value_counts(normalize=True)
    assert 0.75 < splits["train"] < 0.85


def test_digits_split_is_fixed_and_stratified() -> None:
    train, test = load_dataset("zoo:digits", split="train"), load_dataset("zoo:digits", split="test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.features().shape == (len(train), 64)
    assert set(test.labels()) == set(range(10))
    assert load_dataset("zoo:digits", split="test").frame.equals(test.frame)
    # the repr names the roles, never the rows (it ends up in logs and stored configs)
    assert repr(test) == "Dataset('zoo:digits', rows=360, label_column='label', feature_shape=(64,), features=64)"


def test_files(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("text,label,grp\nhello there,1,a\nbye now,0,b\n")
    data = load_dataset(csv, label_column="label", group_column="grp")
    assert data.texts() == ["hello there", "bye now"] and list(data.groups()) == ["a", "b"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps({"x1": i, "x2": i * 2.0, "y": i % 2}) for i in range(4)))
    tab = load_dataset(jsonl, label_column="y")
    assert tab.kind == "tensor" and tab.features().shape == (4, 2)
    folder = tmp_path / "docs" / "news"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("Some text.")
    assert load_dataset(tmp_path / "docs").texts() == ["Some text."]


def test_missing_column_names_the_available_ones(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\nx,1\n")
    with pytest.raises(DataError, match="Use one of: text, label.*Did you mean 'label'"):
        load_dataset(csv, label_column="labels")


@pytest.mark.parametrize("content, suffix, match", [
    ("", ".csv", "empty"),
    ("a,b\n", ".csv", "no rows"),
    ("x", ".xlsx", "unknown file type"),
])
def test_bad_files(tmp_path: Path, content: str, suffix: str, match: str) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        load_dataset(path)


def test_bad_specs() -> None:
    with pytest.raises(DataError, match="Did you mean 'zoo:digits'"):
        load_dataset("zoo:digit")
    with pytest.raises(DataError, match="no such file"):
        load_dataset("/no/such.csv")
    with pytest.raises(DataError, match="Choose one of"):
        load_dataset("zoo:digits", split="validation")


def test_errors_name_the_callers_argument(tmp_path: Path) -> None:
    # monitor(reference=..., current=...) and the server's --reference load data under other names.
    with pytest.raises(DataError, match=r"^reference='/no/such.csv': no such file"):
        load_dataset("/no/such.csv", argument="reference")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"^current=.*the file is empty"):
        load_dataset(empty, argument="current")


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_unknown_zoo_name_is_a_clear_error(name: str) -> None:
    if name in ("digits", "stdlib-docs"):
        return
    with pytest.raises(DataError, match="no such built-in dataset"):
        load_dataset(f"zoo:{name}")


def test_one_reading_of_the_split_column(tmp_path: Path) -> None:
    # "Test" / " test " hold rows out as "test" does; train, validation and dev rows are all training data
    path = tmp_path / "s.csv"
    path.write_text("text,label,split\na,0,train\nb,1, Test \nc,0,validation\nd,1,test\ne,0,dev\n")
    data = load_dataset(str(path), label_column="label")
    assert data.is_test().tolist() == [False, True, False, True, False]
    assert data.held_out().texts() == ["b", "d"] and data.for_training().texts() == ["a", "c", "e"]
    plain = load_dataset(str(path), label_column="label").subset([0, 2])  # no test rows: all rows both ways
    assert len(plain.held_out()) == len(plain.for_training()) == 2

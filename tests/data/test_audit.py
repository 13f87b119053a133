"""audit(): planted problems found, every input format, schema checks, the cleaned export, bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from frugalml.data import audit, planted_digits, planted_text, write_clean
from frugalml.errors import DataError, InvalidArgumentError


def _pr(found: set[int], truth: set[int]) -> tuple[float, float]:
    tp = len(found & truth)
    return tp / max(1, len(found)), tp / max(1, len(truth))


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    p = planted_digits()
    path = tmp_path_factory.mktemp("digits") / "digits.csv"
    p.frame.to_csv(path, index=False)
    return p, path, audit(path, label_column="label", split_column="split", chunk_rows=500)


def test_planted_digit_problems_are_found(digits) -> None:
    p, _, r = digits
    assert r.n_rows == len(p.frame)
    assert _pr({a for a, _ in r.exact_duplicates}, p.exact) == (1.0, 1.0)
    precision, recall = _pr({a for a, _, _ in r.near_duplicates}, p.near)
    assert precision >= 0.95 and recall >= 0.95
    precision, recall = _pr({a for a, _, _ in r.label_issues}, p.flipped)
    assert precision >= 0.8 and recall >= 0.6
    assert _pr({a for a, _, _ in r.leakage}, p.leaked) == (1.0, 1.0)
    assert sum(r.class_balance.values()) == r.n_rows and len(r.class_balance) == 10


def test_planted_text_problems_are_found(tmp_path: Path) -> None:
    p = planted_text(rows=1500)
    path = tmp_path / "text.jsonl"
    p.frame.to_json(path, orient="records", lines=True)
    r = audit(path, split_column="split", find_label_issues=False, chunk_rows=400)
    assert _pr({a for a, _ in r.exact_duplicates}, p.exact) == (1.0, 1.0)
    precision, recall = _pr({a for a, _, _ in r.near_duplicates}, p.near)
    assert precision >= 0.95 and recall >= 0.95
    assert _pr({a for a, _, _ in r.leakage}, p.leaked) == (1.0, 1.0)


def test_clean_export_never_touches_the_input(digits, tmp_path: Path) -> None:
    _, path, r = digits
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for name in ("clean.csv", "clean.parquet", "clean.jsonl"):
        written = write_clean(r, tmp_path / name, chunk_rows=300)
        assert written == r.n_rows - len(r.rows_to_drop())
        back = pd.read_parquet(tmp_path / name) if name.endswith("parquet") else (
            pd.read_json(tmp_path / name, lines=True) if name.endswith("jsonl") else pd.read_csv(tmp_path / name))
        assert len(back) == written and "_row" not in back.columns
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with pytest.raises(InvalidArgumentError, match="is the input"):
        write_clean(r, path)
    with pytest.raises(InvalidArgumentError, match="exists"):
        write_clean(r, tmp_path / "clean.csv")


def test_empty_texts_are_missing_not_duplicates(tmp_path: Path) -> None:
    rows = [{"text": "the quick brown fox jumps over the lazy dog"}, {"text": ""}, {"text": "   "},
            {"text": None}, {"text": "a different sentence about rain in spain"}, {"text": ""}]
    path = tmp_path / "blank.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    r = audit(path, find_label_issues=False, chunk_rows=2)  # blanks spread over chunks
    assert r.exact_duplicates == [] and r.near_duplicates == []  # four blank rows repeat nothing
    assert r.missing == {"text": 4}  # None, and the three empty or whitespace-only texts


def test_folder_of_text_files(tmp_path: Path) -> None:
    for label, texts in (("pos", ["a fine day", "a fine day", "great weather today"]), ("neg", ["awful rain"])):
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    r = audit(tmp_path, label_column="label", find_label_issues=False)
    assert r.n_rows == 4 and len(r.exact_duplicates) == 1 and r.class_balance == {"pos": 3, "neg": 1}


def test_builtin_dataset_uses_its_declared_columns(tmp_path: Path) -> None:
    from frugalml.datasets import load_dataset

    r = audit("zoo:digits-fair", chunk_rows=700)
    assert (r.label_column, r.split_column, r.text_column) == ("label", "split", None)
    assert r.data == "zoo:digits-fair" and r.n_rows == 1797 and len(r.class_balance) == 10
    assert sum(r.group_balance.values()) == 1797 and len(r.group_balance) == 2
    # the same rows from a file, with the roles named, are the same findings
    path = tmp_path / "fair.tsv"
    load_dataset("zoo:digits-fair").frame.to_csv(path, sep="\t", index=False)
    f = audit(path, label_column="label", group_column="group", split_column="split", chunk_rows=700)
    assert (f.exact_duplicates, f.near_duplicates, f.leakage, f.label_issues) == (
        r.exact_duplicates, r.near_duplicates, r.leakage, r.label_issues)
    assert write_clean(r, tmp_path / "clean.tsv") == 1797 - len(r.rows_to_drop())
    assert pd.read_csv(tmp_path / "clean.tsv", sep="\t").shape == (1797 - len(r.rows_to_drop()), 67)
    with pytest.raises(DataError, match="no such built-in dataset.*Did you mean 'zoo:digits'"):
        audit("zoo:digit")
    with pytest.raises(DataError, match="no such file or folder.*zoo:digits"):
        audit(tmp_path / "missing.csv")


def test_schema_failures_are_counted(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1, 2, 99, None], "kind": ["a", "b", "c", "a"]}).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "schema.yaml").write_text("columns:\n  x: {min: 0, max: 10, nullable: false}\n"
                                          "  kind: {isin: [a, b]}\n")
    r = audit(tmp_path / "d.csv", schema=tmp_path / "schema.yaml", text_column="kind", find_label_issues=False)
    checks = {(f["column"], f["check"]): f for f in r.schema_failures}
    assert any(c == "x" and "less_than_or_equal_to" in k for c, k in checks)
    assert any(c == "kind" and "isin" in k for c, k in checks)
    assert r.missing == {"x": 1}
    (tmp_path / "bad.yaml").write_text("columns:\n  x: {maximum: 3}\n")
    with pytest.raises(InvalidArgumentError, match="maximum"):
        audit(tmp_path / "d.csv", schema=tmp_path / "bad.yaml", text_column="kind")
    (tmp_path / "dtype.yaml").write_text("columns:\n  x: {dtype: integr}\n")
    with pytest.raises(InvalidArgumentError, match="schema.columns.x.*not a valid column schema"):
        audit(tmp_path / "d.csv", schema=tmp_path / "dtype.yaml", text_column="kind")


def test_tabular_rows_are_compared_in_their_own_units(tmp_path: Path) -> None:
    # breast cancer's 30 columns span 7,800x in standard deviation (area vs smoothness): raw cosine
    # called 567 of its 569 rows near copies of an earlier row. Standardised and calibrated against a
    # column-shuffled copy, none are, and copies with 0.1% noise on every value are all found.
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from frugalml.data._audit import _share_one_scale

    frame = load_breast_cancer(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    assert not _share_one_scale(frame[features].to_numpy()) and _share_one_scale(
        planted_digits().frame.filter(like="px").to_numpy())
    rng = np.random.default_rng(0)
    copies = frame.iloc[rng.choice(len(frame), 20, replace=False)].copy()
    copies[features] = copies[features] * (1 + rng.normal(0, 0.001, (20, len(features))))
    for rows, planted in ((frame, set()), (pd.concat([frame, copies], ignore_index=True),
                                           set(range(len(frame), len(frame) + 20)))):
        rows.to_csv(tmp_path / "bc.csv", index=False)
        r = audit(tmp_path / "bc.csv", label_column="target", find_label_issues=False)
        found = {a for a, _, _ in r.near_duplicates}
        assert found == planted and r.near_metric == "distance_sd"
        assert all(0 <= d <= 0.1 for _, _, d in r.near_duplicates)
        assert any("standardised" in n and "(30 in all)" in n for n in r.notes)
    # two columns, one of them whole years (it reported 1,999 near copies in 2,000 rows): only rows
    # far closer than shuffled ones count; with only small whole numbers, shuffled rows tie exactly,
    # so only exact duplicates count, and a note says why
    n = 2000
    people = pd.DataFrame({"age": rng.normal(40, 10, n).round(), "income": rng.lognormal(10, 0.5, n),
                           "label": rng.integers(0, 2, n)})
    people.to_csv(tmp_path / "people.csv", index=False)
    r = audit(tmp_path / "people.csv", label_column="label", find_label_issues=False)
    assert len(r.near_duplicates) <= n // 100
    counts = pd.DataFrame({"children": rng.integers(0, 5, n), "cars": rng.integers(0, 3, n),
                           "rooms": rng.integers(1, 8, n), "label": rng.integers(0, 2, n)})
    counts.to_csv(tmp_path / "counts.csv", index=False)
    r = audit(tmp_path / "counts.csv", label_column="label", find_label_issues=False)
    assert r.near_duplicates == [] and len(r.exact_duplicates) > 1800  # 105 distinct rows: the rest repeat
    assert any("not told apart from chance" in note for note in r.notes)
    with pytest.raises(InvalidArgumentError, match="cosine_threshold=2"):
        audit(tmp_path / "people.csv", cosine_threshold=2)


def test_near_metric_can_be_forced(tmp_path: Path) -> None:
    # near_metric overrides the scale test both ways, says so in a note, and is checked before any row
    # is read when it cannot apply
    from frugalml.data import planted_tabular

    p = planted_tabular()
    p.frame.to_parquet(tmp_path / "bc.parquet")
    forced = audit(tmp_path / "bc.parquet", label_column="label", find_label_issues=False, near_metric="cosine")
    # raw cosine on columns in their own units finds the planted copies and many rows that are not
    found = {a for a, _, _ in forced.near_duplicates}
    assert forced.near_metric == "cosine" and p.near <= found and len(found) > 5 * len(p.near)
    assert any("as asked" in n and "automatic choice for these columns is distance_sd" in n for n in forced.notes)
    pixels = planted_digits()
    pixels.frame.to_parquet(tmp_path / "px.parquet")
    r = audit(tmp_path / "px.parquet", label_column="label", find_label_issues=False, near_metric="distance_sd")
    assert r.near_metric == "distance_sd" and any("automatic choice for these columns is cosine" in n for n in r.notes)
    auto = audit(tmp_path / "px.parquet", label_column="label", find_label_issues=False)
    assert auto.near_metric == "cosine" and not any("as asked" in n for n in auto.notes)
    for kwargs, match in (({"near_metric": "euclid"}, "near_metric='euclid'.*must be one of auto, jaccard"),
                          ({"near_metric": "jaccard"}, "near_metric='jaccard'.*no text column"),
                          ({"near_metric": "cosine", "text_column": "split"}, "near_metric='cosine'.*text column")):
        with pytest.raises(InvalidArgumentError, match=match):
            audit(tmp_path / "bc.parquet", **kwargs)


@pytest.mark.parametrize("content, name, kwargs, error, match", [
    ("", "empty.csv", {}, DataError, "is empty"),
    ("a,b\n", "header.csv", {}, DataError, "has no rows"),
    ("text,label\nhi,1\n", "d.csv", {"label_column": "labels"}, DataError, "Available columns: text, label.*'label'"),
    ("text,label\nhi,1\nthere,two\n", "mixed.jsonl", {"label_column": "label"}, DataError, "mixes numbers and text"),
    ("x", "d.xlsx", {}, InvalidArgumentError, "unsupported extension"),
    (b"\x00\xff\xfe garbage", "bad.parquet", {}, DataError, "cannot be read as parquet"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, content, name: str, kwargs: dict, error: type,
                                      match: str) -> None:
    path = tmp_path / name
    if name == "mixed.jsonl":
        path.write_text('{"text": "hi", "label": 1}\n{"text": "there", "label": "two"}\n')
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(error, match=match):
        audit(path, **kwargs)


def test_cli_audit_and_usage_errors(cli, digits, tmp_path: Path) -> None:
    _, path, _ = digits
    code, out, _ = cli(["data", "audit", str(path), "--label-column", "label", "--split-column", "split",
                        "--write-clean", str(tmp_path / "c.parquet")])
    assert code == 0 and "exact duplicates" in out and "wrote" in out
    code, _, err = cli(["data", "audit", str(path), "--label-column", "lable"])
    assert code == 2 and "Did you mean 'label'" in err and "Traceback" not in err
    code, out, _ = cli(["data", "audit", "zoo:digits", "--no-label-issues"])
    assert code == 0 and "Audit of zoo:digits (1,797 rows" in out and "not checked (no --split-column)" not in out
    code, _, err = cli(["data", "audit", "zoo:digits", "--no-label-issues", "--near-metric", "jaccard"])
    assert code == 2 and "near_metric='jaccard'" in err and "Traceback" not in err

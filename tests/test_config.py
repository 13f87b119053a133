"""frugal.yaml validation: shorthands, unknown keys with the nearest valid one, YAML errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.config import DEFAULT_CONFIG, Budgets, DropBudget, config_from_dict, load_config
from frugalml.errors import InvalidArgumentError


def test_defaults_and_shorthands() -> None:
    assert load_config(None) is DEFAULT_CONFIG
    assert DEFAULT_CONFIG.model == "zoo:minilm" and DEFAULT_CONFIG.context == "edge-cpu"
    cfg = config_from_dict({"data": "zoo:digits", "budgets": {"latency_p95_ms": 20, "quality_drop": 0.01,
                                                              "throughput_items_per_s": {"batch": 8, "min": 100}}})
    assert cfg.data.eval == "zoo:digits"
    assert cfg.budgets.latency_p95_ms.batch == 1 and cfg.budgets.latency_p95_ms.max == 20
    assert cfg.budgets.quality_drop == DropBudget(max=0.01, relative=False)
    assert cfg.budgets.throughput_items_per_s.batch == 8


def test_user_budgets_override_context_defaults() -> None:
    mine = Budgets(size_mb=10, quality_drop=DropBudget(max=0.05))
    merged = mine.merged_over(Budgets(quality_drop=DropBudget(max=0.01), worst_group_drop=0.02))
    assert merged.quality_drop.max == 0.05 and merged.worst_group_drop == 0.02 and merged.size_mb == 10


@pytest.mark.parametrize(("raw", "where", "hint"), [
    ({"budgets": {"latency_p95": 3}}, "budgets.latency_p95", "latency_p95_ms"),
    ({"contxt": "edge-cpu"}, "contxt", "context"),
    ({"budgets": {"latency_p95_ms": {"batch": 1, "mx": 3}}}, "budgets.latency_p95_ms.mx", "max"),
    ({"search": {"trails": 3}}, "search.trails", "trials"),
])
def test_unknown_key_names_it_and_the_nearest(raw: dict, where: str, hint: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        config_from_dict(raw)
    assert info.value.argument == where and f"Did you mean {hint!r}" in str(info.value)


@pytest.mark.parametrize(("raw", "where"), [
    ({"context": "edge"}, "context"),
    ({"search": {"trials": 0}}, "search.trials"),
    ({"budgets": {"size_mb": -1}}, "budgets.size_mb"),
    ({"budgets": {"quality_drop": {"max": "a lot"}}}, "budgets.quality_drop.max"),
])
def test_bad_values_name_the_field(raw: dict, where: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        config_from_dict(raw)
    assert info.value.argument == where


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [zoo:minilm\n")
    with pytest.raises(InvalidArgumentError, match="not valid YAML at line"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- model\n")
    with pytest.raises(InvalidArgumentError, match="mapping"):
        load_config(listy)
    good = tmp_path / "frugal.yaml"
    good.write_text("model: zoo:digits-cnn\ndata: zoo:digits\ncontext: tinyml\n")
    assert load_config(good).context == "tinyml"
    # A dict is validated as the file's contents would be; anything else is one clear error.
    assert load_config({"model": "zoo:digits-cnn", "data": "zoo:digits"}).data.eval == "zoo:digits"
    with pytest.raises(InvalidArgumentError, match="budgets.size_mb"):
        load_config({"budgets": {"size_mb": -1}})
    with pytest.raises(InvalidArgumentError, match=r"^config='int': must be a FrugalConfig, a dict or the path"):
        load_config(5)


_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["model", "task", "data", "context", "budgets", "search", "store", "seq_len",
                                        "modle"]), _values, max_size=4))
def test_any_input_validates_or_fails_with_one_clear_error(raw: dict) -> None:
    try:
        config_from_dict(raw)
    except InvalidArgumentError as exc:
        assert exc.argument and exc.fix  # never a pydantic traceback, always a named field and a fix


def test_data_roles_load_with_the_configured_columns(tmp_path: Path) -> None:
    from frugalml.config import DataSpec
    from frugalml.errors import DataError

    (tmp_path / "eval.csv").write_text("sentence,sentiment,region\nso good,pos,north\nso bad,neg,south\n")
    (tmp_path / "unlabelled.csv").write_text("sentence\nmore text\nand more\n")
    spec = DataSpec(eval=str(tmp_path / "eval.csv"), train=str(tmp_path / "unlabelled.csv"), text_column="sentence",
                    label_column="sentiment", group_column="region")
    ev = spec.load("eval")
    assert (ev.text_column, ev.label_column, ev.group_column) == ("sentence", "sentiment", "region")
    train = spec.load("train")  # distillation needs no labels: a file without the label column is fine
    assert train.name == str(tmp_path / "unlabelled.csv") and train.texts() == ["more text", "and more"]
    assert train.label_column is None
    assert spec.load("calibration").name == train.name  # calibration falls back to the training data
    assert DataSpec().load("eval") is None and DataSpec().source("train", "zoo:digits") == "zoo:digits"
    with pytest.raises(DataError, match=r"^text_column='sentence': no such column"):
        DataSpec(eval="zoo:digits", text_column="sentence").load("eval")


def test_find_config_prefers_the_given_path_then_the_working_directorys_file(tmp_path: Path) -> None:
    from frugalml.config import find_config

    assert find_config(None, directory=tmp_path) is None  # nothing there: the built-in default
    (tmp_path / "frugal.yaml").write_text("model: zoo:minilm\n")
    assert find_config(None, directory=tmp_path) == tmp_path / "frugal.yaml"
    assert find_config("other.yaml", directory=tmp_path) == Path("other.yaml")  # checked when loaded
    (tmp_path / "sub").mkdir()
    assert find_config(None, directory=tmp_path / "sub") is None  # the working directory only, no walking up

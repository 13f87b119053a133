"""Recipes: round trips through YAML / JSON, the allow-list, validation errors naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.compress import (CONFIG_TYPES, CastPrecision, Distill, DropLayers, ExportOnnx, LowRank, PruneMagnitude,
                               PruneStructured, QuantizeDynamic, QuantizeStatic, Recipe)
from frugalml.errors import InvalidArgumentError

FULL = Recipe([PruneStructured(amount=0.25, target="ffn"), DropLayers(keep=3), Distill(epochs=1), LowRank(energy=0.95),
               PruneMagnitude(amount=0.3, exclude=("pooler",)),
               QuantizeDynamic(backend="onnxruntime", keep_fp32="auto", exclude=("pooler",))])
HALF = Recipe([PruneStructured(amount=0.25), CastPrecision(dtype="fp16"), PruneMagnitude(amount=0.3), ExportOnnx()])


def test_round_trips() -> None:
    assert Recipe.from_text(FULL.to_yaml()) == FULL
    assert Recipe.from_text(FULL.to_json()) == FULL
    assert Recipe.from_dict(FULL.to_dict()["steps"]) == FULL  # a bare list of steps works too
    assert FULL.describe().startswith("prune_structured -> drop_layers")


def test_save_and_load(tmp_path) -> None:
    for name in ("r.yaml", "r.json"):
        FULL.save(tmp_path / name)
        assert Recipe.load(tmp_path / name) == FULL


def test_every_technique_is_registered() -> None:
    assert set(CONFIG_TYPES) >= {"quantize_dynamic", "quantize_static", "cast", "prune_magnitude", "prune_structured",
                                 "drop_layers", "distill", "lowrank", "export_onnx"}


@pytest.mark.parametrize("steps, match", [
    ([{"technique": "quantise_dynamic"}], "steps\\[0\\].technique.*Did you mean 'quantize_dynamic'"),
    ([{"technique": "prune_magnitude", "amout": 0.5}], "steps\\[0\\].amout.*Did you mean 'amount'"),
    ([{"technique": "prune_magnitude", "amount": 1.5}], "steps\\[0\\].amount=1.5"),
    ([{"technique": "quantize_dynamic", "backend": "tensorrt"}], "steps\\[0\\].backend"),
    ([{"technique": "distill", "epochs": 0}], "steps\\[0\\].epochs"),
    ([{"technique": "drop_layers"}], "steps\\[0\\].keep"),
    ([{"technique": "cast", "version": 99}], "steps\\[0\\].version"),
    (["quantize_dynamic"], "steps\\[0\\]"),
])
def test_bad_recipes_name_the_field(steps: list, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        Recipe.from_dict({"frugalml_recipe": 1, "steps": steps})


def test_order_onnx_then_torch_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="needs a PyTorch model"):
        Recipe([ExportOnnx(), Distill()])
    Recipe([ExportOnnx(), QuantizeDynamic(backend="onnxruntime")])  # ONNX techniques may follow
    Recipe([QuantizeStatic(), ExportOnnx()])


def test_order_after_a_cast_is_checked() -> None:
    # ONNX Runtime rejects a bf16 graph's Conv / MatMul at load: refused when the recipe is built.
    with pytest.raises(InvalidArgumentError, match=r"steps\[1\]\.technique='export_onnx'.*bf16 model of step 0.*"
                                                   "Cast to fp16"):
        Recipe([CastPrecision(dtype="bf16"), ExportOnnx()])
    # Techniques on float32 weights would fail on, or silently undo, a cast before them.
    for later in (Distill(), LowRank(), QuantizeDynamic(backend="torch"), QuantizeDynamic(backend="onnxruntime"),
                  QuantizeStatic()):
        for dtype in ("bf16", "fp16"):
            with pytest.raises(InvalidArgumentError, match=rf"steps\[2\]\.technique='{later.technique}': follows the "
                                                           rf"cast to {dtype} of step 1.*Move the cast after"):
                Recipe([PruneMagnitude(amount=0.3), CastPrecision(dtype=dtype), later])
    Recipe([Distill(), LowRank(), CastPrecision(dtype="fp16"), ExportOnnx()])  # the order that works
    assert Recipe.from_dict(HALF.to_dict()) == HALF


def test_bad_yaml_and_top_level() -> None:
    with pytest.raises(InvalidArgumentError, match="not valid YAML"):
        Recipe.from_text("steps: [technique: {")
    with pytest.raises(InvalidArgumentError, match="unknown top-level"):
        Recipe.from_dict({"steps": [], "extra": 1})
    with pytest.raises(InvalidArgumentError, match="recipe format"):
        Recipe.from_dict({"frugalml_recipe": 2, "steps": []})


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(st.integers(), st.floats(), st.text(max_size=8),
                                                                    st.booleans(), st.none()), max_size=4),
       st.sampled_from(sorted(CONFIG_TYPES)))
def test_arbitrary_options_never_crash_the_parser(options: dict, technique: str) -> None:
    """Any mapping either parses or raises InvalidArgumentError; nothing else escapes."""
    try:
        Recipe.from_dict({"steps": [{"technique": technique, **options}]})
    except InvalidArgumentError:
        pass


def test_describe_with_details_names_the_changed_options() -> None:
    from frugalml.compress import Distill, PruneStructured, Recipe

    recipe = Recipe([PruneStructured(target="heads", amount=0.25), Distill()])
    assert recipe.describe() == "prune_structured -> distill"
    assert recipe.describe(details=True) == "prune_structured(amount=0.25, target=heads) -> distill"
    # Same techniques, other options: different recipes, told apart (the search dedupes on the full recipe).
    other = Recipe([PruneStructured(target="ffn", amount=0.25), Distill()])
    assert other.describe(details=True) != recipe.describe(details=True)


def test_every_example_recipe_loads() -> None:
    from pathlib import Path

    from frugalml.compress import Recipe

    paths = sorted((Path(__file__).parents[2] / "examples" / "recipes").glob("*.yaml"))
    assert paths
    for path in paths:
        recipe = Recipe.load(path)
        assert len(recipe) >= 1 and Recipe.from_dict(recipe.to_dict()).to_dict() == recipe.to_dict(), path.name


def test_example_recipes_load() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "examples" / "recipes"
    paths = sorted(folder.glob("*.yaml"))
    assert len(paths) >= 6
    for path in paths:
        assert len(Recipe.load(path)) >= 1, path.name

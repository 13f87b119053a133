"""`Recipe`: an ordered list of technique configs that round-trips through YAML and JSON.

A recipe file looks like::

    frugalml_recipe: 1
    steps:
      - technique: drop_layers
        keep: [0, 2, 4]
      - technique: distill
        epochs: 2
      - technique: quantize_dynamic
        backend: onnxruntime

Configs are built only from the allow-list of registered technique names (no arbitrary classes, no
pickles); an unknown technique or field is an error naming it and the nearest valid one.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from frugalml._validate import nearest
from frugalml.compress._base import CONFIG_TYPES, TechniqueConfig
from frugalml.errors import InvalidArgumentError

__all__ = ["RECIPE_FORMAT_VERSION", "Recipe"]

RECIPE_FORMAT_VERSION = 1


def _config_from_dict(raw: Any, index: int) -> TechniqueConfig:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        raise InvalidArgumentError(where, raw, "must be a mapping with a 'technique' key",
                                   "Write each step as {technique: NAME, ...options}.")
    data = dict(raw)
    name = data.pop("technique", None)
    if name not in CONFIG_TYPES:
        hint = nearest(str(name), CONFIG_TYPES)
        raise InvalidArgumentError(f"{where}.technique", name, "is not a known technique",
                                   f"Use one of {', '.join(sorted(CONFIG_TYPES))}."
                                   + (f" Did you mean {hint!r}?" if hint else ""))
    cls = CONFIG_TYPES[name]
    version = data.pop("version", cls.version)
    if not isinstance(version, int) or version > cls.version or version < 1:
        raise InvalidArgumentError(f"{where}.version", version, f"{name} configs up to version {cls.version} are "
                                   "understood", "Upgrade frugalml, or write the recipe for this version.")
    data = cls.upgrade(data, version)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            hint = nearest(key, fields)
            raise InvalidArgumentError(f"{where}.{key}", data[key], f"is not an option of {name}",
                                       f"Options of {name}: {', '.join(fields) or '(none)'}."
                                       + (f" Did you mean {hint!r}?" if hint else ""))
        # YAML and JSON have lists, the frozen configs hold tuples.
        if isinstance(data[key], list) and "tuple" in str(hints.get(key, "")):
            data[key] = tuple(data[key])
        # YAML 1.1 reads "5e-05" (no dot) as a string; a float option takes it as the number it is.
        if isinstance(data[key], str) and hints.get(key) is float:
            try:
                data[key] = float(data[key])
            except ValueError:
                pass
    try:
        return cls(**data)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{where}.{exc.argument}", exc.value, exc.problem, exc.fix) from None


# Techniques that work on float32 weights, with what they would do to a model cast to fp16 / bf16.
_FLOAT32_ONLY = {
    "distill": "it trains in float32 and returns a float32 model, undoing the cast",
    "lowrank": "it factorizes in float32 and returns float32 layers, undoing the cast",
    "quantize_dynamic": "it quantizes float32 weights",
    "quantize_static": "it quantizes float32 weights (ONNX Runtime's calibrator takes float32 graphs)",
}


@dataclass(frozen=True)
class Recipe:
    """An ordered, immutable list of technique configs."""

    steps: tuple[TechniqueConfig, ...]

    def __init__(self, steps: Iterable[TechniqueConfig]) -> None:
        steps = tuple(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, TechniqueConfig):
                raise InvalidArgumentError(f"steps[{i}]", step, "is not a technique config",
                                           "Build steps from frugalml.compress configs, e.g. QuantizeDynamic().")
        object.__setattr__(self, "steps", steps)
        self._check_order()

    def _check_order(self) -> None:
        onnx_from = None
        cast_at = None
        for i, step in enumerate(self.steps):
            if cast_at is not None and step.technique in _FLOAT32_ONLY:
                cast = self.steps[cast_at]
                raise InvalidArgumentError(f"steps[{i}].technique", step.technique, f"follows the cast to "
                                           f"{getattr(cast, 'dtype', '?')} of step {cast_at}, and "
                                           f"{_FLOAT32_ONLY[step.technique]}",
                                           f"Move the cast after {step.technique} (a cast is usually the last step "
                                           "before compile or export_onnx).")
            if step.technique == "cast" and cast_at is None:
                cast_at = i
            if onnx_from is not None and step.needs_torch:
                raise InvalidArgumentError(f"steps[{i}].technique", step.technique, f"needs a PyTorch model, but step "
                                           f"{onnx_from[0]} ({onnx_from[1]}) turned it into ONNX",
                                           "Move the ONNX-producing step to the end of the recipe.")
            if getattr(step, "produces_onnx", False) and onnx_from is None:
                if cast_at is not None and getattr(self.steps[cast_at], "dtype", "") == "bf16":
                    # The export succeeds, but ONNX Runtime rejects bfloat16 inputs to Conv, MatMul, ...
                    raise InvalidArgumentError(f"steps[{i}].technique", step.technique, f"produces ONNX from the "
                                               f"bf16 model of step {cast_at} (cast), and ONNX Runtime has no "
                                               "bfloat16 kernels for most operators",
                                               "Cast to fp16 instead, or keep the bf16 model in PyTorch (no ONNX step).")
                onnx_from = (i, step.technique)
            if step.technique == "compile" and any(getattr(s, "backend", "") == "inductor"
                                                   and s.technique == "quantize_dynamic" for s in self.steps[:i]):
                raise InvalidArgumentError(f"steps[{i}].technique", step.technique, "follows quantize_dynamic with "
                                           "backend inductor, which compiles the model itself",
                                           "Remove the compile step.")

    def __iter__(self) -> Iterator[TechniqueConfig]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def describe(self, *, details: bool = False) -> str:
        """``drop_layers -> distill``; with ``details``, the options that differ from their defaults
        (``prune_structured(amount=0.25, target=heads) -> ...``)."""
        if not details:
            return " -> ".join(s.technique for s in self.steps) or "(empty)"
        parts = []
        for step in self.steps:
            changed = [f"{f.name}={getattr(step, f.name)}" for f in dataclasses.fields(step)
                       if getattr(step, f.name) != f.default and not callable(f.default_factory)]
            parts.append(f"{step.technique}({', '.join(changed)})" if changed else step.technique)
        return " -> ".join(parts) or "(empty)"

    # --------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"frugalml_recipe": RECIPE_FORMAT_VERSION, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: Any) -> Recipe:
        if isinstance(data, list):  # a bare list of steps is accepted too
            data = {"frugalml_recipe": RECIPE_FORMAT_VERSION, "steps": data}
        if not isinstance(data, dict) or "steps" not in data:
            raise InvalidArgumentError("recipe", data, "must be a mapping with a 'steps' list",
                                       "Write it as {frugalml_recipe: 1, steps: [...]}.")
        version = data.get("frugalml_recipe", RECIPE_FORMAT_VERSION)
        if version != RECIPE_FORMAT_VERSION:
            raise InvalidArgumentError("frugalml_recipe", version, f"only recipe format {RECIPE_FORMAT_VERSION} is "
                                       "understood", "Upgrade frugalml or rewrite the recipe.")
        unknown = set(data) - {"frugalml_recipe", "steps"}
        if unknown:
            raise InvalidArgumentError("recipe", sorted(unknown), "has unknown top-level keys",
                                       "Only 'frugalml_recipe' and 'steps' are allowed.")
        steps = data["steps"]
        if not isinstance(steps, list):
            raise InvalidArgumentError("steps", steps, "must be a list", "Write steps: [{technique: ...}, ...].")
        return cls(_config_from_dict(raw, i) for i, raw in enumerate(steps))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_text(cls, text: str, *, source: str = "recipe") -> Recipe:
        try:
            data = yaml.safe_load(text)  # JSON is YAML, so one parser reads both
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(source, text[:80], f"is not valid YAML or JSON ({exc.__class__.__name__})",
                                       "Check the file's indentation and quoting.") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError("recipe", str(path), f"cannot be read ({exc.strerror})",
                                       "Pass the path of a recipe YAML or JSON file.") from None
        return cls.from_text(text, source=str(path))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.write_text(self.to_json() if path.suffix == ".json" else self.to_yaml(), encoding="utf-8")

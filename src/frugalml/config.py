"""frugal.yaml: the pydantic models of a project's configuration, and :func:`load_config`.

A configuration names the model, its data, the deployment context, the budgets the result must meet
and how to search. Every model forbids unknown keys: a typo is an error naming the key and the
nearest valid one, never a silently ignored budget. Shorthands a person would write are accepted
(``latency_p95_ms: 20`` means batch 1, ``quality_drop: 0.01`` an absolute drop).

Units are in the key names: milliseconds, megabytes (10^6 bytes), kilobytes (10^3 bytes),
millijoules per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from frugalml._validate import nearest
from frugalml.errors import DataError, InvalidArgumentError

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_CONFIG",
    "TECHNIQUE_FAMILIES",
    "Budgets",
    "DataSpec",
    "DropBudget",
    "FrugalConfig",
    "LatencyBudget",
    "SearchSpec",
    "ThroughputBudget",
    "config_from_dict",
    "find_config",
    "load_config",
    "read_yaml",
    "validate_model",
]

TECHNIQUE_FAMILIES = ("quantize", "prune", "distill", "lowrank", "runtime")


_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """Where evaluation, calibration and training items come from, and the roles of their columns."""

    eval: str | None = None  # default: the model's own default data (its test split)
    calibration: str | None = None  # default: eval's train split
    train: str | None = None  # for distillation; default: eval's train split
    text_column: str | None = None
    label_column: str | None = None
    group_column: str | None = None
    eval_items: int = Field(default=512, ge=20, le=1_000_000)  # a seeded sample of the eval split

    def source(self, role: Literal["eval", "train", "calibration"], default: str | None = None) -> str | None:
        """Which dataset ``role`` reads: its own key, else what it falls back to (calibration: the
        training data; train: eval; eval: ``default``, the model's own data)."""
        chain = {"eval": (self.eval,), "train": (self.train, self.eval),
                 "calibration": (self.calibration, self.train, self.eval)}[role]
        return next((spec for spec in chain if spec is not None), default)

    def load(self, role: Literal["eval", "train", "calibration"], default: str | None = None) -> Any:
        """The :class:`~frugalml.datasets.Dataset` for ``role``, with this spec's column roles, or None
        when neither the configuration nor ``default`` names one.

        Every role reads ``text_column``; the evaluation data also ``label_column`` and
        ``group_column``. Training and calibration data take ``label_column`` where they have that
        column (distillation uses labels when there are any, and needs none).
        """
        from frugalml.datasets import load_dataset

        spec = self.source(role, default)
        if spec is None:
            return None
        argument = f"data.{role}"
        if role == "eval":
            return load_dataset(spec, text_column=self.text_column, label_column=self.label_column,
                                group_column=self.group_column, argument=argument)
        try:
            return load_dataset(spec, text_column=self.text_column, label_column=self.label_column,
                                argument=argument)
        except DataError as exc:
            if self.label_column is None or exc.argument != "label_column":
                raise
        return load_dataset(spec, text_column=self.text_column, argument=argument)


class LatencyBudget(_Strict):
    batch: int = Field(default=1, ge=1, le=65536)
    max: float = Field(gt=0)


class ThroughputBudget(_Strict):
    batch: int = Field(default=32, ge=1, le=65536)
    min: float = Field(gt=0)


class DropBudget(_Strict):
    max: float = Field(ge=0)
    relative: bool = False  # a fraction of the reference's value instead of an absolute difference


def _shorthand(value: Any, key: str) -> Any:
    return {key: value} if isinstance(value, (int, float)) and not isinstance(value, bool) else value


class Budgets(_Strict):
    """Limits the chosen model must meet; ``None`` means no limit."""

    latency_p95_ms: LatencyBudget | None = None
    throughput_items_per_s: ThroughputBudget | None = None
    size_mb: float | None = Field(default=None, gt=0)
    peak_memory_mb: float | None = Field(default=None, gt=0)
    energy_mj_per_item: float | None = Field(default=None, gt=0)
    min_quality: float | None = None
    quality_drop: DropBudget | None = None
    worst_group_drop: float | None = Field(default=None, ge=0)
    subgroup_gap: float | None = Field(default=None, ge=0)
    flash_kb: float | None = Field(default=None, gt=0)  # TinyML: weight bytes must fit
    sram_kb: float | None = Field(default=None, gt=0)  # TinyML: peak activation bytes must fit

    @field_validator("latency_p95_ms", mode="before")
    @classmethod
    def _latency(cls, v: Any) -> Any:
        return _shorthand(v, "max")

    @field_validator("throughput_items_per_s", mode="before")
    @classmethod
    def _throughput(cls, v: Any) -> Any:
        return _shorthand(v, "min")

    @field_validator("quality_drop", mode="before")
    @classmethod
    def _drop(cls, v: Any) -> Any:
        return _shorthand(v, "max")

    def merged_over(self, defaults: Budgets) -> Budgets:
        """These budgets, with ``defaults`` filling the ones not set here."""
        mine = self.model_dump(exclude_none=True)
        return Budgets.model_validate({**defaults.model_dump(exclude_none=True), **mine})

    def active(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class SearchSpec(_Strict):
    techniques: list[Literal["quantize", "prune", "distill", "lowrank", "runtime"]] = Field(
        default_factory=lambda: list(TECHNIQUE_FAMILIES))
    trials: int = Field(default=12, ge=1, le=10_000)
    sampler: Literal["nsga2", "tpe", "random"] = "tpe"
    executor: Literal["local", "ray"] = "local"
    address: str | None = None  # a Ray cluster address; local Ray when omitted
    seed: int = 0
    study: str | None = None  # the Optuna study name; by default derived from the configuration
    distill_items: int = Field(default=800, ge=16)  # items per distillation epoch in the search
    latency_max_s: float = Field(default=3.0, gt=0)  # timed seconds per batch size per candidate
    # The best candidates by their own trial, rebuilt and timed again head to head before the pick
    # (1: take the best trial as measured). Only for latency and throughput costs.
    finalists: int = Field(default=3, ge=1, le=10)
    # Wall-clock seconds for the trials (None: no limit). Like Optuna's ``timeout``: no new trial
    # starts once it has passed, a running one finishes, and the first trial of a run always starts.
    timeout_s: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)


class FrugalConfig(_Strict):
    """A whole frugal.yaml."""

    model: str = "zoo:minilm"
    task: Literal["classification", "embedding", "regression"] | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    context: Literal["cloud-gpu", "edge-cpu", "mobile", "tinyml"] = "edge-cpu"
    budgets: Budgets = Field(default_factory=Budgets)
    search: SearchSpec = Field(default_factory=SearchSpec)
    store: str | None = None  # default: $FRUGAL_STORE or sqlite:///.frugal/runs.db
    seq_len: int = Field(default=64, ge=1, le=8192)

    @model_validator(mode="before")
    @classmethod
    def _data_shorthand(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("data"), str):
            values = {**values, "data": {"eval": values["data"]}}
        return values

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


DEFAULT_CONFIG = FrugalConfig(data=DataSpec(eval="zoo:stdlib-docs"))


def _valid_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys valid at ``path`` (the parent of a rejected key)."""
    current: Any = model
    for part in path:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)
                      and issubclass(a, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
    return list(current.model_fields)


def validate_model(model: type[_M], raw: Any, *, source: str, docs: str) -> _M:
    """Validate parsed YAML/JSON against a pydantic ``model``; the first problem becomes one clear error."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidArgumentError(source, type(raw).__name__, "must be a mapping of keys to values",
                                   f"Write the file as `key: value` lines; see {docs}.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # An unknown key explains the other errors at its level (a misspelt ``max`` is also missing).
        error = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in ("function-after", "function-before"))
                    and not (isinstance(p, str) and "[" in p))
        where = ".".join(str(p) for p in loc) or source
        if error["type"] == "extra_forbidden":
            valid = _valid_keys(model, loc[:-1])
            hint = nearest(str(loc[-1]), valid)
            fix = (f"Did you mean {hint!r}? " if hint else "") + f"Valid keys here: {', '.join(valid)}."
            raise InvalidArgumentError(where, error.get("input"), "is not a known key", fix) from None
        value = error.get("input")
        message = error["msg"][0].lower() + error["msg"][1:]
        raise InvalidArgumentError(where, value, message, f"See {docs} for the schema.") from None


def config_from_dict(raw: Any, *, source: str = "config") -> FrugalConfig:
    """Validate a parsed frugal.yaml; the first problem becomes one clear error."""
    if raw is not None and not isinstance(raw, dict):
        raise InvalidArgumentError(source, type(raw).__name__, "must be a mapping of keys to values",
                                   "Start the file with keys such as `model: zoo:minilm`.")
    return validate_model(FrugalConfig, raw, source=source, docs="docs/optimize.md")


def read_yaml(path: str | Path, *, argument: str = "config") -> Any:
    """Parse a YAML file; a missing file or a syntax error is one clear error naming ``argument``."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise InvalidArgumentError(argument, str(path), "no such file", "Pass the path of a YAML file.")
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidArgumentError(argument, str(path), f"is not valid YAML{where}",
                                   "Fix the YAML syntax (indentation, colons).") from None


CONFIG_FILE_NAME = "frugal.yaml"


def find_config(path: str | Path | None, *, directory: str | Path = ".") -> Path | None:
    """The frugal.yaml a command should read: ``path`` when given, else ``frugal.yaml`` in ``directory``
    (the working directory) when there is one, else None (the built-in default). As with pytest's or
    ruff's own files, a project's config is found where its commands are run; the library's
    :func:`load_config` never looks, so code gets what it passes."""
    if path is not None:
        return Path(path)
    found = Path(directory) / CONFIG_FILE_NAME
    return found if found.is_file() else None


def load_config(path: str | Path | Mapping[str, Any] | None) -> FrugalConfig:
    """Read and validate a frugal.yaml; ``None`` gives the built-in default (zoo:minilm, edge-cpu), and a
    mapping is validated as the file's parsed contents would be."""
    if path is None:
        return DEFAULT_CONFIG
    if isinstance(path, Mapping):
        return config_from_dict(dict(path))
    if not isinstance(path, (str, Path)):
        raise InvalidArgumentError("config", type(path).__name__, "must be a FrugalConfig, a dict or the path of a "
                                   "frugal.yaml", "Pass e.g. 'frugal.yaml' or {'model': 'zoo:minilm'}.")
    if not Path(path).is_file():
        raise InvalidArgumentError("config", str(path), "no such file", "Pass the path of a frugal.yaml.")
    return config_from_dict(read_yaml(path), source=str(path))

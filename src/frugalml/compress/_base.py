"""The technique pattern: one frozen, versioned config dataclass per technique, one handler per config.

A config only stores parameters (validated in ``__post_init__``, scikit-learn style: no work in the
constructor). A handler is registered for each config type with :func:`register_handler`, the
torchao pattern, and turns a handle into a new handle (the input is never mutated). Handlers record
what they did in a :class:`StepRecord`: the layers they changed, the layers they skipped and why,
and the structural edits needed to rebuild the architecture when an artifact is loaded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from frugalml.errors import InvalidArgumentError

__all__ = [
    "CONFIG_TYPES",
    "CompressContext",
    "StepRecord",
    "TechniqueConfig",
    "check_fraction",
    "check_in",
    "check_int",
    "check_names",
    "handler_for",
    "register_handler",
]

C = TypeVar("C", bound="TechniqueConfig")
CONFIG_TYPES: dict[str, type[TechniqueConfig]] = {}  # the allow-list recipes are loaded from
_HANDLERS: dict[type, Callable[..., Any]] = {}


def check_fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0, inclusive_low: bool = False,
                   inclusive_high: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value >= low if inclusive_low else value > low) and (value <= high if inclusive_high else value < high)
    if not ok:
        lo, hi = ("[" if inclusive_low else "(") + f"{low:g}", f"{high:g}" + ("]" if inclusive_high else ")")
        raise InvalidArgumentError(name, value, f"must be a number in {lo}, {hi}", f"Set {name} to e.g. 0.5.")
    return float(value)


def check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(name, value, f"must be an integer >= {minimum}", f"Set {name} to e.g. {max(minimum, 1)}.")
    return value


def check_in(value: Any, name: str, choices: Sequence[str]) -> str:
    from frugalml._validate import check_choice

    return check_choice(value, name, choices)


def check_names(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(name, value, "must be a list of layer names", f"Write {name}: [encoder.layer.0.output.dense].")
    return tuple(value)


@dataclass(frozen=True, kw_only=True)
class TechniqueConfig:
    """Base of every technique config. Subclasses set ``technique`` and ``version``."""

    technique: ClassVar[str] = ""
    version: ClassVar[int] = 1
    needs_torch: ClassVar[bool] = True  # False for techniques that run on ONNX models

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.technique:
            CONFIG_TYPES[cls.technique] = cls

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """``data`` (the options of a ``version`` config) as options of the current version, meaning
        what they meant then. Subclasses that change a default override it."""
        return data

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"technique": self.technique, "version": self.version}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass
class StepRecord:
    """What one technique did to the model."""

    technique: str
    config: dict[str, Any]
    changed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"layer": ..., "reason": ...}
    structure: dict[str, Any] = field(default_factory=dict)  # edits replayed when an artifact is loaded
    metrics: dict[str, Any] = field(default_factory=dict)

    def skip(self, layer: str, reason: str) -> None:
        self.skipped.append({"layer": layer, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CompressContext:
    """What handlers may use besides the model: data, the original model as teacher, options."""

    teacher: Any  # the original ModelHandle
    calibration: Any = None  # raw items (texts or arrays) for calibration / importance / distillation
    train: Any = None  # raw items for distillation; defaults to calibration
    labels: Any = None  # labels matching ``train`` (hard targets for classifier distillation)
    seq_len: int = 64
    seed: int = 0
    workdir: Any = None  # a folder for intermediate files (ONNX exports)
    device: str = "cpu"  # where PyTorch work runs: distillation, torchao quantization, compile warm-up
    progress: Callable[[str], None] = lambda message: None


def register_handler(config_type: type[C]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``@register_handler(QuantizeDynamic) def _apply(handle, config, ctx, record) -> handle``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        _HANDLERS[config_type] = fn
        return fn

    return decorate


def handler_for(config: TechniqueConfig) -> Callable[..., Any]:
    try:
        return _HANDLERS[type(config)]
    except KeyError:
        raise InvalidArgumentError("recipe", config.technique, "has no registered handler",
                                   "Import the module that registers it, or use a built-in technique.") from None

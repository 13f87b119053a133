"""Scaling laws: the single-resource law and the two-resource (Chinchilla) law, and built-in constants.

- ``PowerLaw``: L(x) = A * x^(-alpha) + B, for one resource x (parameters, tokens, samples or FLOPs).
- ``TwoResourceLaw``: L(N, D) = E + A / N^alpha + B / D^beta, N parameters and D training tokens
  (or samples). Training compute is taken as C = 6 * N * D FLOPs (2 forward + 4 backward per
  parameter per token), as in Hoffmann et al. 2022.

Each law carries the range of data it was fitted on; a question outside it is an extrapolation and
every answer derived from the law says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frugalml.errors import InvalidArgumentError

__all__ = ["CONSTANTS", "FittedRange", "PowerLaw", "TwoResourceLaw", "load_constants"]


@dataclass(frozen=True)
class FittedRange:
    """The span of the data a law was fitted on (inclusive); None where unknown."""

    n_params: tuple[float, float] | None = None
    n_tokens: tuple[float, float] | None = None
    flops: tuple[float, float] | None = None
    x: tuple[float, float] | None = None  # the single-resource law's resource

    def outside(self, **values: float | None) -> list[str]:
        """Human-readable reasons each given value lies outside the range (empty: inside)."""
        out = []
        for name, value in values.items():
            span = getattr(self, name)
            if value is None or span is None:
                continue
            lo, hi = span
            if value < lo or value > hi:
                out.append(f"{name}={value:.3g} is outside the fitted range [{lo:.3g}, {hi:.3g}]")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if v is not None else None for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FittedRange:
        data = data or {}
        return cls(**{k: tuple(data[k]) if data.get(k) else None for k in ("n_params", "n_tokens", "flops", "x")})


@dataclass(frozen=True)
class PowerLaw:
    """L(x) = A * x^(-alpha) + B. ``ci``: name -> (low, high) bootstrap interval."""

    A: float
    alpha: float
    B: float
    resource: str = "x"
    fitted_range: FittedRange = field(default_factory=FittedRange)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, x: Any) -> Any:
        import numpy as np

        return self.A * np.asarray(x, dtype=float) ** (-self.alpha) + self.B

    def to_dict(self) -> dict[str, Any]:
        return {"law": "power", "resource": self.resource, "A": self.A, "alpha": self.alpha, "B": self.B,
                "ci": {k: list(v) for k, v in self.ci.items()}, "fitted_range": self.fitted_range.to_dict()}


@dataclass(frozen=True)
class TwoResourceLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta, with its provenance and (when fitted) CIs and range."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = "fitted"
    source: str = ""
    fitted_range: FittedRange = field(default_factory=FittedRange)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    def predict(self, n_params: Any, n_tokens: Any) -> Any:
        import numpy as np

        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    @property
    def G(self) -> float:
        """G = (alpha A / (beta B))^(1 / (alpha + beta)): N_opt = G (C/6)^a, D_opt = (C/6)^b / G."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    @property
    def a(self) -> float:
        """The compute exponent of the optimal model size: N_opt proportional to C^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """The compute exponent of the optimal data size: D_opt proportional to C^b."""
        return self.alpha / (self.alpha + self.beta)

    def to_dict(self) -> dict[str, Any]:
        return {"law": "two-resource", "name": self.name, "source": self.source, "E": self.E, "A": self.A,
                "B": self.B, "alpha": self.alpha, "beta": self.beta, "ci": {k: list(v) for k, v in self.ci.items()},
                "fitted_range": self.fitted_range.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "constants") -> TwoResourceLaw:
        missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in data]
        if missing:
            raise InvalidArgumentError("constants", origin, f"lacks {', '.join(missing)}",
                                       "Give E, A, B, alpha and beta (the output of 'frugal scaling fit --json').")
        values = {}
        for k in ("E", "A", "B", "alpha", "beta"):
            v = data[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InvalidArgumentError(f"constants.{k}", v, "must be a finite number", "Fix the constants file.")
            values[k] = float(v)
        for k in ("A", "B", "alpha", "beta"):
            if values[k] <= 0:
                raise InvalidArgumentError(f"constants.{k}", values[k], "must be > 0",
                                           "A law whose terms do not decrease with scale cannot be planned with.")
        if values["E"] < 0:
            raise InvalidArgumentError("constants.E", values["E"], "must be >= 0", "The irreducible loss is not negative.")
        return cls(**values, name=str(data.get("name", origin)), source=str(data.get("source", "")),
                   fitted_range=FittedRange.from_dict(data.get("fitted_range")),
                   ci={k: tuple(v) for k, v in (data.get("ci") or {}).items()})


# Hoffmann et al. trained 400+ models of 70M to 16B parameters on 5B to 500B tokens.
_CHINCHILLA_RANGE = FittedRange(n_params=(7e7, 1.6e10), n_tokens=(5e9, 5e11))

CONSTANTS: dict[str, TwoResourceLaw] = {
    "chinchilla": TwoResourceLaw(
        E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="chinchilla",
        source="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Approach 3 (eq. 10), "
               "constants as printed (rounded) in the paper",
        fitted_range=_CHINCHILLA_RANGE),
    "epoch": TwoResourceLaw(
        E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="epoch",
        source="Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, refit of Hoffmann et al.'s "
               "Approach 3 on data reconstructed from their Figure 4",
        fitted_range=_CHINCHILLA_RANGE),
}


def load_constants(spec: str | Path | TwoResourceLaw) -> TwoResourceLaw:
    """A built-in constant set by name (``chinchilla``, ``epoch``), or a JSON file (a fit's output)."""
    if isinstance(spec, TwoResourceLaw):
        return spec
    if isinstance(spec, str) and spec in CONSTANTS:
        return CONSTANTS[spec]
    path = Path(spec)
    if not path.is_file():
        from frugalml._validate import nearest

        hint = nearest(str(spec), CONSTANTS)
        raise InvalidArgumentError("constants", str(spec), "is neither a built-in constant set nor a file",
                                   f"Use one of {', '.join(CONSTANTS)}, or a JSON file from 'frugal scaling fit "
                                   "--json'." + (f" Did you mean {hint!r}?" if hint else ""))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgumentError("constants", str(path), f"is not valid JSON ({exc})",
                                   "Pass the JSON 'frugal scaling fit --json' wrote.") from None
    if isinstance(data, dict) and isinstance(data.get("law"), dict):
        data = data["law"]  # the whole output of 'frugal scaling fit --json'
    if not isinstance(data, dict):
        raise InvalidArgumentError("constants", str(path), "must hold a JSON object", "Give E, A, B, alpha, beta.")
    return TwoResourceLaw.from_dict(data, origin=str(path))

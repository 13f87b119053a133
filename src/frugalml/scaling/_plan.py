"""Planning with a two-resource law: compute-optimal allocation, the inverse questions, diagnosis.

Under C = 6 N D, minimising L(N, D) = E + A/N^alpha + B/D^beta gives (Hoffmann et al. 2022, eq. 4)

    N_opt = G (C/6)^a,  D_opt = (C/6)^b / G,  G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta / (alpha + beta),  b = alpha / (alpha + beta).

Given N instead, C/6 = (N/G)^(1/a); given D, C/6 = (D G)^(1/b).

Diagnosis compares a run's (N, D) with the optimum at its own compute C = 6 N D:

- **data-limited**: N > 2 N_opt: too few tokens per parameter; at this compute, a smaller model on
  more data reaches a lower loss;
- **compute-limited**: N < N_opt / 2: a model smaller than compute-optimal, trained on more tokens
  than optimal; its loss is bounded by its capacity, and lowering it needs compute spent on
  parameters (the deliberate choice of inference-efficient, over-trained models);
- **near compute-optimal** otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from frugalml.errors import InvalidArgumentError
from frugalml.scaling._laws import TwoResourceLaw

__all__ = ["Diagnosis", "Plan", "ScalingWarning", "diagnose", "plan"]


@dataclass(frozen=True)
class ScalingWarning:
    kind: str  # extrapolation | overfitting | diminishing_returns | under_used_compute | imbalanced | saturation
    message: str


@dataclass(frozen=True)
class Plan:
    """A compute-optimal allocation: parameters, tokens, FLOPs (6 N D), tokens per parameter, predicted loss."""

    n_params: float
    n_tokens: float
    flops: float
    tokens_per_param: float
    loss: float
    given: str
    law: str
    warnings: list[ScalingWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = [asdict(w) for w in self.warnings]
        return out


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(name, value, "must be a positive, finite number", f"Use e.g. --{name} 1e21."
                                   if name == "flops" else f"Use e.g. --{name.replace('n_', '')} 1e9.")
    return float(value)


def _extrapolation(law: TwoResourceLaw, n: float, d: float, c: float) -> list[ScalingWarning]:
    reasons = law.fitted_range.outside(n_params=n, n_tokens=d, flops=c)
    if not reasons:
        return []
    return [ScalingWarning("extrapolation", f"{'; '.join(reasons)} of the '{law.name}' law: the prediction is an "
                                            "extrapolation and may not hold")]


def plan(law: TwoResourceLaw, *, flops: float | None = None, n_params: float | None = None,
         n_tokens: float | None = None) -> Plan:
    """The compute-optimal allocation for a budget (``flops``), or the compute and data for which
    ``n_params`` is optimal, or the compute and model for which ``n_tokens`` is optimal."""
    given = [k for k, v in (("flops", flops), ("n_params", n_params), ("n_tokens", n_tokens)) if v is not None]
    if len(given) != 1:
        raise InvalidArgumentError("plan", ", ".join(given) or "nothing", "needs exactly one of flops, n_params, "
                                   "n_tokens", "Pass --flops C, or --params N, or --tokens D.")
    G, a, b = law.G, law.a, law.b
    if flops is not None:
        c6 = _positive(flops, "flops") / 6
    elif n_params is not None:
        c6 = (_positive(n_params, "n_params") / G) ** (1 / a)
    else:
        c6 = (_positive(n_tokens, "n_tokens") * G) ** (1 / b)
    n, d = G * c6**a, c6**b / G
    loss = float(law.predict(n, d))
    return Plan(n_params=n, n_tokens=d, flops=6 * c6, tokens_per_param=d / n, loss=loss, given=given[0],
                law=law.name, warnings=_extrapolation(law, n, d, 6 * c6))


@dataclass(frozen=True)
class Diagnosis:
    """Where a run (N, D) sits against the law: its regime, the optimum at its compute, and warnings."""

    regime: str  # data-limited | compute-limited | near compute-optimal
    n_params: float
    n_tokens: float
    flops: float
    tokens_per_param: float
    optimal: Plan
    predicted_loss: float
    loss: float | None
    excess_loss: float  # predicted loss above the optimum at the same compute
    gain_per_doubling: float  # loss drop from doubling compute at the optimal allocation
    warnings: list[ScalingWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["optimal"] = self.optimal.to_dict()
        out["warnings"] = [asdict(w) for w in self.warnings]
        return out


def diagnose(law: TwoResourceLaw, *, n_params: float, n_tokens: float, loss: float | None = None,
             min_gain_per_doubling: float = 0.01, stopped_early_tolerance: float = 0.05,
             saturation_fraction: float = 0.05) -> Diagnosis:
    """Diagnose a planned or actual run (see the module docstring for the regimes).

    Args:
        loss: the run's measured final loss, if it ran: compared with the law's prediction.
        min_gain_per_doubling: below this loss drop per doubling of compute, returns are diminishing.
        stopped_early_tolerance: a measured loss this fraction above the prediction means compute
            was left unused (stopped early, or a worse recipe than the law's runs).
        saturation_fraction: the reducible loss (L - E) below this fraction of L is saturation.
    """
    n, d = _positive(n_params, "n_params"), _positive(n_tokens, "n_tokens")
    if loss is not None:
        loss = _positive(loss, "loss")
    c = 6 * n * d
    best = plan(law, flops=c)
    predicted = float(law.predict(n, d))
    ratio = n / best.n_params
    regime = "data-limited" if ratio > 2 else "compute-limited" if ratio < 0.5 else "near compute-optimal"
    doubled = plan(law, flops=2 * c)
    gain = best.loss - doubled.loss
    warnings = _extrapolation(law, n, d, c)
    if d < n:
        warnings.append(ScalingWarning("overfitting", f"{d:.3g} tokens for {n:.3g} parameters (fewer tokens than "
                                       "parameters): the model can memorise its data, and the law, fitted on runs "
                                       "that did not, over-predicts its quality"))
    if ratio > 4 or ratio < 0.25:
        warnings.append(ScalingWarning("imbalanced", f"the model is {ratio:.2g}x the compute-optimal size "
                                       f"({best.n_params:.3g} parameters on {best.n_tokens:.3g} tokens): the law "
                                       f"predicts {predicted - best.loss:.3g} more loss than the optimum at this "
                                       "compute"))
    if gain < min_gain_per_doubling:
        warnings.append(ScalingWarning("diminishing_returns", f"doubling the compute lowers the optimal loss by only "
                                       f"{gain:.3g} (threshold {min_gain_per_doubling:g})"))
    if (predicted - law.E) < saturation_fraction * predicted:
        warnings.append(ScalingWarning("saturation", f"the predicted loss {predicted:.4g} is within "
                                       f"{100 * saturation_fraction:g}% of the irreducible term E = {law.E:.4g}"))
    if loss is not None and loss > predicted * (1 + stopped_early_tolerance):
        warnings.append(ScalingWarning("under_used_compute", f"the measured loss {loss:.4g} is "
                                       f"{100 * (loss / predicted - 1):.1f}% above the law's {predicted:.4g} for "
                                       "this N and D: the run stopped early or used its compute less well than "
                                       "the runs the law was fitted on"))
    return Diagnosis(regime=regime, n_params=n, n_tokens=d, flops=c, tokens_per_param=d / n, optimal=best,
                     predicted_loss=predicted, loss=loss, excess_loss=predicted - best.loss, gain_per_doubling=gain,
                     warnings=warnings)

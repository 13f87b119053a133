"""Fitting scaling laws to measured (N, D, loss) points, as Hoffmann et al. 2022 did.

Both laws are fitted in log space through a log-sum-exp parametrisation, so every term stays positive:

    log L(N, D) = LSE(a - alpha log N, b - beta log D, e),   A = e^a, B = e^b, E = e^e
    log L(x)    = LSE(a - alpha log x, b),                   A = e^a, B = e^b

minimising the Huber loss (delta = 1e-3) of the residual in log L with L-BFGS-B (analytic gradients)
from a grid of initialisations; the best optimum wins. Hoffmann et al.'s grid for the two-resource law
is alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 starts).
The objective is evaluated at every grid point at once and L-BFGS-B runs from the 64 best (Hoffmann
et al. ran it from all; on the 2-core machine that takes minutes for the same optimum in our tests).
Confidence intervals are percentile bootstrap intervals: points resampled with replacement, each
resample refitted from the full-data optimum.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.scaling._laws import FittedRange, PowerLaw, TwoResourceLaw

__all__ = ["Fit", "Points", "fit_power_law", "fit_two_resource", "load_points"]

log = logging.getLogger(__name__)

HUBER_DELTA = 1e-3


@dataclass(frozen=True)
class Points:
    """Measured training runs: parameters N, training tokens (or samples) D, final loss, and FLOPs
    (``6 N D`` when not given)."""

    n_params: np.ndarray
    n_tokens: np.ndarray
    loss: np.ndarray
    flops: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.loss)

    def subset(self, mask: np.ndarray) -> Points:
        return Points(self.n_params[mask], self.n_tokens[mask], self.loss[mask], self.flops[mask], self.source)


def _floats(values: Sequence[Any], name: str) -> np.ndarray:
    """``values`` as float64, or one DataError naming the first row that is not a number (a stray 'abc'
    in a CSV made the whole column text, and float() failed with an internal error)."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        for i, v in enumerate(list(values)):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(name, f"row {i} = {v!r}", "is not a number",
                                "Give plain numbers (1e9 or 1000000000); fix or drop that run.") from None
        raise


def points_from_arrays(n_params: Sequence[float] | None, n_tokens: Sequence[float] | None, loss: Sequence[float],
                       flops: Sequence[float] | None = None, *, source: str = "points") -> Points:
    """Validate and build :class:`Points`; every bad row is named, never silently dropped."""
    loss_arr = _floats(loss, "loss")
    n = len(loss_arr)

    def column(values: Sequence[float] | None, name: str) -> np.ndarray:
        if values is None:
            return np.full(n, np.nan)
        arr = _floats(values, name)
        if arr.shape != (n,):
            raise DataError(name, f"{arr.size} values", f"has a different length from loss ({n})",
                            "Give one value per run.")
        return arr

    given = {"params": n_params is not None, "tokens": n_tokens is not None, "flops": flops is not None}
    n_params, n_tokens, flops_arr = column(n_params, "params"), column(n_tokens, "tokens"), column(flops, "flops")
    # a column that was given must be complete; one that was not given is absent (all NaN)
    for name, arr, required in (("loss", loss_arr, True), ("params", n_params, given["params"]),
                                ("tokens", n_tokens, given["tokens"]), ("flops", flops_arr, given["flops"])):
        bad_nan = np.flatnonzero(~np.isfinite(arr)) if required else np.array([], int)
        if bad_nan.size:
            raise DataError(name, f"row {int(bad_nan[0])}", f"is not a finite number ({bad_nan.size} row(s): "
                            f"{', '.join(map(str, bad_nan[:5].tolist()))})", "Drop or fix those runs" +
                            ("; a NaN loss usually means the run diverged." if name == "loss" else "."))
        finite = arr[np.isfinite(arr)]
        if finite.size and (finite <= 0).any():
            row = int(np.flatnonzero(np.isfinite(arr) & (arr <= 0))[0])
            raise DataError(name, f"row {row} = {arr[row]:g}", "must be > 0", "Sizes and losses are positive.")
    if np.isnan(flops_arr).all() and not np.isnan(n_params).any() and not np.isnan(n_tokens).any():
        with np.errstate(over="ignore"):
            flops_arr = 6.0 * n_params * n_tokens  # C ~= 6 N D
        overflow = np.flatnonzero(~np.isfinite(flops_arr))
        if overflow.size:
            row = int(overflow[0])
            raise DataError("flops", f"row {row}", f"6 x params x tokens = 6 x {n_params[row]:g} x {n_tokens[row]:g} "
                            "is beyond a float64", "Give params and tokens as counts (1e9, not an exponent).")
    return Points(n_params, n_tokens, loss_arr, flops_arr, source)


_ALIASES = {"params": ("params", "n_params", "parameters", "N"), "tokens": ("tokens", "n_tokens", "samples", "D"),
            "loss": ("loss", "L"), "flops": ("flops", "compute", "C")}


def load_points(path: str | Path) -> Points:
    """Points from a CSV, Parquet or JSON (records, or ``{"points": [...]}``) file with columns
    params, tokens (or samples), loss and optionally flops."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError("data", str(path), "is not a file", "Pass a CSV, Parquet or JSON file of runs.")
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq", ".json", ".jsonl"):
        raise InvalidArgumentError("data", str(path), f"has an unknown extension {suffix!r}",
                                   "Use .csv, .parquet or .json.")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(p)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".json", ".jsonl"):
            import json

            raw = [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if suffix == ".jsonl" \
                else json.loads(p.read_text())
            frame = pd.DataFrame(raw["points"] if isinstance(raw, dict) and "points" in raw else raw)
    except (ValueError, OSError) as exc:
        raise DataError("data", str(path), f"cannot be read ({exc})", "Check the file's format.") from None
    columns: dict[str, Any] = {}
    for key, names in _ALIASES.items():
        found = next((c for c in names if c in frame.columns), None)
        columns[key] = frame[found].to_numpy() if found else None
    if columns["loss"] is None:
        raise DataError("data", str(path), f"has no loss column (columns: {', '.join(map(str, frame.columns))})",
                        "Name the columns params, tokens (or samples), loss and optionally flops.")
    return points_from_arrays(columns["params"], columns["tokens"], columns["loss"], columns["flops"],
                              source=str(path))


# ----------------------------------------------------------------------------- the objective
def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    grad = np.where(small, r, delta * np.sign(r))
    return value, grad


def _objective(theta: np.ndarray, features: np.ndarray, log_loss: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """Huber loss of log L = LSE(terms) and its gradient. ``features``: (k, n) -log resources of each
    power term; theta = (coefficients c_1..c_k, exponents e_1..e_k, constant) for k power terms + 1."""
    k = features.shape[0]
    coef, expo, const = theta[:k], theta[k:2 * k], theta[2 * k]
    terms = np.vstack([coef[:, None] + expo[:, None] * features, np.full((1, features.shape[1]), const)])
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    lse = top + np.log(total)
    weights /= total  # softmax: d lse / d term
    value, grad_r = _huber(lse - log_loss, delta)
    g_terms = weights * grad_r  # (k + 1, n)
    grad = np.concatenate([g_terms[:k].sum(axis=1), (g_terms[:k] * features).sum(axis=1), [g_terms[k].sum()]])
    return float(value.sum()), grad


def _best_starts(starts: list[np.ndarray], features: np.ndarray, log_loss: np.ndarray, delta: float,
                 keep: int) -> list[np.ndarray]:
    """The ``keep`` grid points with the lowest objective, evaluated all at once."""
    if len(starts) <= keep:
        return starts
    theta = np.array(starts)  # (s, 2k + 1)
    k = features.shape[0]
    terms = theta[:, :k, None] + theta[:, k:2 * k, None] * features[None]  # (s, k, n)
    const = np.broadcast_to(theta[:, 2 * k, None, None], (len(starts), 1, features.shape[1]))
    lse = np.logaddexp.reduce(np.concatenate([terms, const], axis=1), axis=1)
    value = _huber(lse - log_loss[None], delta)[0].sum(axis=1)
    return [starts[i] for i in np.argsort(value)[:keep]]


def _minimise(starts: list[np.ndarray], features: np.ndarray, log_loss: np.ndarray, delta: float,
              keep: int = 64) -> np.ndarray:
    """L-BFGS-B from the ``keep`` best grid starts (all of them for small grids); the lowest optimum."""
    from scipy.optimize import minimize

    starts = _best_starts(starts, features, log_loss, delta, keep)
    best, best_value = None, math.inf
    k = features.shape[0]
    # exponents stay non-negative: a loss that grows with scale is not a scaling law
    bounds = [(None, None)] * k + [(0.0, 5.0)] * k + [(None, None)]
    for start in starts:
        # Huber with delta = 1e-3 makes the objective tiny (about delta * |r| per point): tolerances far below
        # scipy's defaults, or L-BFGS stops where it starts.
        res = minimize(_objective, start, args=(features, log_loss, delta), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if np.isfinite(res.fun) and res.fun < best_value:
            best, best_value = res.x, res.fun
    if best is None:
        raise DataError("data", "points", "the fit did not converge from any initialisation",
                        "Check the points (a loss that does not fall with scale cannot be fitted).")
    return best


def _goodness(pred: np.ndarray, loss: np.ndarray) -> dict[str, float]:
    log_res = np.log(pred) - np.log(loss)
    ss_res = float(np.sum(log_res**2))
    ss_tot = float(np.sum((np.log(loss) - np.log(loss).mean()) ** 2))
    rel = np.abs(pred - loss) / loss
    return {"r2_log": 1 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "rmse_log": float(np.sqrt(np.mean(log_res**2))), "mean_abs_rel_error": float(rel.mean()),
            "max_abs_rel_error": float(rel.max())}


def _span(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


@dataclass(frozen=True)
class Fit:
    """A fitted law with its goodness of fit (R^2 and RMSE of log loss, relative errors) and points."""

    law: PowerLaw | TwoResourceLaw
    goodness: dict[str, float]
    n_points: int
    n_boot: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law.to_dict(), "goodness": self.goodness, "n_points": self.n_points,
                "n_boot": self.n_boot, "warnings": self.warnings}


def _check_count(n: int, n_params: int, what: str) -> None:
    if n <= n_params:
        raise DataError("data", f"{n} point(s)", f"are too few to fit the {what} ({n_params} constants)",
                        f"Give at least {n_params + 1} runs (more, spread over the sizes, for useful CIs).")


def _bootstrap(starts: np.ndarray, features: np.ndarray, log_loss: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = log_loss.size
    out = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        if np.unique(rows).size <= starts.size // 2:  # too few distinct points to identify the law
            continue
        out.append(_minimise([starts], features[:, rows], log_loss[rows], HUBER_DELTA))
    return np.array(out)


def _ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))


def fit_power_law(x: Sequence[float], loss: Sequence[float], *, resource: str = "x", n_boot: int = 200,
                  confidence: float = 0.95, seed: int = 0) -> Fit:
    """Fit L(x) = A x^(-alpha) + B (see the module docstring); bootstrap CIs on A, alpha and B."""
    points = points_from_arrays(x, None, loss, source=resource)
    xs = points.n_params
    _check_count(len(points), 3, "power law A x^-alpha + B")
    if np.unique(xs).size < 3:  # three constants: repeats of one or two sizes cannot pin the curve down
        raise DataError(resource, f"{np.unique(xs).size} distinct value(s)", "are too few to fit A x^-alpha + B",
                        f"Give runs at 3 or more different {resource} values (more, spread over the range, for "
                        "useful CIs).")
    features = -np.log(xs)[None, :]
    log_loss = np.log(points.loss)
    starts = [np.array([a, alpha, b]) for a, alpha, b in product(np.arange(0, 26, 5.0), np.arange(0, 2.01, 0.5),
                                                                 np.arange(-1, 1.01, 0.5))]
    best = _minimise(starts, features, log_loss, HUBER_DELTA)
    law_values = {"A": math.exp(best[0]), "alpha": float(best[1]), "B": math.exp(best[2])}
    ci: dict[str, tuple[float, float]] = {}
    boots = _bootstrap(best, features, log_loss, n_boot, seed) if n_boot else np.empty((0, 3))
    if len(boots):
        ci = {"A": _ci(np.exp(boots[:, 0]), confidence), "alpha": _ci(boots[:, 1], confidence),
              "B": _ci(np.exp(boots[:, 2]), confidence)}
    law = PowerLaw(**law_values, resource=resource, fitted_range=FittedRange(x=_span(xs)), ci=ci)
    warnings = []
    if law.alpha < 0.02:
        warnings.append(f"the exponent is near 0 (alpha={law.alpha:.3g}): loss barely changes with {resource} over "
                        "the fitted range, so the law says nothing about scaling it")
    return Fit(law, _goodness(law.predict(xs), points.loss), len(points), len(boots), warnings)


def fit_two_resource(points: Points, *, n_boot: int = 100, confidence: float = 0.95, seed: int = 0,
                     grid: str = "hoffmann") -> Fit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta as Hoffmann et al. 2022 (see the module docstring).

    ``grid``: ``hoffmann`` (their 4,500 starts) or ``coarse`` (alpha, beta in {0.25, 0.75}, e in {-1, 0, 1},
    a, b in {0, 10, 20}: 108 starts, for bootstraps and tests).
    """
    if np.isnan(points.n_params).any() or np.isnan(points.n_tokens).any():
        raise DataError("data", points.source, "needs params and tokens (or samples) for every run",
                        "Add both columns, or fit one resource (frugal scaling fit --single params; "
                        "fit_power_law in Python).")
    # the shape of the data first: five runs of one data size want --single, not a sixth run
    if np.unique(points.n_params).size < 2 or np.unique(points.n_tokens).size < 2:
        raise DataError("data", points.source, "varies only one of params and tokens",
                        "Vary both model size and data size, or fit one resource (frugal scaling fit "
                        "--single params; fit_power_law in Python).")
    _check_count(len(points), 5, "two-resource law E + A/N^alpha + B/D^beta")
    features = np.vstack([-np.log(points.n_params), -np.log(points.n_tokens)])
    log_loss = np.log(points.loss)
    if grid == "hoffmann":
        exps, es, coefs = np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5), np.arange(0, 26, 5.0)
    elif grid == "coarse":
        exps, es, coefs = np.array([0.25, 0.75]), np.array([-1.0, 0.0, 1.0]), np.array([0.0, 10.0, 20.0])
    else:
        raise InvalidArgumentError("grid", grid, "is not one of hoffmann, coarse", "Use grid='hoffmann'.")
    starts = [np.array([a, b, alpha, beta, e]) for a, b, alpha, beta, e in product(coefs, coefs, exps, exps, es)]
    log.info("fitting the two-resource law from %d initialisations", len(starts))
    best = _minimise(starts, features, log_loss, HUBER_DELTA)
    names = ("A", "B", "alpha", "beta", "E")

    def values(theta: np.ndarray) -> dict[str, float]:
        return {"A": math.exp(theta[0]), "B": math.exp(theta[1]), "alpha": float(theta[2]),
                "beta": float(theta[3]), "E": math.exp(theta[4])}

    boots = _bootstrap(best, features, log_loss, n_boot, seed) if n_boot else np.empty((0, 5))
    ci = {}
    if len(boots):
        table = np.array([[values(t)[k] for k in names] for t in boots])
        ci = {k: _ci(table[:, i], confidence) for i, k in enumerate(names)}
    fitted_range = FittedRange(n_params=_span(points.n_params), n_tokens=_span(points.n_tokens),
                               flops=_span(points.flops))
    law = TwoResourceLaw(**values(best), name="fitted", source=f"fitted to {len(points)} runs from {points.source}",
                         fitted_range=fitted_range, ci=ci)
    warnings = []
    if law.alpha < 0.02 or law.beta < 0.02:
        warnings.append(f"an exponent is near 0 (alpha={law.alpha:.3g}, beta={law.beta:.3g}): loss barely changes "
                        "with that resource over the fitted range, so the law cannot say how to allocate it")
    return Fit(law, _goodness(law.predict(points.n_params, points.n_tokens), points.loss), len(points), len(boots),
               warnings)

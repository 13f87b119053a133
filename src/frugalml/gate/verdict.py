"""`gate(model, config, baseline=None) -> Verdict`: measure a model, check every budget, catch regressions.

The verdict is what CI acts on: one row per budget (measured value with its CI, limit, margin,
pass / fail) and, with a baseline, one row per latency batch size saying whether the model got
slower, so that noise alone does not fail a build:

- a baseline model directory is timed head to head with the model (``compare_latency``: 6 rounds,
  alternating), and the p95 regresses only if the model was slower by more than the tolerance in
  every round (the rounds are paired: the machine's drift falls on both alike);
- a stored run was measured at another time, so its p95 regresses only when the model's whole 95%
  confidence interval lies above the run's by more than the tolerance.

Outputs for CI: :meth:`Verdict.to_junit` (test reports), :meth:`Verdict.to_markdown` (a pull
request comment), :meth:`Verdict.to_dict` (JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from frugalml.config import Budgets, FrugalConfig, load_config
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate import Estimate, Evaluator
from frugalml.gate._measure import Measured, measure_model
from frugalml.gate.budgets import BudgetCheck, check_budgets
from frugalml.gate.contexts import get_context
from frugalml.models import ModelHandle, load_model

__all__ = ["Regression", "Verdict", "evaluator_for", "gate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Regression:
    """Latency p95 at one batch size against the baseline's.

    ``method`` is ``"ci"`` (a stored run: ``measured`` and ``baseline`` carry 95% confidence
    intervals, compared whole) or ``"head-to-head"`` (a baseline model raced with the model:
    medians over the rounds, with the range of the rounds as the interval; ``rounds_slower`` of
    ``rounds`` rounds had the model slower by more than the tolerance).
    """

    metric: str
    measured: Estimate
    baseline: Estimate
    tolerance: float
    regressed: bool
    method: str = "ci"
    rounds: int | None = None
    rounds_slower: int | None = None

    @property
    def ratio(self) -> float:
        return self.measured.value / self.baseline.value if self.baseline.value else float("inf")

    def rule(self) -> str:
        """One sentence saying how this row was decided."""
        if self.method == "head-to-head":
            return (f"Timed head to head with the baseline in {self.rounds} alternating rounds (medians over the "
                    f"rounds); a regression is slower by more than {self.tolerance:.0%} in every round.")
        return (f"Against a stored run: a regression's whole 95% CI lies above the baseline's by more than "
                f"{self.tolerance:.0%}.")

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "measured": self.measured.to_dict(), "baseline": self.baseline.to_dict(),
                "tolerance": self.tolerance, "regressed": self.regressed, "ratio": self.ratio,
                "method": self.method, "rounds": self.rounds, "rounds_slower": self.rounds_slower}


@dataclass
class Verdict:
    """The gate's result: budget rows, regression rows, and the overall pass / fail."""

    model: str
    context: str
    checks: list[BudgetCheck]
    regressions: list[Regression] = field(default_factory=list)
    measured: Measured | None = None
    baseline: str | None = None
    run_id: int | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and not any(r.regressed for r in self.regressions)

    @property
    def failed(self) -> list[str]:
        return [c.budget for c in self.checks if not c.passed] + [r.metric for r in self.regressions if r.regressed]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "context": self.context, "passed": self.passed, "failed": self.failed,
                "checks": [c.to_dict() for c in self.checks], "regressions": [r.to_dict() for r in self.regressions],
                "baseline": self.baseline, "run_id": self.run_id,
                "measured": self.measured.to_dict() if self.measured is not None else None}

    def to_markdown(self) -> str:
        lines = [f"### frugal gate: {'✅ pass' if self.passed else '❌ fail'}", "",
                 f"Model `{self.model}`, context `{self.context}`.", "",
                 "| budget | measured (95% CI) | limit | margin | result |", "|---|---|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c.budget} | {_fmt_measured(c)} | {_op(c)} {_num(c.limit)} {c.unit} | "
                         f"{_num(c.margin) if c.margin is not None else '—'} | {_result(c)} |")
        if self.regressions:
            head = self.regressions[0].method == "head-to-head"
            interval = "range over the rounds" if head else "95% CI"
            lines += ["", f"Against baseline `{self.baseline}`:", "",
                      f"| metric | measured ({interval}) | baseline ({interval}) | ratio | result |",
                      "|---|---|---|---|---|"]
            for r in self.regressions:
                lines.append(f"| {r.metric} | {_est(r.measured)} | {_est(r.baseline)} | {r.ratio:.2f}x | "
                             f"{'❌ regression' if r.regressed else '✅ ok'} |")
            lines += ["", self.regressions[0].rule()]
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        cases = [(c.budget, None if c.passed else f"{_fmt_measured(c)} {c.unit} vs limit {_op(c)} {_num(c.limit)}"
                  f"{' (' + c.note + ')' if c.note else ''}") for c in self.checks]
        cases += [(f"regression {r.metric}", f"p95 {_est(r.measured)} vs baseline {_est(r.baseline)} "
                   f"(tolerance {r.tolerance:.0%})" if r.regressed else None) for r in self.regressions]
        suite = ElementTree.Element("testsuite", name="frugal gate", tests=str(len(cases)),
                                    failures=str(sum(1 for _, f in cases if f)), errors="0")
        for name, failure in cases:
            case = ElementTree.SubElement(suite, "testcase", classname=f"frugal.gate.{self.context}", name=name)
            if failure:
                ElementTree.SubElement(case, "failure", message=failure).text = failure
        root = ElementTree.Element("testsuites")
        root.append(suite)
        return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.4g}"


def _op(c: BudgetCheck) -> str:
    return "≤" if c.kind == "max" else "≥"


def _est(e: Estimate) -> str:
    return f"{e.value:.4g} [{e.low:.4g}, {e.high:.4g}]"


def _fmt_measured(c: BudgetCheck) -> str:
    if c.measured is None:
        return f"not measured ({c.note})" if c.note else "not measured"
    if c.low is not None and c.high is not None:
        return f"{c.measured:.4g} [{c.low:.4g}, {c.high:.4g}]"
    return f"{c.measured:.4g}"


def _result(c: BudgetCheck) -> str:
    if c.passed:
        return "✅ pass" + (" (CI straddles the limit)" if c.uncertain else "")
    return "❌ fail"


def evaluator_for(config: FrugalConfig, reference: ModelHandle) -> Evaluator:
    """The evaluator a configuration describes, against ``reference`` (the original model)."""
    data = config.data.load("eval", reference.default_data)
    if data is None:
        raise InvalidArgumentError("data.eval", None, f"{reference.name} has no default dataset",
                                   "Set data.eval in frugal.yaml (a zoo:NAME or a file).")
    return Evaluator(data, reference, task=config.task, limit=config.data.eval_items, seq_len=config.seq_len,
                     seed=config.search.seed, device=get_context(config.context).device)


def effective_budgets(config: FrugalConfig, context: Any, evaluator: Evaluator | None) -> Budgets:
    """The user's budgets over the context's defaults. A context's default subgroup budgets apply
    only where the data has groups (a user's own subgroup budget always applies, and fails with
    "no group column" when there are none)."""
    defaults = context.budgets
    if evaluator is None or evaluator.groups is None:
        defaults = defaults.model_copy(update={"worst_group_drop": None, "subgroup_gap": None})
        if context.budgets.worst_group_drop is not None or context.budgets.subgroup_gap is not None:
            log.info("%s: the data has no group column; the context's subgroup budgets do not apply", context.name)
    return config.budgets.merged_over(defaults)


def _baseline_from_run(store: Any, run_id: int) -> tuple[str, dict[int, Estimate]]:
    record = store.get_run(run_id)
    result = record.result or {}
    found: dict[int, Estimate] = {}
    if "measured" in (result.get("verdict") or {}) and result["verdict"]["measured"]:
        for b, e in result["verdict"]["measured"]["latency_p95_ms"].items():
            found[int(b)] = Estimate(e["value"], e["low"], e["high"])
    elif "latency_ms" in result:
        for b, s in result["latency_ms"].items():
            if "p95_ci_low" in s:
                found[int(b)] = Estimate(s["p95"], s["p95_ci_low"], s["p95_ci_high"])
    if not found:
        raise InvalidArgumentError("baseline", run_id, f"run {run_id} ({record.kind}) has no p95 latency with a "
                                   "confidence interval", "Use a profile or gate run, or a model directory.")
    return f"run {run_id} ({record.name})", found


def gate(model: ModelHandle | str | Path, config: FrugalConfig | str | Path | Mapping[str, Any] | None = None, *,
         baseline: int | str | Path | None = None, tolerance: float = 0.05, store: Any = None,
         evaluator: Evaluator | None = None, reference: ModelHandle | None = None,
         on_progress: Callable[[str], None] | None = None) -> Verdict:
    """Measure ``model`` and check it against the budgets of ``config`` (a FrugalConfig or frugal.yaml).

    Args:
        model: the model under test: an artifact directory from ``frugal compress`` / ``frugal optimize``,
            or anything :func:`frugalml.load_model` takes.
        config: budgets, context and data (a FrugalConfig, a frugal.yaml path or a dict of its keys);
            ``None`` is the built-in default configuration, which is for text embedding models. The
            configuration's ``model`` is the reference quality drops are measured against.
        baseline: a run id in the store or a model directory: flags p95 latency regressions against it.
        tolerance: how much slower than the baseline (a fraction) still passes.
        store: a store URL or Store to record the gate run in; None records nothing.
        evaluator: an :class:`~frugalml.evaluate.Evaluator` for this configuration that already holds the
            reference's outputs (``optimize`` passes its own, so the reference does not run again).
        reference: the original model as a :class:`ModelHandle`, in place of the configuration's
            ``model`` (a model searched with ``optimize(model=...)`` has no path to load it from).
    """
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 10):
        raise InvalidArgumentError("tolerance", tolerance, "must be a fraction >= 0", "Use e.g. 0.05 for 5%.")
    if reference is not None and not isinstance(reference, ModelHandle):
        raise InvalidArgumentError("reference", type(reference).__name__, "must be a ModelHandle",
                                   "Pass load_model(...)'s handle (for an nn.Module: load_model(module, "
                                   "example_inputs=batch)).")
    defaulted = config is None
    if not isinstance(config, FrugalConfig):
        config = load_config(config)
    context = get_context(config.context)
    handle = model if isinstance(model, ModelHandle) else load_model(model)
    if defaulted and reference is None and (handle.task, handle.input_spec.kind) != ("embedding", "text"):
        # The default's reference (zoo:minilm) and data (zoo:stdlib-docs) say nothing about this model.
        raise InvalidArgumentError("config", None, f"the built-in default gates text embedding models against "
                                   f"{config.model} on {config.data.eval}, and {handle.name} is a "
                                   f"{handle.input_spec.kind} {handle.task} model",
                                   "Pass a frugal.yaml (--config on the command line) naming this model's reference "
                                   "(model:) and data (data:); see docs/ci.md.")
    # A baseline model is loaded and checked before anything is measured or recorded.
    base_model = _baseline_model(baseline, handle) if baseline is not None and not _is_run_id(baseline) else None
    opened = None
    if store is not None:
        from frugalml.store import Store, open_store

        opened = store if isinstance(store, Store) else open_store(store)
    run = None
    if opened is not None:
        from frugalml.measure.env import fingerprint

        run = opened.start_run("gate", name=handle.name, env=fingerprint(),
                               config={"model": handle.name, "config": config.to_dict(),
                                       "baseline": str(baseline) if baseline is not None else None,
                                       "tolerance": tolerance})
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        if evaluator is None:
            reference = reference if reference is not None else load_model(config.model)
            evaluator = evaluator_for(config, reference)
        budgets = effective_budgets(config, context, evaluator)
        # Timed on the configured data with its column roles (a CSV's text column need not be 'text').
        timing_data = config.data.load("eval", (reference if reference is not None else handle).default_data)
        measured = measure_model(handle, context=context, budgets=budgets, evaluator=evaluator,
                                 seq_len=config.seq_len, max_time_s=max(config.search.latency_max_s, 3.0),
                                 data=timing_data, on_progress=on_progress)
        verdict = Verdict(model=handle.name, context=context.name, checks=check_budgets(measured, budgets),
                          measured=measured)
        if baseline is not None and _is_run_id(baseline):
            if opened is None:
                from frugalml.store import open_store

                opened = open_store(config.store)
            verdict.baseline, base_p95 = _baseline_from_run(opened, int(str(baseline)))
            for batch, est in sorted(measured.latency_p95_ms.items()):
                if batch in base_p95:
                    b = base_p95[batch]
                    verdict.regressions.append(Regression(
                        f"latency_p95_ms@{batch}", est, b, tolerance, regressed=est.low > b.high * (1 + tolerance)))
        elif base_model is not None:
            verdict.baseline = str(baseline)
            verdict.regressions = _race_baseline(handle, base_model, config, context, timing_data,
                                                 sorted(measured.latency_p95_ms), tolerance, on_progress)
    if run is not None:
        from frugalml.store import Measurement

        verdict.run_id = run.id
        rows = [Measurement(f"budget:{c.budget}", c.measured, c.unit or "ratio")
                for c in verdict.checks if c.measured is not None]
        rows += [Measurement("latency_p95_ms", e.value, "ms", batch=b) for b, e in measured.latency_p95_ms.items()]
        run.finish(result={"verdict": verdict.to_dict(), "passed": verdict.passed}, measurements=rows)
    return verdict


def _is_run_id(baseline: int | str | Path) -> bool:
    return (isinstance(baseline, int) and not isinstance(baseline, bool)) or str(baseline).isdigit()


GATE_ROUNDS = 6  # even: the model and the baseline each run first in half of the rounds


def _baseline_model(baseline: int | str | Path, handle: ModelHandle) -> ModelHandle:
    """The baseline model directory (or file) loaded, checked to take the model's inputs."""
    path = Path(str(baseline))
    if not path.exists():
        raise InvalidArgumentError("baseline", str(path), "is neither a run id nor an existing model path",
                                   "Pass a run id from `frugal runs list` or a model directory.")
    base = load_model(path)
    if base.input_spec.kind != handle.input_spec.kind:
        raise InvalidArgumentError("baseline", str(path), f"takes {base.input_spec.kind} inputs and the model "
                                   f"{handle.name} takes {handle.input_spec.kind} inputs",
                                   "Pass an earlier version of the same model as the baseline.")
    return base


def _race_baseline(handle: ModelHandle, base: ModelHandle, config: FrugalConfig, context: Any, data: Any,
                   batches: list[int], tolerance: float,
                   on_progress: Callable[[str], None] | None) -> list[Regression]:
    """The model against a baseline model, raced head to head at each batch size."""
    from frugalml.measure import compare_latency

    text = handle.input_spec.kind == "text"
    # The same timed seconds per model and batch size as the gate's own measurement.
    round_s = max(config.search.latency_max_s, 3.0) / GATE_ROUNDS
    rows = []
    for batch in batches:
        if on_progress is not None:
            on_progress(f"timing {handle.name} against the baseline {base.name} at batch {batch}")
        race = compare_latency([handle, base], data=data, batch=batch,
                               seq_len=config.seq_len if text else None, device=context.device,
                               rounds=GATE_ROUNDS, round_s=round_s)
        mine, theirs = race.contenders
        slower = sum(m > b * (1 + tolerance) for m, b in zip(mine.p95_by_round_ms, theirs.p95_by_round_ms))
        rows.append(Regression(
            f"latency_p95_ms@{batch}", _over_rounds(mine.p95_ms, mine.p95_by_round_ms),
            _over_rounds(theirs.p95_ms, theirs.p95_by_round_ms), tolerance, regressed=slower == race.rounds,
            method="head-to-head", rounds=race.rounds, rounds_slower=slower))
    return rows


def _over_rounds(value: float, by_round: tuple[float, ...]) -> Estimate:
    return Estimate(value, min(by_round), max(by_round))

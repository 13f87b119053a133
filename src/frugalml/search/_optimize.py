"""`optimize(config) -> SearchResult`: the multi-objective search for the cheapest model that still does the job.

The flow (DESIGN.md, "the main flow"):

1. load the model and measure the baseline's quality on the evaluation data;
2. an Optuna study with two objectives, the primary quality metric and the context's cost
   (p95 latency for edge-cpu, throughput for cloud-gpu, size for mobile, weight bytes for tinyml),
   and the budgets as constraints (violation > 0 is infeasible); its storage is the store URL, so
   every finished trial is committed as it ends and re-running the same command resumes;
3. screening first: the unchanged model and each technique alone; a technique that alone breaks
   the quality budget is never combined further (its later trials are pruned before any work);
4. the sampler (multi-objective TPE by default, NSGA-II or random) proposes recipes; each is
   compressed, evaluated and profiled, locally or as a Ray task;
5. the Pareto front of quality vs cost; among the candidates that meet every budget the context's
   priority picks (lowest cost, then best quality). Each trial was timed once, at its own moment,
   so for a latency or throughput cost the best few (``search.finalists``) are rebuilt and timed
   again head to head in alternating rounds (a run-off), and that decides;
6. the chosen model (the run-off's winner as built, else rebuilt) is saved as an artifact,
   re-measured from disk and gated; the original and the chosen model are profiled in full for
   the report; ``summary.json``, ``report.html`` and ``MODEL_CARD.md`` go beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugalml._json import json_safe
from frugalml.compress._int8 import BACKENDS as INT8_BACKENDS
from frugalml.compress._int8 import int8_bits
from frugalml.config import Budgets, FrugalConfig, load_config
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate import Evaluator
from frugalml.gate._measure import check_device, measure_model
from frugalml.gate.budgets import check_budgets
from frugalml.gate.contexts import Context, get_context
from frugalml.gate.verdict import Verdict, effective_budgets, evaluator_for
from frugalml.measure.devices import native_bf16_cpu
from frugalml.models import ModelHandle, load_model
from frugalml.models._load import OBJECT_PREFIX
from frugalml.search.pareto import pareto_front
from frugalml.search.space import Candidate, implied_broken, screening_params, suggest

if TYPE_CHECKING:
    import torch

__all__ = ["SearchResult", "optimize", "study_name_for"]

log = logging.getLogger(__name__)

QUALITY_BUDGETS = ("quality", "quality_drop", "min_quality")
TIMED_COSTS = ("latency_p95_ms", "throughput_items_per_s")  # costs a run-off re-measures (size is exact)
RUNOFF_ROUNDS = 6  # even: each finalist runs as often early in a round as late


@dataclass
class SearchResult:
    """What :func:`optimize` found.

    Attributes:
        candidates: every finished trial: recipe, quality, cost, budget checks, feasibility.
        pareto: trial numbers on the quality-vs-cost Pareto front (all finished trials).
        chosen: the candidate picked (``None`` when no candidate meets every budget), and ``why``.
        closest: without a feasible candidate, the one with the smallest budget shortfall, and the
            budgets it misses.
        failed: the trials whose recipe raised (number, recipe, error), this run's and resumed ones.
        verdict: the gate's verdict on the saved artifact of the chosen candidate.
        reference: the original model's evaluation (quality before compression, per group).
        budgets: the budgets in force (the user's over the context's defaults).
        profiles: with an output directory, full profiles (latency samples, per-layer roofline) of
            the original (``baseline``) and the saved chosen model (``chosen``), for the report.
        carbon: the grid carbon intensity the report's CO2e uses, and where it comes from.
        runoff: when the finalists were timed again head to head: how (metric, batch, rounds) and
            each finalist's cost in its trial and in the run-off; ``None`` when there was none.
    """

    study: str
    context: str
    objectives: list[str]
    maximize: list[bool]
    candidates: list[dict[str, Any]]
    pareto: list[int]
    chosen: dict[str, Any] | None
    why: str
    closest: dict[str, Any] | None = None
    missed: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    verdict: Verdict | None = None
    run_id: int | None = None
    resumed_trials: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    stopped_early: str | None = None  # why fewer than ``trials`` candidates were measured
    failed: list[dict[str, Any]] = field(default_factory=list)  # trials that raised: number, recipe, error
    reference: dict[str, Any] | None = None
    budgets: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile_runs: dict[str, int] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    carbon: dict[str, Any] = field(default_factory=dict)
    created: str | None = None  # when the search started (UTC, ISO 8601)
    runoff: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.chosen is not None

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "study": self.study, "context": self.context, "objectives": self.objectives, "maximize": self.maximize,
            "candidates": self.candidates, "pareto": self.pareto, "chosen": self.chosen, "why": self.why,
            "closest": self.closest, "missed": self.missed, "out_dir": str(self.out_dir) if self.out_dir else None,
            "verdict": self.verdict.to_dict() if self.verdict is not None else None, "run_id": self.run_id,
            "resumed_trials": self.resumed_trials, "config": self.config, "stopped_early": self.stopped_early,
            "failed": self.failed, "runoff": self.runoff,
            "reference": self.reference, "budgets": self.budgets, "profiles": self.profiles,
            "profile_runs": self.profile_runs, "env": self.env, "carbon": self.carbon, "created": self.created,
        })


def study_name_for(config: FrugalConfig) -> str:
    """A stable study name: the same configuration resumes the same study (trial count aside)."""
    if config.search.study:
        return config.search.study
    key = config.to_dict()
    # What does not change a trial's outcome is left out (the run-off comes after the trials).
    key["search"] = {k: v for k, v in key["search"].items()
                     if k not in ("trials", "executor", "address", "finalists", "timeout_s")}
    key.pop("store", None)
    # What this machine changes about the search is part of the name, so a study never mixes trials
    # measured under other rules; where none applies the name stays as it was.
    machine: dict[str, Any] = {}
    if native_bf16_cpu():
        # The cpu space offers a BF16 cast only on such CPUs (and Optuna refuses a categorical whose
        # choices changed).
        machine["cpu_bf16"] = True
    bits = {backend: int8_bits(backend) for backend in INT8_BACKENDS}
    if bits["torch"] == (8, 8):
        # PyTorch dynamic INT8 runs with 8-bit activations here: the same trial scores differently.
        machine["torch_int8_activation_bits"] = 8
    if any(b.weights == 7 for b in bits.values()):
        # INT8 weights kept to 7 bits here (x86 without VNNI; trials before this rule used 8).
        machine["int8_weight_bits"] = {backend: b.weights for backend, b in bits.items()}
    if machine:
        key["space"] = machine
    return "frugal-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- one trial
class _TrialRunner:
    """Everything a trial needs, built once per process (the driver, or each Ray worker)."""

    def __init__(self, config: FrugalConfig, baseline: ModelHandle | None = None) -> None:
        self.config = config
        self.context = get_context(config.context)
        self.given = baseline  # the caller's object, if any (never modified)
        self.baseline: ModelHandle = baseline if baseline is not None else load_model(config.model)
        if config.task is not None and self.baseline.task != config.task:
            # A copy: a handle passed to optimize(model=...) is the caller's object.
            self.baseline = dataclasses.replace(self.baseline, task=config.task)
        self.evaluator: Evaluator = evaluator_for(config, self.baseline)
        self.budgets: Budgets = effective_budgets(config, self.context, self.evaluator)
        # Datasets with the configuration's column roles (a CSV's text column need not be called 'text').
        default = self.baseline.default_data
        self.eval_data = config.data.load("eval", default)
        self.train_data = config.data.load("train", default)
        self.calibration_data = config.data.load("calibration", default) if config.data.calibration else None

    def build(self, candidate_recipe: Any, on_progress: Callable[[str], None] | None = None) -> ModelHandle:
        """The candidate's model: ``candidate_recipe`` applied to the baseline (the baseline itself
        for an empty recipe), seeded, so a rebuild gives the trial's model."""
        from frugalml.compress import compress

        if len(candidate_recipe) == 0:
            return self.baseline
        return compress(self.baseline, candidate_recipe, data=self.train_data, calibration_data=self.calibration_data,
                        seq_len=self.config.seq_len, seed=self.config.search.seed, device=self.context.device,
                        on_progress=on_progress)

    def run(self, candidate_recipe: Any, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        handle = self.build(candidate_recipe, on_progress)
        measured = measure_model(handle, context=self.context, budgets=self.budgets, evaluator=self.evaluator,
                                 seq_len=self.config.seq_len, max_time_s=self.config.search.latency_max_s,
                                 data=self.eval_data, on_progress=on_progress)
        checks = check_budgets(measured, self.budgets)
        ev = measured.evaluation
        return {
            "quality": ev.quality if ev is not None else None,
            "cost": measured.cost(self.context),
            "checks": [c.to_dict() for c in checks],
            "feasible": all(c.passed for c in checks),
            "quality_ok": all(c.passed for c in checks if c.budget.split(" ")[0] in QUALITY_BUDGETS),
            "measured": measured.to_dict(),
            "skipped": [s for step in handle.metadata.get("compression", {}).get("steps", []) for s in step["skipped"]],
            "duration_s": time.perf_counter() - started,
        }


_RUNNERS: dict[str, _TrialRunner] = {}


def _runner_for(config: FrugalConfig, baseline: ModelHandle | None = None) -> _TrialRunner:
    """The runner of ``config``, built once per process; ``baseline`` is the model object passed to
    :func:`optimize` (its label in ``config.model`` names its weights, so the key stays unique)."""
    key = json.dumps(config.to_dict(), sort_keys=True)
    if key not in _RUNNERS or (baseline is not None and _RUNNERS[key].given is not baseline):
        _RUNNERS.clear()
        _RUNNERS[key] = _TrialRunner(config, baseline)
    return _RUNNERS[key]


def _run_remote(config_dict: dict[str, Any], recipe_dict: dict[str, Any]) -> dict[str, Any]:
    """A trial in a Ray worker: rebuild what it needs from plain data (nothing is pickled from the driver)."""
    from frugalml.compress import Recipe
    from frugalml.config import config_from_dict

    return _runner_for(config_from_dict(config_dict)).run(Recipe.from_dict(recipe_dict))


# ----------------------------------------------------------------------------- executors
class _LocalExecutor:
    parallel = 1

    def __init__(self, runner: _TrialRunner) -> None:
        self.runner = runner

    def submit(self, recipe: Any, on_progress: Callable[[str], None]) -> Any:
        return self.runner.run(recipe, on_progress)

    def wait(self, pending: list[Any]) -> tuple[Any, list[Any]]:
        return pending[0], pending[1:]

    @staticmethod
    def result(ref: Any) -> dict[str, Any]:
        return ref

    def close(self) -> None:
        pass


class _RayExecutor:
    """Trials as Ray tasks: on a cluster (``address``) or a local Ray instance."""

    def __init__(self, config: FrugalConfig) -> None:
        try:
            import ray
        except ImportError:
            raise InvalidArgumentError("executor", "ray", "Ray is not installed",
                                       "Run: pip install 'frugalml[ray]'.") from None
        self.ray = ray
        address = config.search.address
        if address is not None and address != "auto":
            _check_reachable(address)
            if ray.is_initialized():
                ray.shutdown()  # connected elsewhere (a local instance): the user named a cluster
        try:
            if not ray.is_initialized():
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         ignore_reinit_error=True, logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ... by version
            raise InvalidArgumentError("address", address, f"cannot reach a Ray cluster ({type(exc).__name__}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else ''})",
                                       "Check the address (ray://host:10001 or host:6379), or omit it for local "
                                       "Ray.") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.parallel = max(1, cpus // 2)  # two threads per trial: one trial's timing must not starve
        self.remote = ray.remote(num_cpus=min(2, cpus))(_run_remote)
        self.config_dict = config.to_dict()

    def submit(self, recipe: Any, on_progress: Callable[[str], None]) -> Any:
        return self.remote.remote(self.config_dict, recipe.to_dict())

    def wait(self, pending: list[Any]) -> tuple[Any, list[Any]]:
        done, rest = self.ray.wait(pending, num_returns=1)
        return done[0], rest

    def result(self, ref: Any) -> dict[str, Any]:
        return self.ray.get(ref)

    def close(self) -> None:
        pass


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at: Ray itself retries for minutes before giving up."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidArgumentError("address", address, "is not host:port or ray://host:port",
                                   "Pass e.g. --address ray://head-node:10001, or omit it for local Ray.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise InvalidArgumentError("address", address, f"cannot reach a Ray cluster there ({exc.strerror or exc})",
                                   "Check that the Ray head node is running and the port is open, or omit "
                                   "--address for local Ray.") from None


# ----------------------------------------------------------------------------- the study
def _storage(url: str) -> Any:
    import optuna

    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def _sampler(config: FrugalConfig, n_startup: int) -> Any:
    """Budgets reach the samplers as trial constraints (``Trial.set_constraint``, one per budget)."""
    import warnings

    import optuna

    seed = config.search.seed
    if config.search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(20, config.search.trials // 2)), seed=seed)
    if config.search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # multivariate: the techniques interact (quantizing a pruned model is not quantizing the original)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail_abandoned(study: Any, storage: Any) -> int:
    """Mark trials left RUNNING by a killed process on this host as failed; trials of live or
    other-host processes (a team sharing the study) are left alone."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get("owner", ""))
        owner_host, _, pid = owner.rpartition(":")
        if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed += 1
    return failed


def _ranked(candidates: list[dict[str, Any]], context: Context, higher_quality: bool) -> list[dict[str, Any]]:
    """The candidates that meet every budget, best first: the context's cost, then quality, then
    the earlier trial."""
    sign_cost = -1.0 if context.maximize_cost else 1.0
    sign_quality = -1.0 if higher_quality else 1.0
    return sorted((c for c in candidates if c["feasible"]),
                  key=lambda c: (sign_cost * c["cost"], sign_quality * c["quality"], c["number"]))


def _choose(candidates: list[dict[str, Any]], context: Context, higher_quality: bool) -> dict[str, Any] | None:
    ranked = _ranked(candidates, context, higher_quality)
    return ranked[0] if ranked else None


def _closest(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    if not candidates:
        return None, []
    best = min(candidates, key=lambda c: sum(max(0.0, r["violation"]) for r in c["checks"]))
    return best, [r["budget"] for r in best["checks"] if not r["passed"]]


def _model_object(model: ModelHandle | torch.nn.Module, example_inputs: Any,
                  config: FrugalConfig) -> tuple[ModelHandle, FrugalConfig]:
    """The handle of a model passed to :func:`optimize` as an object, and the configuration that
    names it: ``object:NAME@DIGEST`` (the sha256 of its weights, first 12 digits), so the store, the
    report and the study name say which model was searched, and re-running with the same weights
    resumes the same study."""
    import torch

    from frugalml.config import config_from_dict
    from frugalml.models import weights_digest
    from frugalml.search.space import onnx_only

    if isinstance(model, ModelHandle):
        if example_inputs is not None:
            raise InvalidArgumentError("example_inputs", "given", "is only for a torch.nn.Module; a ModelHandle "
                                       "has its own", "Drop example_inputs, or pass the nn.Module itself.")
        handle = model
    elif isinstance(model, torch.nn.Module):
        handle = load_model(model, example_inputs=example_inputs, task=config.task)
    else:
        raise InvalidArgumentError("model", type(model).__name__, "must be a ModelHandle or a torch.nn.Module",
                                   "Pass load_model(...)'s handle or your module (with example_inputs), or name "
                                   "the model in the configuration (model: zoo:NAME or a path).")
    if config.search.executor == "ray":
        raise InvalidArgumentError("executor", "ray", "Ray workers load the model from the configuration, and a "
                                   "model passed as an object exists only in this process",
                                   "Use executor='local', or save the model (an ONNX file or a model directory) "
                                   "and name its path as model: in the configuration.")
    if get_context(config.context).device == "cuda" and onnx_only(handle):
        raise InvalidArgumentError("model", type(handle.module).__name__,
                                   "cannot be rebuilt from safetensors without its code, so its compressed "
                                   "versions are saved as ONNX, and the cloud-gpu search runs PyTorch",
                                   "Search it in a cpu context (edge-cpu, mobile, tinyml), or save it as a "
                                   "Hugging Face model directory.")
    digest = weights_digest(handle)
    label = f"{OBJECT_PREFIX}{handle.name}@{digest[:12] if digest else 'unhashed'}"
    raw = config.to_dict()
    raw["model"] = label
    return handle, config_from_dict(raw, source="optimize(model=...)")


def optimize(
    config: FrugalConfig | str | Path | Mapping[str, Any] | None = None,
    *,
    model: ModelHandle | torch.nn.Module | None = None,
    example_inputs: Any = None,
    out_dir: str | Path | None = None,
    trials: int | None = None,
    timeout_s: float | None = None,
    executor: str | None = None,
    address: str | None = None,
    overwrite: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Search compression recipes for ``config`` (a FrugalConfig, a frugal.yaml path, a dict of its keys,
    or None for the built-in default: zoo:minilm on zoo:stdlib-docs, context edge-cpu).

    Args:
        model: the model to search as an object, in place of the configuration's ``model:``: a
            :class:`ModelHandle` (from :func:`load_model`) or your own ``torch.nn.Module`` (with
            ``example_inputs``, a batch of its inputs). Trials run in this process. A module
            frugalml cannot rebuild without its code is measured and saved as ONNX (cpu contexts).
            With a model and no ``config``, the defaults apply with the model's own default data
            (your own module has none: name ``data.eval`` in the configuration).
        out_dir: where to save the chosen model, ``summary.json`` and ``report.html``; nothing is
            saved when None.
        trials, timeout_s, executor, address: override ``search.trials`` / ``search.timeout_s`` /
            ``search.executor`` / ``search.address``. With a timeout, no new trial starts once that
            many seconds have passed since the trials began (a running one finishes; the run-off
            and saving come after it).
        overwrite: replace an existing ``out_dir``.
        on_progress: called with ``{"done", "total", "message", "best"}`` as the search advances.
    """
    import optuna
    from optuna.trial import TrialState

    if model is not None and config is None:
        config = FrugalConfig()  # the built-in default's data belongs to its model
    elif not isinstance(config, FrugalConfig):
        config = load_config(config)
    overrides: dict[str, Any] = {}
    if trials is not None:
        overrides["trials"] = trials
    if timeout_s is not None:
        overrides["timeout_s"] = timeout_s
    if executor is not None:
        overrides["executor"] = executor
    if address is not None:
        overrides["address"] = address
    if overrides:
        from frugalml.config import config_from_dict

        raw = config.to_dict()
        raw["search"] = {**raw["search"], **overrides}
        config = config_from_dict(raw, source="options")
    if out_dir is not None:
        out_path = Path(out_dir)
        if out_path.exists() and not out_path.is_dir():
            raise InvalidArgumentError("out_dir", str(out_dir), "is a file", "Choose a directory path for the output.")
        if out_path.exists() and any(out_path.iterdir()) and not overwrite:
            raise InvalidArgumentError("out_dir", str(out_dir), "exists and is not empty",
                                       "Choose a new directory, or pass overwrite=True (--overwrite).")
    baseline = None
    if model is not None:
        baseline, config = _model_object(model, example_inputs, config)
    elif example_inputs is not None:
        raise InvalidArgumentError("example_inputs", "given", "is only for a model passed as a torch.nn.Module",
                                   "Pass model=<your module> with it, or drop it.")
    context = get_context(config.context)
    check_device(context)
    families = set(config.search.techniques) & set(context.techniques)
    progress = on_progress or (lambda event: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from frugalml.measure.env import fingerprint
    from frugalml.store import Measurement, fail_on_error, open_store

    store = open_store(config.store)
    env = fingerprint()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run = store.start_run("optimize", name=config.model, env=env, config=config.to_dict())
    with fail_on_error(run):
        progress({"done": 0, "total": config.search.trials, "message": f"loading {config.model}", "best": None})
        runner = _runner_for(config, baseline)
        result = _search(config, context, families, store, progress, TrialState, runner)
        result.env, result.created = env, created
        winner = _runoff(result, config, runner, progress)
        if out_dir is not None:
            _save(result, config, runner, Path(out_dir), store, progress, overwrite=overwrite, built=winner)
    result.run_id = run.id
    chosen = result.chosen
    rows = []
    if chosen is not None:
        rows = [Measurement("quality", float(chosen["quality"]), "ratio"),
                Measurement(f"cost:{context.cost}", float(chosen["cost"]), context.cost.rsplit("_", 1)[-1])]
    run.finish(result=result.to_dict(), measurements=rows)
    return result


def _search(config: FrugalConfig, context: Context, families: set[str], store: Any,
            progress: Callable[[dict[str, Any]], None], TrialState: Any, runner: Any = None) -> SearchResult:
    """The search loop. ``runner`` (default: one built from ``config``) turns a recipe into an outcome;
    benchmarks/search_efficiency.py passes one that replays a measured grid."""
    import optuna

    runner = runner or _runner_for(config)
    progress({"done": 0, "total": config.search.trials, "message": "evaluating the reference", "best": None})
    reference_eval = runner.evaluator.evaluate(runner.baseline)
    higher_quality = reference_eval.higher_is_better[reference_eval.primary]
    maximize = [higher_quality, context.maximize_cost]
    objectives = [reference_eval.primary, context.cost_label]
    storage = _storage(store.url)
    name = study_name_for(config)
    screen = screening_params(runner.baseline, context, families)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                directions=["maximize" if m else "minimize" for m in maximize],
                                sampler=_sampler(config, n_startup=len(screen) + 2))
    existing = study.get_trials(deepcopy=False)
    resumed = sum(1 for t in existing if t.state == TrialState.COMPLETE)
    abandoned = _fail_abandoned(study, storage)
    if abandoned:
        log.info("optimize: %d trial(s) of a killed run marked failed", abandoned)
    if not any(t.user_attrs.get("screening") for t in existing):
        for params in screen:
            study.enqueue_trial(params, user_attrs={"screening": True})
    executor: Any = _RayExecutor(config) if config.search.executor == "ray" else _LocalExecutor(runner)

    def complete() -> list[Any]:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def broken() -> set[str]:
        return {t.user_attrs["broken"] for t in complete() if t.user_attrs.get("broken")}

    def best_text() -> str | None:
        done = [_candidate(t) for t in complete()]
        pick = _choose(done, context, higher_quality)
        if pick is None:
            return None
        return f"#{pick['number']} {pick['recipe_text']}: {objectives[0]} {pick['quality']:.4f}, {pick['cost']:.4g}"

    # The best so far changes only when a trial is told: computed then, not on every progress message.
    best = {"text": best_text()}
    total = config.search.trials
    attempts, limit = 0, total * 5 + len(screen)
    timeout = config.search.timeout_s
    deadline = None if timeout is None else time.monotonic() + timeout
    started = 0  # trials started in this run: the first always starts, whatever the timeout
    timed_out = False
    pending: list[tuple[Any, Any, Candidate]] = []
    seen = {json.dumps(t.user_attrs["recipe"], sort_keys=True) for t in complete() if t.user_attrs.get("recipe")}
    try:
        while True:
            n_done = len(complete())
            while len(pending) < executor.parallel and n_done + len(pending) < total and attempts < limit:
                if deadline is not None and started and time.monotonic() >= deadline:
                    timed_out = True
                    break
                attempts += 1
                trial = study.ask()
                trial.set_user_attr("owner", _owner())
                candidate = suggest(trial, runner.baseline, context, families,
                                    distill_items=config.search.distill_items)
                text = candidate.recipe.describe(details=True)
                key = json.dumps(candidate.recipe.to_dict(), sort_keys=True)
                known_broken = broken()
                bad = [b for c in candidate.components if (b := implied_broken(c, known_broken))]
                if bad or key in seen:
                    trial.set_user_attr("pruned_because", f"{bad[0]} alone breaks the quality budget" if bad
                                        else "same recipe as an earlier trial")
                    study.tell(trial, state=TrialState.PRUNED)
                    continue
                seen.add(key)
                trial.set_user_attr("recipe", candidate.recipe.to_dict())
                trial.set_user_attr("recipe_text", text)
                trial.set_user_attr("components", list(candidate.components))
                progress({"done": n_done, "total": total, "message": f"trial {trial.number}: {text}",
                          "best": best["text"]})
                def message(m: str, n: int = trial.number, d: int = n_done) -> None:
                    progress({"done": d, "total": total, "message": f"trial {n}: {m}", "best": best["text"]})

                try:
                    ref = executor.submit(candidate.recipe, message)
                except Exception as exc:  # noqa: BLE001 - one broken recipe must not end the search
                    _tell_failed(study, trial, exc, TrialState)
                    continue
                pending.append((ref, trial, candidate))
                started += 1
            if not pending:
                break
            ref, _ = executor.wait([p[0] for p in pending])
            index = next(i for i, p in enumerate(pending) if p[0] is ref)
            _, trial, candidate = pending.pop(index)
            try:
                outcome = executor.result(ref)
            except Exception as exc:  # noqa: BLE001
                _tell_failed(study, trial, exc, TrialState)
                continue
            _tell(study, trial, candidate, outcome)
            best["text"] = best_text()
            progress({"done": len(complete()), "total": total, "message": f"trial {trial.number} done",
                      "best": best["text"]})
    except BaseException:
        for _, trial, _ in pending:  # an interrupt keeps every finished trial; unfinished ones are failed
            try:
                study.tell(trial, state=TrialState.FAIL)
            except Exception as exc:  # noqa: BLE001 - already told by a concurrent path
                log.debug("trial %d was already finished: %s", trial.number, exc)
        raise
    finally:
        executor.close()
    candidates = [_candidate(t) for t in complete()]
    failed = [{"number": t.number, "recipe_text": t.user_attrs.get("recipe_text"), "error": t.user_attrs["error"]}
              for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.user_attrs.get("error")]
    stopped_early = None
    if timed_out or len(candidates) < total:
        stopped_early = f"{len(candidates)} of {total} trials"
        if failed:
            # Failed trials count as proposals: say so, or the pruning below would take the blame.
            first = failed[0]
            stopped_early += (f"; {len(failed)} failed (the first, #{first['number']} {first['recipe_text']}: "
                              f"{first['error']})")
        if timed_out:
            stopped_early += (f": no new trial started after the {timeout:g} s time limit (search.timeout_s, "
                              "--timeout); running it again resumes the study")
        else:
            drawn = "repeats, failing recipes or combinations" if failed else "repeats or combinations"
            stopped_early += (f": after {attempts} proposals in this run the sampler kept drawing {drawn} with a "
                              "technique that alone breaks the quality budget; the rest of the space is pruned")
    front_idx = pareto_front([[c["quality"], c["cost"]] for c in candidates], maximize)
    pareto = sorted(candidates[i]["number"] for i in front_idx)
    for c in candidates:
        c["pareto"] = c["number"] in pareto
    chosen = _choose(candidates, context, higher_quality)
    if chosen is not None:
        why = (f"meets every budget and has the best {context.cost_label} among the {sum(c['feasible'] for c in candidates)} "
               f"candidates that do ({context.name}: {context.description})")
        closest, missed = None, []
    else:
        closest, missed = _closest(candidates)
        why = "no candidate meets every budget"
    return SearchResult(study=name, context=context.name, objectives=objectives, maximize=maximize,
                        candidates=candidates, pareto=pareto, chosen=chosen, why=why, closest=closest, missed=missed,
                        resumed_trials=resumed, config=config.to_dict(), stopped_early=stopped_early, failed=failed,
                        reference=reference_eval.to_dict(), budgets=runner.budgets.active())


def _runoff(result: SearchResult, config: FrugalConfig, runner: _TrialRunner,
            progress: Callable[[dict[str, Any]], None]) -> ModelHandle | None:
    """Time the best few candidates again, head to head, and let that pick (see the module docstring).

    Each trial's latency or throughput was measured once, minutes apart from the others', on a
    machine whose speed drifts; neighbouring candidates are often within that drift of each other.
    The finalists (the ``search.finalists`` best by their trials) are rebuilt with the trial's seed
    and raced by :func:`~frugalml.measure.compare_latency` at the context's cost batch; the best
    run-off cost (the median over the rounds of each round's p95, or throughput) wins unless
    another finalist is within the rounds' noise of it, when quality decides (:func:`_runoff_pick`).
    Their quality is not re-measured: a rebuild is the trial's model, and the gate checks the
    saved one. Returns the winner's model (saved as is, not built again), or None without a run-off.
    """
    from frugalml.compress import Recipe
    from frugalml.measure import compare_latency

    context = runner.context
    if result.chosen is None or config.search.finalists < 2 or context.cost not in TIMED_COSTS:
        return None
    higher_quality = bool(result.maximize[0])
    finalists = _ranked(result.candidates, context, higher_quality)[:config.search.finalists]
    if len(finalists) < 2:
        return None
    # After a time limit or an early stop, fewer trials than asked are done: the bar says so.
    done, total = len(result.candidates), config.search.trials
    built: list[tuple[dict[str, Any], ModelHandle]] = []
    for c in finalists:
        progress({"done": done, "total": total, "message": f"run-off: rebuilding #{c['number']}", "best": None})
        try:
            built.append((c, runner.build(Recipe.from_dict(c["recipe"]))))
        except Exception as exc:  # noqa: BLE001 - a finalist that cannot be rebuilt leaves the run-off
            log.warning("run-off: #%d %s could not be rebuilt, left out: %s", c["number"], c["recipe_text"], exc)
    if len(built) < 2:
        return None
    batch = context.cost_batch
    text = runner.baseline.input_spec.kind == "text"
    round_s = config.search.latency_max_s / 3

    def on_round(finished: int, rounds: int) -> None:
        progress({"done": done, "total": total, "best": None,
                  "message": f"run-off: {len(built)} finalists at batch {batch}, round {finished} of {rounds}"})

    race = compare_latency([h for _, h in built], data=runner.eval_data, batch=batch,
                           seq_len=config.seq_len if text else None, device=context.device,
                           rounds=RUNOFF_ROUNDS, round_s=round_s, on_progress=on_round)
    rows = []
    for (c, _), contender in zip(built, race.contenders):
        if context.cost == "latency_p95_ms":
            cost, by_round = contender.p95_ms, list(contender.p95_by_round_ms)
        else:
            cost, by_round = contender.throughput_items_per_s, [batch * 1e3 / m for m in contender.mean_by_round_ms]
        rows.append({"number": c["number"], "recipe_text": c["recipe_text"], "quality": c["quality"],
                     "feasible": True, "trial_cost": c["cost"], "cost": cost, "by_round": by_round})
    winner, tied = _runoff_pick(rows, context, higher_quality)
    trial_pick = result.chosen["number"]
    result.chosen, handle = next((c, h) for c, h in built if c["number"] == winner["number"])
    tie_note = None
    if len(tied) > 1:
        # Among tied finalists quality decides; where their quality is equal, the run-off cost does.
        tie_note = (f"the fastest, #{tied[0]['number']}, was not faster than {_numbers(tied[1:])} in every round, "
                    "so quality decided among them" + ("" if len({r["quality"] for r in tied}) > 1 else
                                                       ", and as theirs is equal, the run-off cost"))
    result.runoff = {"metric": context.cost_label, "batch": batch, "rounds": race.rounds, "round_s": race.round_s,
                     "orders": [list(o) for o in race.orders], "trial_pick": trial_pick,
                     "pick": winner["number"], "tied": [r["number"] for r in tied], "tie_note": tie_note,
                     "finalists": [{k: v for k, v in r.items() if k != "feasible"} for r in rows]}
    result.why += (f"; the {len(rows)} best by their trials were rebuilt and timed again head to head "
                   f"({race.rounds} alternating rounds), " + (f"where {tie_note}" if tie_note else "which decided"))
    if winner["number"] != trial_pick:
        result.why += f" (the trials alone had ranked #{trial_pick} first)"
    log.info("run-off: #%d picked over %s", winner["number"],
             ", ".join(f"#{r['number']} {r['cost']:.4g}" for r in rows))
    return handle


def _runoff_pick(rows: list[dict[str, Any]], context: Context,
                 higher_quality: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run-off's winner, and the finalists tied with the fastest (the fastest first).

    The rounds are paired (every finalist ran in each round, seconds apart), so "faster"
    is decided per round: a finalist is clearly slower than the fastest (by median) only if the
    fastest beat it in every round (a sign test: 6 of 6 has a two-sided p of 0.03). The fastest and
    those it did not beat in every round are tied, and among them quality decides (as it breaks
    cost ties in the search), then the run-off cost, then the earlier trial.
    """
    fastest = _ranked(rows, context, higher_quality)[0]

    def beats_every_round(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return all((x > y) if context.maximize_cost else (x < y) for x, y in zip(a["by_round"], b["by_round"]))

    tied = [fastest] + [r for r in rows if r is not fastest and not beats_every_round(fastest, r)]
    sign_quality = -1.0 if higher_quality else 1.0
    sign_cost = -1.0 if context.maximize_cost else 1.0
    winner = min(tied, key=lambda r: (sign_quality * r["quality"], sign_cost * r["cost"], r["number"]))
    return winner, tied


def _numbers(rows: list[dict[str, Any]]) -> str:
    names = [f"#{r['number']}" for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _tell_failed(study: Any, trial: Any, exc: BaseException, TrialState: Any) -> None:
    log.warning("trial %d failed: %s", trial.number, exc)
    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
    study.tell(trial, state=TrialState.FAIL)


def _tell(study: Any, trial: Any, candidate: Candidate, outcome: dict[str, Any]) -> None:
    for row in outcome["checks"]:
        trial.set_constraint(row["budget"], float(row["violation"]))
    for key in ("quality", "cost", "checks", "feasible", "quality_ok", "measured", "skipped", "duration_s"):
        trial.set_user_attr(key, json_safe(outcome[key]))
    if len(candidate.components) == 1 and not outcome["quality_ok"]:
        trial.set_user_attr("broken", candidate.components[0])  # this technique alone breaks quality
    study.tell(trial, [float(outcome["quality"]), float(outcome["cost"])])


def _candidate(t: Any) -> dict[str, Any]:
    a = t.user_attrs
    return {"number": t.number, "recipe": a.get("recipe"), "recipe_text": a.get("recipe_text"),
            "components": a.get("components", []), "params": t.params, "quality": a.get("quality"),
            "cost": a.get("cost"), "feasible": a.get("feasible", False), "checks": a.get("checks", []),
            "measured": a.get("measured"), "skipped": a.get("skipped", []), "duration_s": a.get("duration_s"),
            "screening": bool(a.get("screening")), "broken": a.get("broken")}


def _save(result: SearchResult, config: FrugalConfig, runner: _TrialRunner, out: Path, store: Any,
          progress: Callable[[dict[str, Any]], None], *, overwrite: bool, built: ModelHandle | None = None) -> None:
    """Save the chosen model (``built``: the run-off's winner, already built; else rebuilt here), gate
    it, profile it and write the reports."""
    from frugalml.compress import Recipe, compress_to_dir
    from frugalml.gate.verdict import gate

    out.mkdir(parents=True, exist_ok=True)
    result.out_dir = out
    pick = result.chosen
    if pick is not None:
        done, total = len(result.candidates), config.search.trials
        progress({"done": done, "total": total, "message": f"saving #{pick['number']}", "best": None})
        model_dir = out / "model"
        recipe = Recipe.from_dict(pick["recipe"])
        compress_to_dir(runner.baseline, recipe, model_dir, data=runner.train_data,
                        calibration_data=runner.calibration_data, seq_len=config.seq_len,
                        seed=config.search.seed, device=runner.context.device, overwrite=True, store=store,
                        compressed=built if built is not None and len(recipe) > 0 else None)
        progress({"done": done, "total": total, "message": "gating the saved model", "best": None})
        result.verdict = gate(model_dir, config, store=store, evaluator=runner.evaluator)
        _profile_for_report(result, config, runner, model_dir, store, progress)
    from frugalml.errors import FrugalError
    from frugalml.measure.energy import default_carbon_intensity, world_average_g_per_kwh

    try:
        g_per_kwh, where = default_carbon_intensity()
    except FrugalError as exc:  # a bad $FRUGAL_REGION must not lose a finished search
        log.warning("CO2e uses the world average: %s", exc)
        g_per_kwh, where = world_average_g_per_kwh(), "world-average ($FRUGAL_REGION not recognised)"
    result.carbon = {"g_per_kwh": g_per_kwh, "source": where}
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    from frugalml.report import write_model_card, write_search_report

    write_search_report(result, out / "report.html")
    if pick is not None:
        write_model_card(result.to_dict(), out / "MODEL_CARD.md")


def report_batches(context: Context) -> list[int]:
    """Batch sizes the report profiles: the context's, with 1 and the powers of 4 between them, for a
    throughput-vs-batch curve."""
    top = max(context.batches)
    return sorted(set(context.batches) | {1} | {4**k for k in range(1, 8) if 4**k < top})


def _profile_for_report(result: SearchResult, config: FrugalConfig, runner: _TrialRunner, model_dir: Path,
                        store: Any, progress: Callable[[dict[str, Any]], None]) -> None:
    """Full profiles of the original and the saved chosen model (samples, per-layer roofline), each a
    ``profile`` run in the store, for the report and the model card."""
    from frugalml.measure import profile

    context = get_context(config.context)
    batches = report_batches(context)
    done, total = len(result.candidates), config.search.trials
    text = runner.baseline.input_spec.kind == "text"
    for label, model in (("baseline", runner.baseline), ("chosen", load_model(model_dir))):
        progress({"done": done, "total": total, "message": f"profiling the {label} model at batch "
                  f"{', '.join(map(str, batches))} for the report", "best": None})
        p = profile(model, data=runner.eval_data, batch_sizes=batches, seq_len=config.seq_len if text else None,
                    device=context.device, max_time_s=config.search.latency_max_s, store=store,
                    energy_min_s=min(1.0, config.search.latency_max_s / 3))
        result.profiles[label] = p.to_dict(include_samples=True)
        if p.run_id is not None:
            result.profile_runs[label] = p.run_id

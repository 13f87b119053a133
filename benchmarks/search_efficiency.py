"""How much of the exhaustive grid's Pareto front does frugalml's search find with 30% of the evaluations?

Space: frugalml's edge-cpu recipe space for zoo:digits-cnn on zoo:digits (structure: none | channels
25% | channels 50%, each followed by distillation; low-rank: none | 0.95 | 0.9; runtime: torch | onnx;
quantize: none | dynamic (keep_fp32 none | auto) | static INT8), budget quality drop <= 0.02.

1. Every recipe of the grid is built and measured once, with the search's own trial runner
   (compress, evaluate against the original, profile p95 latency at batch 1).
2. frugalml's search (the real optimize loop: screening, accuracy-aware pruning, multi-objective TPE)
   runs with a budget of 30% of the grid's evaluations, 5 seeds, replaying the measured table, so
   every method sees identical numbers and only sample efficiency differs. Random sampling with the
   same budget is measured as a peer.
3. Hypervolume of the feasible points (quality drop within budget) in the (accuracy up, p95 latency
   down) plane, reference point (accuracy floor, the grid's slowest p95), relative to the grid's.

Target: >= 95% of the grid's hypervolume at <= 30% of its evaluations.

    python benchmarks/search_efficiency.py            # writes benchmarks/results/search_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from frugalml.compress import Recipe
from frugalml.config import config_from_dict
from frugalml.gate import get_context
from frugalml.measure.env import fingerprint
from frugalml.search import hypervolume_2d
from frugalml.search._optimize import _runner_for, _search
from frugalml.search.space import suggest

log = logging.getLogger("search_efficiency")


class _EnumTrial:
    """Walks a define-by-run space: returns the given choices, then the first option of each new one."""

    def __init__(self, prefix: list[Any]) -> None:
        self.prefix, self.calls, self.params = prefix, [], {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        index = len(self.calls)
        value = self.prefix[index] if index < len(self.prefix) else choices[0]
        self.calls.append((name, list(choices)))
        self.params[name] = value
        return value


def enumerate_space(handle: Any, context: Any, families: set[str]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack: list[list[Any]] = [[]]
    while stack:
        prefix = stack.pop()
        trial = _EnumTrial(prefix)
        candidate = suggest(trial, handle, context, families, distill_items=800)
        key = json.dumps(candidate.recipe.to_dict(), sort_keys=True)
        found.setdefault(key, {"params": dict(trial.params), "recipe": candidate.recipe.to_dict(),
                               "recipe_text": candidate.recipe.describe() or "(empty)"})
        for depth in range(len(prefix), len(trial.calls)):
            chosen = [trial.params[n] for n, _ in trial.calls[:depth]]
            for option in trial.calls[depth][1][1:]:
                stack.append(chosen + [option])
    return list(found.values())


class _Replay:
    """A trial runner that answers from the measured grid and counts the evaluations asked of it."""

    def __init__(self, real: Any, table: dict[str, dict[str, Any]]) -> None:
        self.baseline, self.evaluator, self.budgets = real.baseline, real.evaluator, real.budgets
        self.table, self.evaluations = table, 0

    def run(self, recipe: Recipe, on_progress: Any = None) -> dict[str, Any]:
        self.evaluations += 1
        return self.table[json.dumps(recipe.to_dict(), sort_keys=True)]


def feasible_points(outcomes: list[dict[str, Any]]) -> list[list[float]]:
    return [[o["quality"], o["cost"]] for o in outcomes if o["feasible"]]


def main() -> None:
    from optuna.trial import TrialState

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search_efficiency.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("frugalml.measure.flops", "root", "torchao"):  # "root": ONNX Runtime's quantizer advice
        logging.getLogger(noisy).setLevel(logging.ERROR)
    log.setLevel(logging.INFO)

    tmp = tempfile.TemporaryDirectory()
    base = {"model": "zoo:digits-cnn", "data": "zoo:digits", "context": "edge-cpu", "store": f"sqlite:///{tmp.name}/s.db",
            "budgets": {"quality_drop": 0.02}, "search": {"latency_max_s": 1.0}}
    config = config_from_dict(base)
    context = get_context("edge-cpu")
    families = set(config.search.techniques) & set(context.techniques)
    real = _runner_for(config)
    grid = enumerate_space(real.baseline, context, families)
    log.info("grid: %d recipes", len(grid))
    table: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for i, item in enumerate(grid):
        outcome = real.run(Recipe.from_dict(item["recipe"]))
        table[json.dumps(item["recipe"], sort_keys=True)] = outcome
        log.info("grid %d/%d %s: accuracy %.4f p95 %.3f ms feasible %s", i + 1, len(grid), item["recipe_text"],
                    outcome["quality"], outcome["cost"], outcome["feasible"])
    grid_s = time.perf_counter() - started
    reference_quality = real.evaluator.evaluate(real.baseline).quality - 0.02
    reference = [reference_quality, max(o["cost"] for o in table.values()) * 1.01]
    grid_hv = hypervolume_2d(feasible_points(list(table.values())), [True, False], reference)
    budget = math.floor(args.fraction * len(grid))

    from frugalml.store import open_store

    runs: dict[str, list[dict[str, Any]]] = {"frugalml (screening + TPE)": [], "random sampling": []}
    for sampler, label in (("tpe", "frugalml (screening + TPE)"), ("random", "random sampling")):
        for seed in range(args.seeds):
            cfg = config_from_dict({**base, "search": {**base["search"], "trials": budget, "seed": seed,
                                                       "sampler": sampler, "study": f"{sampler}-{seed}"}})
            replay = _Replay(real, table)
            store = open_store(cfg.store)
            if sampler == "random":
                result = _search_random(cfg, table, replay, seed, budget)
            else:
                result = _search(cfg, context, families, store, lambda e: None, TrialState, runner=replay).candidates
            points = feasible_points(result)
            hv = hypervolume_2d(points, [True, False], reference)
            runs[label].append({"seed": seed, "evaluations": replay.evaluations, "hypervolume": hv,
                                "ratio": hv / grid_hv if grid_hv else None, "feasible": len(points)})
            log.info("%s seed %d: %d evaluations, %.1f%% of the grid's hypervolume", label, seed,
                        replay.evaluations, 100 * hv / grid_hv)
    summary = {
        label: {"ratio_mean": statistics.mean(r["ratio"] for r in rows), "ratio_min": min(r["ratio"] for r in rows),
                "ratio_max": max(r["ratio"] for r in rows),
                "evaluations_mean": statistics.mean(r["evaluations"] for r in rows)}
        for label, rows in runs.items()
    }
    doc = {
        "benchmark": "search_efficiency", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
        "setup": {"model": "zoo:digits-cnn", "data": "zoo:digits", "context": "edge-cpu", "budgets": base["budgets"],
                  "grid_size": len(grid), "evaluation_budget": budget, "fraction": args.fraction, "seeds": args.seeds,
                  "reference_point": reference, "objectives": ["accuracy (max)", "p95 latency ms at batch 1 (min)"],
                  "grid_measure_s": grid_s},
        "grid": [{"recipe_text": g["recipe_text"], "params": g["params"],
                  **{k: table[json.dumps(g["recipe"], sort_keys=True)][k] for k in ("quality", "cost", "feasible")}}
                 for g in grid],
        "grid_hypervolume": grid_hv, "runs": runs, "summary": summary,
        "target": {"ratio": 0.95, "fraction": 0.3},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(summary, indent=2))  # noqa: T201 - a benchmark script's report


def _search_random(cfg: Any, table: dict[str, dict[str, Any]], replay: _Replay, seed: int,
                   budget: int) -> list[dict[str, Any]]:
    """The peer: ``budget`` distinct grid points drawn uniformly at random."""
    import random

    keys = sorted(table)
    random.Random(seed).shuffle(keys)
    out = []
    for key in keys[:budget]:
        out.append(replay.run(Recipe.from_dict(json.loads(key))))
    return out


if __name__ == "__main__":
    main()

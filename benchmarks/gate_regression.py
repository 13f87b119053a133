"""How often the gate's two baseline rules flag a latency regression on this machine: a model gated
against itself (every flag is a false alarm) and a model made slower (every miss is a missed regression).

The two rules of ``frugal gate --baseline`` (docs/ci.md):

- ``stored run``: the baseline model was profiled just before the gate (a ``profile`` run in the store,
  ``--baseline RUN_ID``); a batch size's p95 regresses when the model's whole 95% CI lies above the
  run's by more than the tolerance;
- ``head to head``: the baseline model directory (``--baseline DIR``) is raced with the model in 6
  alternating rounds; the p95 regresses when the model was slower by more than the tolerance in every
  round.

Models, both ONNX artifacts made by frugalml: zoo:digits-cnn exported as is (the baseline), and the
same network in a wrapper that also runs it on every fourth item of the batch, so it does 1.25x the
work at batch 32 and 2x at batch 1 (a real slowdown, not a sleep). Conditions and rules alternate in
every repeat. Tolerance 5%, the gate's default; each gate times 3 s per model and batch size.

    python benchmarks/gate_regression.py [--repeats 10]   # writes benchmarks/results/gate_regression.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from frugalml import load_model, profile
from frugalml.compress import ExportOnnx, compress_to_dir
from frugalml.config import config_from_dict
from frugalml.gate import gate
from frugalml.measure.env import fingerprint

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.05
BATCHES = (1, 32)  # edge-cpu's


class Slower(torch.nn.Module):
    """The network, plus the same network on every fourth item (its result scaled to nothing)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + 1e-12 * self.net(x[::4]).mean()


def _models(tmp: Path) -> tuple[Path, Path]:
    base = load_model("zoo:digits-cnn")
    base_dir, slow_dir = tmp / "baseline", tmp / "slower"
    compress_to_dir(base, [ExportOnnx()], base_dir)
    slow = load_model(Slower(base.module), example_inputs=torch.randn(4, *base.input_spec.item_shape),
                      task="classification", name="digits-cnn-slower")
    compress_to_dir(slow, [ExportOnnx()], slow_dir)
    return base_dir, slow_dir


def _row(verdict, rule: str, condition: str, repeat: int, seconds: float) -> dict:
    return {"repeat": repeat, "condition": condition, "rule": rule, "seconds": round(seconds, 1),
            "regressions": {r.metric: {"regressed": r.regressed, "ratio": r.ratio, "rounds_slower": r.rounds_slower,
                                       "measured": r.measured.to_dict(), "baseline": r.baseline.to_dict()}
                            for r in verdict.regressions}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gate_regression.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = f"sqlite:///{tmp / 'runs.db'}"
        base_dir, slow_dir = _models(tmp)
        config = config_from_dict({"model": "zoo:digits-cnn", "data": "zoo:digits", "store": store,
                                   "budgets": {"quality_drop": 1.0}, "search": {"latency_max_s": 3.0}})
        for repeat in range(args.repeats):
            conditions = ("same", "slower") if repeat % 2 == 0 else ("slower", "same")
            for condition in conditions:
                model = base_dir if condition == "same" else slow_dir
                rules = ("stored run", "head to head") if repeat % 2 == 0 else ("head to head", "stored run")
                for rule in rules:
                    started = time.perf_counter()
                    if rule == "stored run":
                        run = profile(base_dir, batch_sizes=list(BATCHES), max_time_s=3.0, layers=False, store=store)
                        verdict = gate(model, config, baseline=run.run_id, tolerance=TOLERANCE)
                    else:
                        verdict = gate(model, config, baseline=base_dir, tolerance=TOLERANCE)
                    row = _row(verdict, rule, condition, repeat, time.perf_counter() - started)
                    rows.append(row)
                    flags = ", ".join(f"{m}: {'REGRESSION' if r['regressed'] else 'ok'} ({r['ratio']:.2f}x)"
                                      for m, r in row["regressions"].items())
                    print(f"repeat {repeat} {condition:6} {rule:12} {flags}", flush=True)  # noqa: T201
    summary = {}
    for rule in ("stored run", "head to head"):
        for condition in ("same", "slower"):
            mine = [r for r in rows if r["rule"] == rule and r["condition"] == condition]
            summary[f"{rule} / {condition}"] = {
                f"latency_p95_ms@{b}": {
                    "flagged": sum(r["regressions"][f"latency_p95_ms@{b}"]["regressed"] for r in mine),
                    "of": len(mine),
                    "median_ratio": sorted(r["regressions"][f"latency_p95_ms@{b}"]["ratio"] for r in mine)[len(mine) // 2],
                } for b in BATCHES}
    doc = {"benchmark": "gate_regression", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
           "setup": {"baseline": "zoo:digits-cnn as ONNX", "slower": "the same network plus itself on every fourth "
                     "item (1.25x the work at batch 32, 2x at batch 1)", "tolerance": TOLERANCE,
                     "batches": list(BATCHES), "repeats": args.repeats, "timed_s_per_model_and_batch": 3.0},
           "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for key, value in summary.items():
        print(key, {m: f"{v['flagged']}/{v['of']} (median {v['median_ratio']:.2f}x)" for m, v in value.items()})  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

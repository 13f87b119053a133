"""The subgroup point: a compression that keeps the average accuracy but loses an under-represented group.

zoo:digits-fair rotates 10% of the digits (the ``rotated`` group). zoo:digits-fair-cnn, trained on the
mix, is pruned with global magnitude pruning at several sparsities; each result is evaluated against
the original (overall and per group, bootstrap CIs) and gated with the budgets of
examples/digits-fair.yaml (average accuracy drop <= 0.03, worst-group drop <= 0.05).

    python benchmarks/subgroup_gate.py      # writes benchmarks/results/subgroup_gate.json
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from frugalml.compress import PruneMagnitude, compress_to_dir
from frugalml.config import load_config
from frugalml.gate import gate
from frugalml.measure.env import fingerprint

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("frugalml.measure.flops", "root", "torchao"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    config = load_config(ROOT / "examples" / "digits-fair.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for amount in (0.5, 0.7, 0.8, 0.85):
            out = Path(tmp) / f"pruned-{amount}"
            compress_to_dir(config.model, [PruneMagnitude(amount=amount)], out, data="zoo:digits-fair")
            verdict = gate(out, config)
            ev = verdict.measured.evaluation
            checks = {c.budget.split(" ")[0]: c for c in verdict.checks}
            rows.append({
                "sparsity": amount, "accuracy": ev.overall["accuracy"].to_dict(),
                "drop": ev.drop["accuracy"].to_dict(), "by_group": ev.by_group, "group_drop": ev.group_drop,
                "passes_average_budget": checks["quality_drop"].passed,
                "passes_worst_group_budget": checks["worst_group_drop"].passed, "gate_passed": verdict.passed,
            })
            print(f"sparsity {amount}: drop {ev.drop['accuracy'].value:.4f}, rotated drop "  # noqa: T201
                  f"{ev.group_drop['rotated']:.4f}, gate {'pass' if verdict.passed else 'FAIL'}")
    caught = [r["sparsity"] for r in rows if r["passes_average_budget"] and not r["passes_worst_group_budget"]]
    doc = {"benchmark": "subgroup_gate", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
           "setup": {"model": config.model, "data": config.data.eval, "budgets": config.budgets.active(),
                     "groups": {"rotated": "10% of each digit, rotated 90 degrees", "upright": "the rest"}},
           "rows": rows, "caught_by_worst_group_budget_only": caught}
    out = ROOT / "benchmarks" / "results" / "subgroup_gate.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

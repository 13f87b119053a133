"""Differential privacy vs accuracy: `frugal train --dp` on zoo:digits at epsilon 1, 3 and 8 vs non-private.

The digits MLP trained from scratch (full, AdamW lr 3e-3, batch 64 with Poisson sampling under DP, 30
epochs, no early stopping: patience 30), per-sample clipping norm 1.0, delta 1e-5 (below 1/N = 1/1,293),
Opacus's PRV accountant; 3 seeds per setting, all in one process, settings interleaved per seed. The
accountant's spent epsilon is recorded per run.

    python benchmarks/train_dp.py [--seeds 3] [--out benchmarks/results/train_dp.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SETTINGS = {"model": "zoo:digits-mlp", "data": "zoo:digits", "init": "scratch", "method": "full", "epochs": 30,
            "patience": 30, "batch_size": 64}
EPSILONS = (1.0, 3.0, 8.0)
DELTA = 1e-5


def main() -> None:
    from frugalml.measure.env import fingerprint
    from frugalml.train import PrivacySettings, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_dp.json")
    args = parser.parse_args()
    labels = ["non-private", *(f"epsilon={e:g}" for e in EPSILONS)]
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for seed in range(args.seeds):
        for label, epsilon in zip(labels, (None, *EPSILONS)):
            privacy = PrivacySettings(epsilon=epsilon, delta=DELTA) if epsilon is not None else None
            r = train(**SETTINGS, seed=seed, privacy=privacy, record=False)
            runs[label].append({"seed": seed, "test_accuracy": r.test_accuracy, "train_seconds": r.train_seconds,
                                "privacy": r.privacy})
            print(f"seed {seed} {label}: {r.test_accuracy:.4f}", flush=True)
    summary = {}
    for label, rs in runs.items():
        accuracy = [r["test_accuracy"] for r in rs]
        entry = {"accuracy_mean": statistics.mean(accuracy), "accuracy_std": statistics.pstdev(accuracy),
                 "accuracy": accuracy, "train_seconds_median": statistics.median(r["train_seconds"] for r in rs)}
        if rs[0]["privacy"] is not None:
            entry.update({"epsilon_spent": [r["privacy"]["epsilon_spent"] for r in rs],
                          "noise_multiplier": rs[0]["privacy"]["noise_multiplier"],
                          "sample_rate": rs[0]["privacy"]["sample_rate"], "steps": rs[0]["privacy"]["steps"]})
        summary[label] = entry
    base = summary["non-private"]["accuracy_mean"]
    for label in labels[1:]:
        summary[label]["points_vs_non_private"] = 100 * (summary[label]["accuracy_mean"] - base)
    doc = {"benchmark": "train_dp", "machine": fingerprint(), "settings": SETTINGS, "seeds": args.seeds,
           "privacy": {"delta": DELTA, "accountant": "prv (Opacus)", "max_grad_norm": 1.0,
                       "unit": "one training row", "mechanism": "DP-SGD, Poisson sampling"},
           "results": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: {m: v for m, v in s.items() if m != "accuracy"} for k, s in summary.items()}, indent=2))


if __name__ == "__main__":
    main()

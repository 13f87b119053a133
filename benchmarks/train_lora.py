"""LoRA vs full fine-tuning (and head-only) of zoo:minilm on the stdlib-docs module-family task.

`frugal train` for each method on the same 2,000 training sentences (seed 0, stratified), 672 validation
sentences for early stopping, the 1,665 test sentences, max 64 tokens, batch 32, up to 4 epochs
(patience 2), learning rates at their defaults (full 5e-5, LoRA 1e-3 with r=8 on query/value, head 2e-3).
Each method runs in a fresh process (so peak RSS is its own), methods in the order given and then in
reverse with --repeats 2 (alternating to cancel drift); time per epoch is the median over all epochs
of all repeats, with min and max.

    python benchmarks/train_lora.py [--methods lora,full,head] [--repeats 1] [--out benchmarks/results/train_lora.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SETTINGS = {"max_train_items": 2000, "epochs": 4, "patience": 2, "max_seq_len": 64, "batch_size": 32, "seed": 0}


def one(method: str) -> dict:
    from frugalml.train import train

    result = train(method=method, record=False, **SETTINGS)
    return result.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="lora,full,head")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_lora.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one)))
        return
    from frugalml.measure.env import fingerprint

    methods = args.methods.split(",")
    order = [m for r in range(args.repeats) for m in (methods if r % 2 == 0 else methods[::-1])]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for method in order:
        done = subprocess.run([sys.executable, __file__, "--one", method], capture_output=True, text=True, check=True)
        runs[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{method}: test accuracy {runs[method][-1]['test_accuracy']:.4f}", file=sys.stderr, flush=True)
    summary = {}
    for method, results in runs.items():
        epochs = [h["seconds"] for r in results for h in r["history"]]
        first = results[0]
        summary[method] = {
            "test_accuracy": statistics.median(r["test_accuracy"] for r in results),
            "baseline_test_accuracy": first["baseline_test_accuracy"],
            "best_validation_accuracy": first["validation_accuracy"], "epochs_run": first["epochs_run"],
            "best_epoch": first["best_epoch"], "params_trainable": first["params_trainable"],
            "params_total": first["params_total"], "trainable_fraction": first["trainable_fraction"],
            "epoch_seconds": {"median": statistics.median(epochs), "min": min(epochs), "max": max(epochs),
                              "n": len(epochs)},
            "train_seconds": statistics.median(r["train_seconds"] for r in results),
            "peak_rss_bytes": statistics.median(r["peak_memory_bytes"] for r in results),
            "energy_j": statistics.median(r["energy_j"] for r in results), "energy_source": first["energy_source"],
            "adapter_bytes": first["adapter_bytes"], "history": [r["history"] for r in results],
        }
    full = summary.get("full")
    ratios = {}
    if full:
        for method, s in summary.items():
            if method != "full":
                ratios[method] = {"trainable_params_vs_full": s["params_trainable"] / full["params_trainable"],
                                  "epoch_time_vs_full": s["epoch_seconds"]["median"] / full["epoch_seconds"]["median"],
                                  "peak_rss_vs_full": s["peak_rss_bytes"] / full["peak_rss_bytes"],
                                  "accuracy_points_vs_full": 100 * (s["test_accuracy"] - full["test_accuracy"])}
    doc = {"benchmark": "train_lora", "machine": fingerprint(), "model": "zoo:minilm", "data": "zoo:stdlib-docs",
           "settings": SETTINGS, "repeats": args.repeats, "order": order, "methods": summary, "ratios": ratios,
           "memory_note": "peak process RSS sampled every 50 ms during training (model and data included)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({m: {k: v for k, v in s.items() if k != "history"} for m, s in summary.items()}, indent=2))
    print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()

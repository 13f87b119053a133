"""Federated learning on zoo:digits: FedAvg / FedProx with 20 non-IID clients vs centralised training, and
int8 update compression. `frugal federated simulate` (Flower simulation engine, Ray backend).

20 clients, Dirichlet alpha 0.5 over the 1,437 training rows, 50 rounds, every client every round, 2 local
epochs of SGD (lr 0.05, momentum 0.9, batch 16), the digits MLP from scratch; accuracy of the global model
on the 360 test rows after every round. Centralised reference: the same model, optimizer and batch size
on all training rows for 100 epochs (the same passes over each row). Runs: FedAvg with float32 and with
int8 updates for seeds 0-2 (interleaved), FedProx (mu 0.01) and FedAvg with per-client DP (epsilon 8)
for seed 0. Targets: FedAvg within 3 points of centralised; int8 updates >= 3.5x fewer bytes sent at
<= 1 point of accuracy.

    python benchmarks/federated_digits.py [--seeds 3] [--out benchmarks/results/federated_digits.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COMMON = {"clients": 20, "rounds": 50, "alpha": 0.5, "local_epochs": 2, "lr": 0.05, "batch_size": 16}


def _slim(result: dict) -> dict:
    return {"final_accuracy": result["final_accuracy"], "centralized_accuracy": result["centralized_accuracy"],
            "gap_points": None if result["gap"] is None else 100 * result["gap"],
            "upload_bytes": result["upload_bytes"], "download_bytes": result["download_bytes"],
            "upload_bytes_float32": result["upload_bytes_float32"], "seconds": result["seconds"],
            "privacy": result["privacy"], "failures": result["failures"], "partition": result["partition"],
            "accuracy_per_round": [r["accuracy"] for r in result["rounds"]],
            "upload_bytes_per_round": [r.get("upload_bytes") for r in result["rounds"]]}


def main() -> None:
    from frugalml.measure.env import fingerprint
    from frugalml.train import PrivacySettings
    from frugalml.train._federated import simulate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "federated_digits.json")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"fedavg": [], "fedavg-int8": []}
    for seed in range(args.seeds):
        for name, compress in (("fedavg", "none"), ("fedavg-int8", "int8")):
            r = simulate(**COMMON, strategy="fedavg", compress_updates=compress, seed=seed, record=False,
                         centralized=compress == "none").to_dict()
            runs[name].append(_slim(r))
            print(f"seed {seed} {name}: {r['final_accuracy']:.4f} (centralised {r['centralized_accuracy']})",
                  flush=True)
    runs["fedprox"] = [_slim(simulate(**COMMON, strategy="fedprox", mu=0.01, seed=0, record=False,
                                      centralized=False).to_dict())]
    runs["fedavg-dp-eps8"] = [_slim(simulate(**COMMON, strategy="fedavg", privacy=PrivacySettings(epsilon=8),
                                             seed=0, record=False, centralized=False).to_dict())]
    fedavg = runs["fedavg"]
    mean = statistics.mean
    central = mean(r["centralized_accuracy"] for r in fedavg)
    summary = {name: {"final_accuracy_mean": mean(r["final_accuracy"] for r in rs),
                      "final_accuracy": [r["final_accuracy"] for r in rs],
                      "upload_bytes_per_run": mean(r["upload_bytes"] for r in rs),
                      "seconds_median": statistics.median(r["seconds"] for r in rs)} for name, rs in runs.items()}
    gap = 100 * (central - summary["fedavg"]["final_accuracy_mean"])
    bytes_ratio = summary["fedavg"]["upload_bytes_per_run"] / summary["fedavg-int8"]["upload_bytes_per_run"]
    cost = 100 * (summary["fedavg"]["final_accuracy_mean"] - summary["fedavg-int8"]["final_accuracy_mean"])
    doc = {"benchmark": "federated_digits", "machine": fingerprint(), "settings": COMMON, "seeds": args.seeds,
           "centralized_accuracy_mean": central, "summary": summary,
           "targets": {"fedavg_gap_points": gap, "fedavg_within_3_points": gap <= 3.0,
                       "int8_upload_bytes_ratio": bytes_ratio, "int8_accuracy_cost_points": cost,
                       "int8_met": bytes_ratio >= 3.5 and cost <= 1.0},
           "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({"summary": summary, "targets": doc["targets"], "centralized": central}, indent=2))


if __name__ == "__main__":
    main()

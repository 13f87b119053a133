"""What does a cascade buy? zoo:digits-mlp (small) escalating to zoo:digits-cnn (large) on zoo:digits' test
split, through the server's own `Cascade` stage, per confidence threshold: share escalated, accuracy, and
the time to answer the 360 test items in batches of 32 (median of 7 repeats, every threshold and both
single models measured in the same rounds, in rotating order).

    python benchmarks/serve_cascade.py [--out benchmarks/results/serve_cascade.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from frugalml.datasets import load_dataset
    from frugalml.measure.env import fingerprint
    from frugalml.serve import Cascade, ServedModel
    from frugalml.serve._metrics import ServeMetrics
    from frugalml.serve._stages import Single

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "serve_cascade.json")
    args = parser.parse_args()
    data = load_dataset("zoo:digits", split="test")
    x, y = data.features().tolist(), data.labels()
    small, large = ServedModel("zoo:digits-mlp"), ServedModel("zoo:digits-cnn")
    stages = {"small only": Single(small), "large only": Single(large)}
    for t in (0.9, 0.99, 0.999):
        stages[f"cascade {t}"] = Cascade(small, large, t, ServeMetrics())

    def answer_all(stage) -> list[dict]:
        out = []
        for i in range(0, len(x), 32):
            out += stage(x[i:i + 32])
        return out

    for stage in stages.values():
        answer_all(stage)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in stages}
    names = list(stages)
    for r in range(7):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            answer_all(stages[name])
            times[name].append(time.perf_counter() - t0)
    rows = {}
    for name, stage in stages.items():
        answers = answer_all(stage)
        escalated = sum(a.get("stage") == "large" for a in answers) if name.startswith("cascade") else (
            len(answers) if name == "large only" else 0)
        rows[name] = {"accuracy": float(np.mean([a["index"] == t for a, t in zip(answers, y)])),
                      "escalated_share": escalated / len(answers),
                      "ms_per_item_median": 1000 * statistics.median(times[name]) / len(x),
                      "ms_per_item_spread": [1000 * min(times[name]) / len(x), 1000 * max(times[name]) / len(x)]}
        print(name, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[name].items()})
    result = {"benchmark": "serve_cascade", "machine": fingerprint(), "data": "zoo:digits test (360 rows)",
              "small": "zoo:digits-mlp", "large": "zoo:digits-cnn", "batch": 32, "repeats": 7, "stages": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

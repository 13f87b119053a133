"""Does profiling change what it measures? frugalml's p50 vs a bare timing loop, same model and inputs.

Three comparisons per model, each alternating the peers to cancel drift:
- paired (the headline): every iteration is timed twice in a row, once by a bare
  ``perf_counter`` pair around the call and once through the timer profile() uses, alternating
  which goes first. Drift of the machine hits both alike, so the ratio of the two medians isolates
  what the harness adds to the latency it measures;
- harness: the latency harness exactly as profile() runs it (same runner, timer and stopping rule,
  0.5 s cap) vs a bare loop of about the same duration, in 30 alternating rounds;
- profile: the full profile() call (its memory, energy and FLOP passes included) vs the bare loop,
  in 4 alternating rounds.
The last two show how much a shared 2-core VM drifts between windows of a second: more than the
effect being measured, which is why the paired figure is the one to quote. Overhead = median ratio
- 1, with the 25th-75th percentile spread of the per-round ratios. Target: at most 2%.

    python benchmarks/profile_overhead.py [--rounds 30] [--profile-rounds 4]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from frugalml import load_model, profile  # noqa: E402
from frugalml._json import dumps  # noqa: E402
from frugalml.measure.env import fingerprint  # noqa: E402
from frugalml.measure.latency import cpu_timer, measure_latency  # noqa: E402

CASES = [
    # (model, batch, seq_len, bare-loop iterations, paired iterations)
    ("zoo:digits-mlp", 1, None, 2000, 20000),
    ("zoo:digits-cnn", 32, None, 1000, 4000),
    ("zoo:minilm", 1, 128, 60, 300),
]


def paired(runner, inputs, timer, iterations: int) -> dict[str, float]:
    """Time each iteration bare and through the harness's timer, back to back, alternating order."""
    for _ in range(10):
        runner(inputs)
    bare, ours = [], []

    def call() -> object:
        return runner(inputs)

    for i in range(iterations):
        for peer in (("bare", "ours") if i % 2 == 0 else ("ours", "bare")):
            if peer == "bare":
                start = time.perf_counter()
                runner(inputs)
                runner.synchronize()
                bare.append(time.perf_counter() - start)
            else:
                ours.append(timer(call))
    b, o = float(np.median(bare) * 1e3), float(np.median(ours) * 1e3)
    return {"iterations": iterations, "bare_median_ms": b, "frugalml_median_ms": o, "ratio": o / b,
            "overhead_pct": 100 * (o / b - 1)}


def bare_median_ms(runner, inputs, iterations: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        runner(inputs)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        runner(inputs)
        runner.synchronize()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1e3)


def _summary(bare: list[float], ours: list[float]) -> dict[str, object]:
    ratios = np.asarray(ours) / np.asarray(bare)
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return {"bare_median_ms": bare, "frugalml_p50_ms": ours, "ratio_median": float(q50),
            "ratio_q25": float(q25), "ratio_q75": float(q75), "overhead_pct": float(100 * (q50 - 1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--profile-rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "profile_overhead.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    results = []
    for spec, batch, seq_len, iterations, pairs in CASES:
        handle = load_model(spec)
        runner = handle.runner("torch", "cpu")
        items = handle.example_inputs if handle.input_spec.kind == "tensor" else ["A sentence to embed."] * batch
        inputs = runner.prepare(items[:batch], seq_len)
        timer = cpu_timer(runner.synchronize)

        def harness() -> float:
            stats, _ = measure_latency(lambda: runner(inputs), timer=timer, max_time_s=0.5)
            return stats.p50

        def full_profile() -> float:
            data = None if handle.input_spec.kind == "tensor" else "zoo:stdlib-docs"
            p = profile(handle, data=data, batch_sizes=[batch], seq_len=seq_len, layers=False, energy_min_s=0.2,
                        max_time_s=3.0)
            return p.latency_ms[batch].p50

        row: dict[str, object] = {"model": spec, "batch": batch, "seq_len": seq_len}
        row["paired"] = paired(runner, inputs, timer, pairs)
        print(f"{spec:16s} batch {batch:3d} paired  : bare {row['paired']['bare_median_ms']:8.4f} ms, frugalml "
              f"{row['paired']['frugalml_median_ms']:8.4f} ms, overhead {row['paired']['overhead_pct']:+.2f}% "
              f"({pairs} pairs)", flush=True)
        short = max(10, iterations // 4)
        for label, ours_fn, rounds, bare_iters in (("harness", harness, args.rounds, short),
                                                   ("profile", full_profile, args.profile_rounds, iterations)):
            bare, ours = [], []
            for r in range(rounds):
                for peer in (("bare", "ours") if r % 2 == 0 else ("ours", "bare")):
                    if peer == "bare":
                        bare.append(bare_median_ms(runner, inputs, bare_iters))
                    else:
                        ours.append(ours_fn())
            row[label] = {"rounds": rounds, **_summary(bare, ours)}
            summary = row[label]
            print(f"{spec:16s} batch {batch:3d} {label:8s}: bare {np.median(bare):8.4f} ms, frugalml p50 "
                  f"{np.median(ours):8.4f} ms, overhead {summary['overhead_pct']:+.2f}% "
                  f"(ratio IQR {summary['ratio_q25']:.3f}-{summary['ratio_q75']:.3f}, {rounds} rounds)", flush=True)
        results.append(row)
    doc = {"benchmark": "profile_overhead", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
           "target": "overhead <= 2%", "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(doc))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""What a head-to-head race charges a model for the runtime that ran just before it, and what the
settling time before each slice (``race(settle_s=...)``) takes back.

ONNX Runtime's worker threads keep spinning for a while after a run, and PyTorch's OpenMP threads
too; on a 2-core CPU a model timed straight after another runtime's model shares the cores with
threads that have nothing to do. ``frugal compare``, the search's run-off and ``frugal gate
--baseline DIR`` all race models this way, often one on each runtime.

Two pairs, each a PyTorch model and an ONNX Runtime one:

- ``digits-cnn``: zoo:digits-cnn on PyTorch and its ONNX export, at batch 32 (a PyTorch call takes
  about 1.5 ms on two threads, so two untimed calls cover little of ONNX Runtime's spinning);
- ``minilm``: zoo:minilm on PyTorch (FP32) and its ONNX Runtime INT8 artifact
  (``examples/recipes/minilm-int8.yaml``, built here), at batch 1 on 16-token texts (a PyTorch
  call takes about 30 ms, so two untimed calls already cover it).

Three ways to time each pair, rotated in every repeat:

- ``two calls``: the race as it was, two untimed calls before each slice (``settle_s=0``);
- ``settled``: untimed calls for at least ``settle_s`` = 0.1 s before each slice (the default now);
- ``alone``: each model raced against nothing, so it only ever follows itself: the reference.

Each race is 6 alternating rounds of 0.5 s per model. Figures are each model's p50 and p95 (the
median over the rounds of each round's own), and their ratio to ``alone`` in the same repeat.

    python benchmarks/race_settle.py [--repeats 6]   # writes benchmarks/results/race_settle.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from frugalml import load_model
from frugalml.compress import ExportOnnx, compress_to_dir
from frugalml.datasets import load_dataset
from frugalml.measure.env import fingerprint
from frugalml.measure.latency import race

ROOT = Path(__file__).resolve().parent.parent
SEQ_LEN = 16
ROUNDS, ROUND_S, SETTLE_S = 6, 0.5, 0.1  # seconds
MODES = ("two calls", "settled", "alone")


def _stats(by_round: list[np.ndarray]) -> dict[str, float]:
    return {"p50_ms": float(np.median([np.median(r) for r in by_round])) * 1e3,
            "p95_ms": float(np.median([np.percentile(r, 95) for r in by_round])) * 1e3}


def _time(mode: str, fns: dict[str, object]) -> dict[str, dict[str, float]]:
    names = list(fns)
    if mode == "alone":
        return {n: _stats(race([fns[n]], rounds=ROUNDS, round_s=ROUND_S, settle_s=0.0)[0][0]) for n in names}
    samples, _ = race([fns[n] for n in names], rounds=ROUNDS, round_s=ROUND_S,
                      settle_s=SETTLE_S if mode == "settled" else 0.0)
    return {n: _stats(s) for n, s in zip(names, samples)}


def _pairs(tmp: Path) -> dict[str, dict[str, object]]:
    """Each pair's two timed calls, inputs prepared once."""
    def call(handle, runtime: str, items, seq_len: int | None):
        runner = handle.runner(runtime, "cpu", None)
        inputs = runner.prepare(items, seq_len)
        return lambda: runner(inputs)

    cnn = load_model("zoo:digits-cnn")
    compress_to_dir(cnn, [ExportOnnx()], tmp / "cnn-onnx")
    images = cnn.items_of(load_dataset("zoo:digits"))[:32]
    minilm = load_model("zoo:minilm")
    compress_to_dir(minilm, ROOT / "examples" / "recipes" / "minilm-int8.yaml", tmp / "minilm-int8",
                    data="zoo:stdlib-docs", seq_len=SEQ_LEN)
    texts = minilm.items_of(load_dataset("zoo:stdlib-docs"))[:1]
    return {"digits-cnn": {"pytorch": call(cnn, "torch", images, None),
                           "onnxruntime": call(load_model(tmp / "cnn-onnx"), "onnxruntime", images, None)},
            "minilm": {"pytorch": call(minilm, "torch", texts, SEQ_LEN),
                       "onnxruntime": call(load_model(tmp / "minilm-int8"), "onnxruntime", texts, SEQ_LEN)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "race_settle.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = _pairs(Path(tmp))
        for fns in pairs.values():  # load, first-call allocations
            for fn in fns.values():
                for _ in range(5):
                    fn()
        for repeat in range(args.repeats):
            order = MODES[repeat % 3:] + MODES[:repeat % 3]
            for pair, fns in pairs.items():
                measured = {mode: _time(mode, fns) for mode in order}
                rows.append({"repeat": repeat, "pair": pair, "order": list(order), "measured": measured})
                print(f"repeat {repeat} {pair}: " + "; ".join(  # noqa: T201
                    f"{mode}: " + ", ".join(f"{n} p95 {v['p95_ms']:.2f} ms" for n, v in measured[mode].items())
                    for mode in MODES), flush=True)
    summary: dict[str, dict] = {}
    for pair, fns in pairs.items():
        mine = [r for r in rows if r["pair"] == pair]
        for name in fns:
            entry = summary.setdefault(pair, {}).setdefault(name, {})
            entry["alone_p95_ms_median"] = statistics.median(r["measured"]["alone"][name]["p95_ms"] for r in mine)
            for mode in ("two calls", "settled"):
                ratios = {stat: [r["measured"][mode][name][stat] / r["measured"]["alone"][name][stat] for r in mine]
                          for stat in ("p50_ms", "p95_ms")}
                entry[mode] = {f"{stat}_vs_alone": {"median": statistics.median(v), "min": min(v), "max": max(v)}
                               for stat, v in ratios.items()}
    doc = {"benchmark": "race_settle", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
           "setup": {"pairs": {"digits-cnn": "zoo:digits-cnn on PyTorch and as ONNX, batch 32",
                               "minilm": "zoo:minilm on PyTorch (FP32) and examples/recipes/minilm-int8.yaml on "
                                         f"ONNX Runtime, batch 1, {SEQ_LEN} tokens"}, "rounds": ROUNDS, "round_s": ROUND_S, "settle_s": SETTLE_S,
                     "repeats": args.repeats, "modes": list(MODES)},
           "summary": summary, "rows": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for pair, value in summary.items():
        for name, entry in value.items():
            print(pair, name, " ".join(  # noqa: T201
                f"{mode}: p95 {entry[mode]['p95_ms_vs_alone']['median']:.3f}x alone" for mode in ("two calls", "settled")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

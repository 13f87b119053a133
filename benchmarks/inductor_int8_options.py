"""What the compiled INT8 model's two per-machine settings buy: BF16 float operations and the C++ wrapper.

``quantize_dynamic backend: inductor`` on zoo:minilm, three variants built from the same INT8 graph:
the default (float operations in BF16 where the CPU has native BF16 math, C++ wrapper on), the same
with FP32 float operations, and the same without the C++ wrapper. Each encodes the held-out
stdlib-docs sentences the way ``compress_minilm_cpu.py`` does (batches of 32 with dynamic padding,
sorted by length; and one sentence at a time), after an untimed pass that compiles every shape;
rounds in alternating order, medians with min-max, ratios to the default.

    python benchmarks/inductor_int8_options.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from frugalml import load_dataset, load_model  # noqa: E402
from frugalml._json import json_safe  # noqa: E402
from frugalml.compress import _inductor  # noqa: E402
from frugalml.compress.quantize import _linear_names, _with_module  # noqa: E402
from frugalml.measure.devices import native_bf16_cpu  # noqa: E402
from frugalml.measure.env import fingerprint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "inductor_int8_options.json")
    args = parser.parse_args()
    _inductor.check_x86()
    handle = load_model("zoo:minilm")
    texts = load_dataset("zoo:stdlib-docs", split="test").texts()[:256]
    names = _linear_names(handle.module)
    variants = {"default (bf16 float ops, C++ wrapper)": {"bf16": True, "cpp_wrapper": True},
                "fp32 float ops": {"bf16": False, "cpp_wrapper": True},
                "no C++ wrapper": {"bf16": True, "cpp_wrapper": False}}
    systems = {}
    for name, options in variants.items():
        graph = _inductor.converted(handle.module, handle.input_spec, names, reduce_range=not _inductor.full_range_onednn())
        systems[name] = _with_module(handle, _inductor.InductorInt8(graph, **options))
        start = time.perf_counter()
        systems[name].predict(texts, batch_size=32, bucket=True)
        for text in texts[:40]:
            systems[name].predict([text], batch_size=1, bucket=True)
        print(f"{name}: compiled and warmed up in {time.perf_counter() - start:.0f} s", flush=True)
    batch32 = {k: [] for k in systems}
    batch1 = {k: [] for k in systems}
    for r in range(args.repeats):
        for name in (list(systems) if r % 2 == 0 else list(reversed(systems))):
            start = time.perf_counter()
            systems[name].predict(texts, batch_size=32, bucket=True)
            batch32[name].append(len(texts) / (time.perf_counter() - start))
            start = time.perf_counter()
            for text in texts[:40]:
                systems[name].predict([text], batch_size=1, bucket=True)
            batch1[name].append(40 / (time.perf_counter() - start))
    default = next(iter(systems))
    rows = []
    for name in systems:
        row = {"variant": name, **variants[name]}
        for label, series in (("batch32", batch32), ("batch1", batch1)):
            row[f"items_per_s_{label}"] = float(np.median(series[name]))
            row[f"items_per_s_{label}_min"] = float(min(series[name]))
            row[f"items_per_s_{label}_max"] = float(max(series[name]))
            row[f"ratio_{label}_default_over_this"] = float(np.median(series[default]) / np.median(series[name]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"benchmark": "inductor_int8_options", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
              "native_bf16_cpu": native_bf16_cpu(), "repeats": args.repeats, "texts": len(texts),
              "batching": "dynamic padding, sorted by length", "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(json_safe(result), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

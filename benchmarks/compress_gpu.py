"""Compression on a CUDA GPU: BF16, torch.compile, weight-only INT8 / INT4, INT8 dynamic, FP8, 2:4 sparsity.

Models: zoo:minilm (real weights, carried to the GPU machine as FP16 safetensors because the FP32
file is too large to carry; fidelity is measured against FP32 embeddings computed on the CPU from
the original weights) and a BERT-base-sized encoder with random weights (speed only). Sequence
length 128; batch 1, 32, 256; CUDA-event timing through frugalml's latency harness; NVML energy.
torch.compile is frugalml's ``compile`` step in ``reduce-overhead`` mode (TorchInductor kernels and
CUDA graphs, one per batch shape), so the row measures what a recipe gets.

    python benchmarks/compress_gpu.py --minilm DIR --reference DIR --assets DIR --out results.json [--budget-s S]

The JSON is rewritten after every variant (``"complete": false`` until the end), and with
``--budget-s`` no variant starts once the budget is spent: the rest are listed as skipped. So a run
cut short by a machine call's time limit keeps what it measured. ``--device cpu --smoke`` checks the
script on a CPU (MiniLM only, 16 texts, batch 1 and 4; numbers mean nothing; variants that need a
GPU report their error).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frugalml import load_model  # noqa: E402
from frugalml._json import dumps  # noqa: E402
from frugalml.compress import CastPrecision, Compile, QuantizeWeights, Sparsify24, compress  # noqa: E402
from frugalml.compress._fidelity import embedding_fidelity  # noqa: E402
from frugalml.measure.energy import measure_energy, select_meter  # noqa: E402
from frugalml.measure.latency import cpu_timer, cuda_timer, measure_latency  # noqa: E402
from gpu_profile import build_random_encoder  # noqa: E402

VARIANTS = {
    "fp32 eager": [],
    "bf16 eager": [CastPrecision(dtype="bf16")],
    # frugalml's own compile step (not torch.compile called here): TorchInductor kernels plus CUDA
    # graphs, one per batch shape, with the runner starting a new graph step before every call.
    "bf16 + torch.compile (reduce-overhead)": [CastPrecision(dtype="bf16"), Compile(mode="reduce-overhead", dynamic=False)],
    "int8 weight-only (torchao)": [QuantizeWeights(dtype="int8")],
    "int8 dynamic (torchao)": [QuantizeWeights(dtype="int8_dynamic")],
    "int4 weight-only (torchao)": [QuantizeWeights(dtype="int4")],
    "fp8 dynamic (torchao)": [QuantizeWeights(dtype="fp8")],
    "2:4 sparse fp16": [Sparsify24()],
    "2:4 sparse bf16 + distillation (pattern fixed)": [CastPrecision(dtype="bf16"),
                                                        Sparsify24(recover_epochs=1, recover_items=512)],
}


def measure(handle, texts, batch: int, max_time: float, device: str = "cuda") -> dict:
    runner = handle.runner("torch", device)
    inputs = runner.prepare((texts * (batch // len(texts) + 1))[:batch], 128)
    timer = cuda_timer() if device == "cuda" else cpu_timer(runner.synchronize)
    stats, _ = measure_latency(lambda: runner(inputs), timer=timer, max_time_s=max_time, warmup_iters=5)
    energy = measure_energy(lambda: runner(inputs), meter=select_meter(device), items_per_call=batch,
                            min_s=min(1.0, max_time), synchronize=runner.synchronize)
    return {"p50_ms": stats.p50, "p95_ms": stats.p95, "items_per_s": batch * 1e3 / stats.mean, "n": stats.n,
            "energy_mj_per_item": energy.j_per_item * 1e3, "energy_source": energy.source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True, help="texts.json + reference.npy")
    parser.add_argument("--assets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-time", type=float, default=2.0)
    parser.add_argument("--budget-s", type=float, default=None, help="no variant starts after this many seconds")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, MiniLM only: checks the script")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    texts = json.loads((args.reference / "texts.json").read_text())
    reference = np.load(args.reference / "reference.npy")
    if args.smoke:
        texts, reference = texts[:16], reference[:16]
    batches = (1, 4) if args.smoke else (1, 32, 256)
    max_time = 0.2 if args.smoke else args.max_time
    device = args.device
    doc = {"benchmark": "compress_gpu", "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
           "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "seq_len": 128, "batches": list(batches),
           "smoke": args.smoke, "budget_s": args.budget_s, "results": {},
           "note": "minilm weights carried as fp16 (fp32 file too large to carry); fidelity vs CPU fp32 embeddings "
                   "of the original weights; bert-base has random weights (speed only)"}

    def save(complete: bool) -> None:
        doc["complete"], doc["seconds"] = complete, time.monotonic() - began
        args.out.write_text(dumps(doc))

    # Calibration and 2:4 recovery train on stdlib-docs texts that are not among the fidelity texts.
    from frugalml.datasets import load_dataset

    held = set(texts)
    train = [t for t in load_dataset("zoo:stdlib-docs").texts() if t not in held][:64 if args.smoke else 2048]
    work = Path(tempfile.mkdtemp())
    # Built when its turn comes, so a budget spent on MiniLM does not also pay for building BERT-base.
    models = {"zoo:minilm": lambda: str(args.minilm)}
    if not args.smoke:
        models["bert-base-arch (random weights)"] = lambda: str(build_random_encoder(args.assets, work / "bert",
                                                                                     bert_base=True))
    results = doc["results"]

    def spent() -> bool:
        return args.budget_s is not None and time.monotonic() - began > args.budget_s

    for label, path_of in models.items():
        base = None if spent() else load_model(path_of())
        if base is not None:
            base.module = base.module.float()  # weights travel as fp16; every variant starts from fp32
        for variant, recipe in VARIANTS.items():
            if device == "cpu":  # smoke: no TorchInductor build on the CPU
                recipe = [replace(c, backend="aot_eager") if isinstance(c, Compile) else c for c in recipe]
            row: dict = {}
            if base is None or spent():
                results.setdefault(label, {})[variant] = {"skipped": f"time budget ({args.budget_s:g} s) spent"}
                continue
            try:
                handle = compress(base, recipe, data=train, seq_len=128, device=device) if recipe else base
                if label == "zoo:minilm":
                    # Padded to 128 like the timed inputs: one shape for a compiled variant (the
                    # 512 texts have at most 61 tokens, so nothing is cut).
                    out = handle.predict(texts, batch_size=64, device=device, seq_len=128)
                    row["fidelity"] = embedding_fidelity(out, reference)
                for batch in batches:
                    row[str(batch)] = measure(handle, texts, batch, max_time, device)
                skipped = [s for step in handle.metadata.get("compression", {}).get("steps", []) for s in step["skipped"]]
                row["skipped_layers"] = len(skipped)
            except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                traceback.print_exc(limit=2)
            results.setdefault(label, {})[variant] = row
            save(complete=False)
            summary = " ".join(f"b{b} {row[str(b)]['items_per_s']:>9,.0f}/s" for b in batches if str(b) in row)
            fid = row.get("fidelity", {}).get("mean_cosine")
            print(f"{label:32s} {variant:28s} {summary} {'cos %.4f' % fid if fid else ''} {row.get('error', '')}",
                  flush=True)
    save(complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

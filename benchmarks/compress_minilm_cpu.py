"""zoo:minilm on zoo:stdlib-docs on this CPU: peers vs frugalml's techniques, alone and combined.

Every system encodes the same held-out sentences (the stdlib-docs test split) the way a user would:
batches of 32 with dynamic padding, texts sorted by length (what sentence-transformers' encode does
by default), tokenization included; and one text at a time for latency. Systems are measured in the
same process, round-robin in alternating order, ``--repeats`` times; medians with min-max spread.

Peers: sentence-transformers FP32 ``encode``; ONNX Runtime FP32 (the model exported, default
session); ONNX Runtime ``quantize_dynamic`` with its defaults (the one-liner, per-tensor INT8); and,
where Hugging Face optimum is installed (it needs transformers < 4.58, so a separate environment),
sentence-transformers' own ONNX backend in FP32 and with its dynamic INT8 export for this CPU.
frugalml: each technique alone, and the combination. Fidelity to FP32 on 512 held-out sentences:
mean and 1st-percentile cosine, top-10 retrieval agreement. Peak memory: each system loaded and run
in a fresh process of its own (peak resident set, minus a process that only imports the libraries).

Which techniques pay depends on the CPU's features (recorded in ``env.cpu_features``): INT8 gains
most with VNNI dot products, BF16 only where the CPU has native BF16 math (AVX512-BF16, AMX);
``--no-bf16`` leaves the BF16 variants out where it has not (PyTorch would emulate them, slowly).

    python benchmarks/compress_minilm_cpu.py [--repeats 5] [--distill-items 2000] [--no-bf16] [--only TEXT...]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from frugalml import load_dataset, load_model  # noqa: E402
from frugalml._json import dumps  # noqa: E402
from frugalml.compress import (CastPrecision, Compile, Distill, DropLayers, ExportOnnx, LowRank,  # noqa: E402
                               PruneMagnitude, PruneStructured, QuantizeDynamic, QuantizeStatic, QuantizeWeights,
                               compress, save_model)
from frugalml.compress._fidelity import embedding_fidelity, retrieval_agreement  # noqa: E402
from frugalml.measure.env import fingerprint  # noqa: E402

FLOOR_MEAN, FLOOR_P1 = 0.99, 0.97


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and (f.suffix in (".onnx", ".safetensors")))


class System:
    def __init__(self, name: str, kind: str, encode, size_bytes: int, load: tuple[str, str]) -> None:
        self.name, self.kind, self.encode, self.size_bytes = name, kind, encode, size_bytes
        self.load = load  # (how, path) for a fresh process: ("st", dir) | ("model", artifact dir or .onnx)
        self.throughput: list[float] = []
        self.p95_ms: list[float] = []
        self.batch1: list[float] = []
        self.peak_rss_increase = 0
        self.fidelity: dict[str, float] = {}


def handle_system(name: str, kind: str, handle, size: int, path: Path) -> System:
    return System(name, kind, lambda texts, bs: handle.predict(texts, batch_size=bs, bucket=True), size,
                  ("model", str(path)))


def child_peak_rss(how: str, path: str, texts_file: str) -> None:
    """In a fresh process: load one system, encode the texts in batches of 32, print the peak RSS."""
    import json
    import resource

    # Every child imports the same libraries, so the baseline child ("none") cancels them out.
    import onnxruntime  # noqa: F401
    from sentence_transformers import SentenceTransformer

    from frugalml.models import load_model

    texts = json.loads(Path(texts_file).read_text())
    if how == "st":
        SentenceTransformer(path, device="cpu").encode(texts, batch_size=32)
    elif how == "st-onnx":  # "DIR|FILE": sentence-transformers' ONNX backend on one of DIR's ONNX files
        folder, file_name = path.split("|")
        SentenceTransformer(folder, device="cpu", backend="onnx",
                            model_kwargs={"file_name": file_name}).encode(texts, batch_size=32)
    elif how == "model":  # an artifact directory, or a bare .onnx file beside its tokenizer
        task = {"task": "embedding"} if path.endswith(".onnx") else {}
        load_model(path, **task).predict(texts, batch_size=32, bucket=True)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so every child
    # of a large parent would report the parent's size. VmHWM belongs to the process's own memory map.
    status = Path("/proc/self/status")
    if status.exists():
        hwm = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        peak = int(hwm.split()[1]) * 1024  # kB
    else:  # macOS reports ru_maxrss in bytes (and a fresh value after exec)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_bytes": peak}))


def peak_memory(systems: list[System], texts: list[str], work: Path) -> None:
    """Each system's peak RSS in a process of its own, minus a process that only imports the libraries:
    the memory a deployment of it needs (weights, runtime buffers, compilation), free of what the
    other systems in this process hold."""
    import json
    import subprocess

    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))

    def run(how: str, path: str) -> int:
        out = subprocess.run([sys.executable, __file__, "--child-peak-rss", how, path, str(texts_file)],
                             check=True, capture_output=True, text=True).stdout
        return int(json.loads(out.strip().splitlines()[-1])["peak_rss_bytes"])

    baseline = min(run("none", "") for _ in range(2))
    for s in systems:
        s.peak_rss_increase = run(*s.load) - baseline


def st_onnx_peers(systems: list[System], source_dir: str, work: Path) -> list[dict[str, str]]:
    """sentence-transformers' own ONNX backend, FP32 and with its dynamic INT8 export for this CPU
    (``export_dynamic_quantized_onnx_model``), where Hugging Face optimum is installed. They export the
    local model: no download. Returns the peers left out and why."""
    import shutil

    try:
        from optimum.onnxruntime import ORTModelForFeatureExtraction  # noqa: F401
    except ImportError as exc:
        reason = (f"Hugging Face optimum is not installed ({exc}); it needs transformers < 4.58, so it runs from "
                  "a separate environment: pip install 'optimum-onnx[onnxruntime]' 'transformers<4.58'")
        return [{"system": "sentence-transformers ONNX backend (FP32 and quantized)", "reason": reason}]
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    from frugalml.measure.devices import cpu_features

    folder = work / "st-onnx"
    shutil.copytree(source_dir, folder)
    fp32 = SentenceTransformer(str(folder), device="cpu", backend="onnx")  # exports to ONNX here
    fp32.save_pretrained(str(folder))
    features = set(cpu_features())
    config = ("avx512_vnni" if {"avx512_vnni", "avx512vnni"} & features else
              "avx512" if "avx512f" in features else "arm64" if "asimd" in features else "avx2")
    export_dynamic_quantized_onnx_model(fp32, config, str(folder))
    # Named after its weight type: model_qint8_avx512.onnx, model_quint8_avx2.onnx, ...
    (quantized,) = (folder / "onnx").glob(f"model_*_{config}.onnx")
    for name, file_name, model in (("sentence-transformers ONNX backend", "onnx/model.onnx", fp32), (
            f"sentence-transformers ONNX backend, quantized ({config} config)", f"onnx/{quantized.name}", None)):
        model = model or SentenceTransformer(str(folder), device="cpu", backend="onnx",
                                             model_kwargs={"file_name": file_name})
        systems.append(System(name, "peer", lambda t, bs, m=model: m.encode(t, batch_size=bs, convert_to_numpy=True),
                              (folder / file_name).stat().st_size, ("st-onnx", f"{folder}|{file_name}")))
    return []


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child-peak-rss":
        child_peak_rss(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--items", type=int, default=256, help="texts per throughput pass")
    parser.add_argument("--latency-items", type=int, default=40)
    parser.add_argument("--distill-items", type=int, default=2000)
    parser.add_argument("--no-bf16", action="store_true", help="leave out the BF16 variants")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="build only the frugalml systems whose name contains one of these (the peers always run)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compress_minilm_cpu.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="frugal-bench-"))

    base = load_model("zoo:minilm")
    test = load_dataset("zoo:stdlib-docs", split="test").texts()
    train = load_dataset("zoo:stdlib-docs", split="train").texts()
    fidelity_texts = test[:512]
    bench_texts = test[512:512 + args.items]
    reference = base.predict(fidelity_texts, bucket=True)
    base_size = dir_size(Path(base.metadata["source_dir"]))

    systems: list[System] = []
    # ---- peers
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(base.metadata["source_dir"], device="cpu")
    systems.append(System("sentence-transformers FP32 encode", "peer",
                          lambda t, bs: st.encode(t, batch_size=bs, convert_to_numpy=True), base_size,
                          ("st", base.metadata["source_dir"])))
    onnx_fp32 = compress(base, [ExportOnnx(optimize="none")])
    systems.append(handle_system("ONNX Runtime FP32", "peer", onnx_fp32, onnx_fp32.onnx_path.stat().st_size,
                                 save_model(onnx_fp32, work / "onnx-fp32")))
    from onnxruntime.quantization import quantize_dynamic

    naive = work / "naive" / "model.onnx"  # beside its tokenizer, so a fresh process can load it
    naive.parent.mkdir()
    base.tokenizer.save_pretrained(str(naive.parent))
    quantize_dynamic(str(onnx_fp32.onnx_path), str(naive))  # the one-liner, defaults
    from frugalml.compress.quantize import onnx_handle

    naive_handle = onnx_handle(base, naive, note="naive")
    systems.append(handle_system("ONNX Runtime quantize_dynamic (defaults)", "peer", naive_handle, naive.stat().st_size,
                                 naive))
    skipped_peers = st_onnx_peers(systems, base.metadata["source_dir"], work)

    # ---- frugalml
    def add(name: str, recipe, data=None) -> None:
        if args.only and not any(text in name for text in args.only):
            return
        start = time.perf_counter()
        handle = compress(base, recipe, data=data, seq_len=64)
        out = save_model(handle, work / name.replace(" ", "_").replace("/", "-"))
        sys_ = handle_system(f"frugalml: {name}", "frugalml", handle, dir_size(out), out)
        sys_.compress_s = time.perf_counter() - start
        # what each step changed and skipped (layer counts), as its manifest records it
        sys_.steps = [{"technique": st["technique"], "changed": len(st.get("changed") or []),
                       "skipped": len(st.get("skipped") or [])} for st in handle.metadata["compression"]["steps"]]
        systems.append(sys_)
        print(f"built {name} in {sys_.compress_s:.0f} s", flush=True)

    distill = Distill(epochs=2, lr=1e-4, batch_size=32, max_items=args.distill_items)
    add("torch dynamic int8", [QuantizeDynamic(backend="torch")])
    add("inductor int8 (export + x86 quantizer + compile)", [QuantizeDynamic(backend="inductor")])
    add("onnx graph + int8 per-channel", [ExportOnnx(optimize="graph"), QuantizeDynamic(backend="onnxruntime")])
    add("onnx graph + int8 per-channel, embedding tables float",
        [ExportOnnx(optimize="graph"), QuantizeDynamic(backend="onnxruntime", embeddings=False)])
    add("onnx static int8 (QDQ, weight nodes)", [QuantizeStatic()], data=train)
    add("onnx static int8 (QDQ, all ops)", [QuantizeStatic(ops="all")], data=train)
    add("onnx transformer fusion", [ExportOnnx(optimize="transformer")])
    add("low-rank (SVD, 95% energy)", [LowRank(energy=0.95)])
    add("magnitude prune 50% (unstructured)", [PruneMagnitude(amount=0.5)])
    add("torchao int8 dynamic (per-token)", [QuantizeWeights(dtype="int8_dynamic")])
    if not args.no_bf16:
        add("bf16 cast (PyTorch)", [CastPrecision(dtype="bf16")])
        add("bf16 + torch.compile", [CastPrecision(dtype="bf16"), Compile()])
    add("drop to 4 layers + distill", [DropLayers(keep=4), distill], data=train)
    add("ffn prune 50% + distill", [PruneStructured(amount=0.5, target="ffn"), distill], data=train)
    add("drop to 4 + distill + onnx int8", [DropLayers(keep=4), distill, ExportOnnx(optimize="graph"),
                                             QuantizeDynamic(backend="onnxruntime")], data=train)

    for s in systems:
        out = s.encode(fidelity_texts, 32)
        s.fidelity = {**embedding_fidelity(out, reference), "top10_agreement": retrieval_agreement(out, reference)}
    for s in systems:  # warm-up: one untimed pass of each kind (compiled variants compile here)
        s.encode(bench_texts, 32)
        for text in bench_texts[: args.latency_items]:
            s.encode([text], 1)
    # Not sampled during the timed passes: a sampler thread would take CPU time from them on 2 cores.
    peak_memory(systems, bench_texts, work)
    for r in range(args.repeats):
        order = systems if r % 2 == 0 else list(reversed(systems))
        for s in order:
            start = time.perf_counter()
            s.encode(bench_texts, 32)
            s.throughput.append(len(bench_texts) / (time.perf_counter() - start))
            lat = []
            for text in bench_texts[: args.latency_items]:
                start = time.perf_counter()
                s.encode([text], 1)
                lat.append(time.perf_counter() - start)
            s.p95_ms.append(float(np.percentile(lat, 95) * 1e3))
            s.batch1.append(len(lat) / float(np.sum(lat)))
        print(f"repeat {r + 1}/{args.repeats} done", flush=True)

    rows = []
    for s in systems:
        rows.append({"system": s.name, "kind": s.kind, "items_per_s_batch32": float(np.median(s.throughput)),
                     "items_per_s_batch32_min": float(min(s.throughput)), "items_per_s_batch32_max": float(max(s.throughput)),
                     "items_per_s_batch1": float(np.median(s.batch1)),
                     "p95_ms_batch1": float(np.median(s.p95_ms)), "size_bytes": s.size_bytes,
                     "peak_rss_increase_bytes": s.peak_rss_increase, **s.fidelity,
                     "meets_floor": s.fidelity["mean_cosine"] >= FLOOR_MEAN and s.fidelity["p1_cosine"] >= FLOOR_P1,
                     "compress_s": getattr(s, "compress_s", None), "steps": getattr(s, "steps", None)})
    st_row = rows[0]
    peers_ok = [r for r in rows if r["kind"] == "peer" and r["meets_floor"]]
    best_peer = max(peers_ok, key=lambda r: r["items_per_s_batch32"])
    ours_ok = [r for r in rows if r["kind"] == "frugalml" and r["meets_floor"]]
    best = max(ours_ok, key=lambda r: r["items_per_s_batch32"]) if ours_ok else None
    for r in rows:
        r["x_vs_st_fp32"] = r["items_per_s_batch32"] / st_row["items_per_s_batch32"]
        r["x_vs_best_peer"] = r["items_per_s_batch32"] / best_peer["items_per_s_batch32"]
    print(f"\n{'system':44s} {'items/s@32':>11s} {'x ST':>6s} {'p95@1 ms':>9s} {'MB':>6s} {'mean cos':>9s} "
          f"{'p1 cos':>7s} {'top10':>6s} floor")
    for r in rows:
        print(f"{r['system']:44s} {r['items_per_s_batch32']:11.1f} {r['x_vs_st_fp32']:6.2f} {r['p95_ms_batch1']:9.1f} "
              f"{r['size_bytes'] / 1e6:6.1f} {r['mean_cosine']:9.4f} {r['p1_cosine']:7.4f} {r['top10_agreement']:6.3f} "
              f"{'yes' if r['meets_floor'] else 'no'}")
    summary = {"best_peer_meeting_floor": best_peer["system"], "best_frugalml_meeting_floor": best and best["system"],
               "x_vs_best_peer": best and best["x_vs_best_peer"], "x_vs_st_fp32": best and best["x_vs_st_fp32"],
               "targets": {"x_vs_best_peer": 2.0, "x_vs_st_fp32": 3.0}}
    print(dumps(summary))
    doc = {"benchmark": "compress_minilm_cpu", "date": time.strftime("%Y-%m-%d"), "env": fingerprint(),
           "setup": {"repeats": args.repeats, "throughput_texts": len(bench_texts), "fidelity_texts": len(fidelity_texts),
                     "latency_texts": args.latency_items, "batching": "dynamic padding, sorted by length",
                     "distill_items": args.distill_items, "floor": {"mean_cosine": FLOOR_MEAN, "p1_cosine": FLOOR_P1}},
           "results": rows, "peers_left_out": skipped_peers, "summary": summary}
    args.out.write_text(dumps(doc))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The cloud-gpu target: frugalml's chosen recipe against the best of {bf16 eager, bf16 + torch.compile}.

1. ``optimize`` with ``context: cloud-gpu`` searches the cloud-gpu space (precision incl. torchao
   INT8 dynamic / FP8, 2:4 sparsity with distillation, torch.compile modes incl. CUDA graphs,
   layer dropping) on MiniLM with its real weights and picks a recipe (or ``--recipe FILE`` skips
   the search and measures that recipe);
2. the chosen recipe and the two peers are measured in one run on the same inputs: items/s at
   batch 1 and 256 at sequence length 128 (CUDA events through frugalml's latency harness, in
   alternating rounds, medians across rounds with min / max), NVML energy per item, fidelity to
   fp32 on real text (mean and 1st-percentile cosine), achieved TFLOP/s as a fraction of the
   device's dense bf16 peak;
3. the same recipe and peers on a BERT-base-sized encoder with random weights (speed only);
4. real text (zoo:stdlib-docs) at batch 256 with length bucketing (lengths rounded up to multiples
   of 32) vs padding to 128.

    python benchmarks/cloud_gpu.py --model DIR --out benchmarks/results/cloud_gpu.json

``--model`` is a sentence-transformers directory (zoo:minilm's files; the GPU machine gets them as
fp16 safetensors, cast back to fp32 here, so "fp32" means fp32 arithmetic on those weights).
``--device cpu --smoke`` checks the script end to end on a CPU (about 4 minutes on 2 cores, where
PyTorch emulates bf16; its numbers mean nothing and are never committed). ``--budget-s`` bounds the
whole run for a machine call's time limit: the search gets 40% of it, the JSON is rewritten after
each part (``"complete": false`` until the end), and the BERT-base part is skipped, and said so,
when less time is left than the MiniLM part took.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from frugalml import load_model  # noqa: E402
from frugalml._json import dumps  # noqa: E402
from frugalml.compress import CastPrecision, Compile, Recipe, compress  # noqa: E402
from frugalml.compress._fidelity import embedding_fidelity  # noqa: E402
from frugalml.datasets import load_dataset  # noqa: E402
from frugalml.measure.energy import measure_energy, select_meter  # noqa: E402
from frugalml.measure.flops import count_torch_flops  # noqa: E402
from frugalml.measure.latency import cpu_timer, cuda_timer, measure_latency  # noqa: E402

SEQ = 128
PEERS = {"bf16 eager": Recipe([CastPrecision(dtype="bf16")]),
         "bf16 + torch.compile": Recipe([CastPrecision(dtype="bf16"), Compile(mode="default", dynamic=False)])}
CHOSEN = "frugalml chosen"

log = logging.getLogger("cloud_gpu")


def search(model: str, trials: int, store: str, *, timeout_s: float | None = None,
           finalists: int = 3) -> tuple[Recipe, dict[str, Any]]:
    """Run the cloud-gpu search and return the chosen recipe with a summary of the search."""
    from frugalml.config import config_from_dict
    from frugalml.search import optimize

    config = config_from_dict({"model": model, "context": "cloud-gpu", "store": store, "seq_len": SEQ,
                               "search": {"trials": trials, "latency_max_s": 1.0, "timeout_s": timeout_s,
                                          "finalists": finalists}})
    started = time.perf_counter()
    result = optimize(config)
    summary = {"trials": len(result.candidates), "seconds": time.perf_counter() - started, "why": result.why,
               "stopped_early": result.stopped_early,
               "candidates": [{k: c.get(k) for k in ("number", "components", "quality", "cost", "feasible")}
                              for c in result.candidates]}
    if result.chosen is None:
        raise SystemExit(f"the search found no recipe within budgets: {result.why}")
    summary["chosen"] = {k: result.chosen.get(k) for k in ("number", "components", "quality", "cost")}
    return Recipe.from_dict(result.chosen["recipe"]), summary


class Variant:
    """One model variant with a runner and prepared inputs per batch size."""

    def __init__(self, name: str, handle: Any, device: str, texts: list[str], batches: tuple[int, ...]) -> None:
        self.name, self.handle, self.device = name, handle, device
        self.runner = handle.runner("torch", device)
        self.inputs = {b: self.runner.prepare((texts * (b // len(texts) + 1))[:b], SEQ) for b in batches}
        self.rounds: dict[int, list[float]] = {b: [] for b in batches}  # items/s per round
        self.energy: dict[int, dict[str, Any]] = {}

    def call(self, batch: int) -> Any:
        inputs = self.inputs[batch]
        return lambda: self.runner(inputs)

    def time_round(self, batch: int, window_s: float) -> None:
        timer = cuda_timer() if self.device == "cuda" else cpu_timer(self.runner.synchronize)
        stats, _ = measure_latency(self.call(batch), timer=timer, max_time_s=window_s, warmup_iters=3,
                                   warmup_s=0.1, min_iters=5)
        self.rounds[batch].append(batch * 1e3 / stats.p50)

    def summary(self, batch: int) -> dict[str, Any]:
        values = self.rounds[batch]
        return {"items_per_s": statistics.median(values), "min": min(values), "max": max(values),
                "rounds": len(values), **({"energy": self.energy[batch]} if batch in self.energy else {})}


def build(base: Any, recipes: dict[str, Recipe], device: str, train: list[str]) -> dict[str, Any]:
    handles = {"fp32 eager": base}
    for name, recipe in recipes.items():
        log.warning("building %s: %s", name, recipe.describe())
        handles[name] = compress(base, recipe, data=train, seq_len=SEQ, device=device)
    return handles


def compare(handles: dict[str, Any], *, device: str, texts: list[str], batches: tuple[int, ...], rounds: int,
            window_s: float, energy_s: float) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    for name, handle in handles.items():
        try:
            variants[name] = Variant(name, handle, device, texts, batches)
            for b in batches:  # compile (and record CUDA graphs) outside the timed rounds
                for _ in range(3):
                    variants[name].call(b)()
        except Exception:  # noqa: BLE001 - a variant that fails is reported, not fatal
            traceback.print_exc(limit=3)
            variants.pop(name, None)
    for r in range(rounds):
        order = list(variants.values()) if r % 2 == 0 else list(reversed(variants.values()))  # cancels drift
        for b in batches:
            for v in order:
                v.time_round(b, window_s)
        log.warning("round %d/%d done", r + 1, rounds)
    meter = select_meter(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for v in variants.values():
        for b in batches:
            e = measure_energy(v.call(b), meter=meter, items_per_call=b, min_s=energy_s, synchronize=sync)
            v.energy[b] = {"mj_per_item": e.j_per_item * 1e3, "average_w": e.average_w, "source": e.source}
    return variants


def table(variants: dict[str, Variant], batches: tuple[int, ...], flops_per_item: float,
          peak: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, v in variants.items():
        row = {}
        for b in batches:
            s = v.summary(b)
            s["tflops"] = flops_per_item * s["items_per_s"] / 1e12
            if peak:
                s["fraction_of_bf16_peak"] = s["tflops"] * 1e12 / peak
            row[str(b)] = s
        out[name] = row
    return out


def ratios(rows: dict[str, Any], batches: tuple[int, ...]) -> dict[str, Any]:
    """The chosen recipe against the best peer at each batch size (throughput up, energy down)."""
    out: dict[str, Any] = {}
    if CHOSEN not in rows:
        return out
    for b in batches:
        peers = {p: rows[p][str(b)] for p in PEERS if p in rows}
        if not peers:
            continue
        best = max(peers, key=lambda p: peers[p]["items_per_s"])
        mine = rows[CHOSEN][str(b)]
        entry = {"best_peer": best, "speedup": mine["items_per_s"] / peers[best]["items_per_s"]}
        if "energy" in mine and "energy" in peers[best]:
            entry["energy_ratio"] = mine["energy"]["mj_per_item"] / peers[best]["energy"]["mj_per_item"]
        out[str(b)] = entry
    return out


def flops_per_item(handle: Any, device: str) -> float:
    module = getattr(handle.module, "_orig_mod", handle.module)
    runner = handle.runner("torch", device)
    inputs = runner.prepare(["an example sentence"], SEQ)
    return float(count_torch_flops(module.to(device), inputs, kind="text").flops_per_item)


def bucketing(handles: dict[str, Any], texts: list[str], device: str, repeats: int) -> dict[str, Any]:
    """Items/s over the real corpus at batch 256: padded to 128 vs sorted by length and padded per batch."""
    out: dict[str, Any] = {}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for name, handle in handles.items():
        row: dict[str, Any] = {}
        for mode in ("fixed 128", "bucketed", "fixed 128", "bucketed")[: 2 * repeats]:  # alternating
            # Bucketed lengths round up to multiples of 32: at most 4 lengths up to 128, so compiled
            # variants reuse their graphs instead of compiling one per length.
            kwargs = {"seq_len": SEQ} if mode == "fixed 128" else {"bucket": True, "pad_multiple": 32}
            try:
                handle.predict(texts[:512], batch_size=256, device=device, **kwargs)  # warm (and compile shapes)
                sync()
                start = time.perf_counter()
                handle.predict(texts, batch_size=256, device=device, **kwargs)
                sync()
                row.setdefault(mode, []).append(len(texts) / (time.perf_counter() - start))
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                break
        out[name] = {k: (statistics.median(v) if isinstance(v, list) else v) for k, v in row.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:minilm", help="MiniLM: zoo:minilm or a sentence-transformers dir")
    parser.add_argument("--recipe", type=Path, help="measure this recipe instead of searching")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window", type=float, default=0.5, help="seconds per timed window")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--no-bert", action="store_true", help="skip the BERT-base-sized encoder")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script, numbers mean nothing")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds for the whole script: the search gets 40%% of them (search.timeout_s), and "
                             "the BERT-base part is skipped, and said so, when what is left is less than MiniLM took")
    parser.add_argument("--finalists", type=int, default=3, help="search.finalists (1: no run-off, saves rebuilds)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cloud_gpu.json"))
    args = parser.parse_args()
    began = time.monotonic()

    def left() -> float:
        return float("inf") if args.budget_s is None else args.budget_s - (time.monotonic() - began)

    def save(complete: bool) -> None:
        # Written after each part, so a run cut short (a machine call's time limit) keeps what it did.
        doc["complete"], doc["seconds"] = complete, time.monotonic() - began
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(dumps(doc))

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    device = args.device
    batches = (1, 8) if args.smoke else (1, 256)
    work = Path(tempfile.mkdtemp(prefix="cloud-gpu-"))
    corpus = load_dataset("zoo:stdlib-docs")
    texts = list(corpus.texts())
    texts = texts[:300] if args.smoke else texts
    train = texts[: 64 if args.smoke else 2048]
    base = load_model(args.model)
    base.module = base.module.float()  # weights may travel as fp16; fp32 is the reference precision
    doc: dict[str, Any] = {"benchmark": "cloud_gpu", "device": torch.cuda.get_device_name() if device == "cuda"
                           else "cpu", "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "seq_len": SEQ,
                           "batches": list(batches), "rounds": args.rounds, "window_s": args.window,
                           "smoke": args.smoke, "model": args.model, "budget_s": args.budget_s}
    if args.recipe is not None:
        chosen = Recipe.load(args.recipe)
        doc["search"] = {"skipped": f"recipe from {args.recipe}"}
    elif device == "cuda":
        chosen, doc["search"] = search(args.model, 3 if args.smoke else args.trials, f"sqlite:///{work / 'runs.db'}",
                                       timeout_s=None if args.budget_s is None else 0.4 * args.budget_s,
                                       finalists=args.finalists)
    else:
        chosen = Recipe([Compile(mode="default", dynamic=False, backend="aot_eager")])  # CPU smoke: no cloud-gpu
        doc["search"] = {"skipped": "cpu smoke run"}
    doc["chosen_recipe"] = chosen.to_dict()
    log.warning("chosen: %s", chosen.describe())
    save(complete=False)
    peak = None
    if device == "cuda":
        from frugalml.measure.devices import gpu_spec

        spec = gpu_spec(torch.cuda.get_device_name())
        peak = spec.peak_for("bf16") if spec else None
        doc["bf16_dense_peak_tflops"] = peak / 1e12 if peak else None

    def run_model(label: str, model: Any, fidelity: bool) -> dict[str, Any]:
        recipes = {**PEERS, CHOSEN: chosen}
        if device == "cpu":
            recipes = {k: Recipe([s if not isinstance(s, Compile) else Compile(mode="default", dynamic=False,
                                                                               backend="aot_eager") for s in r])
                       for k, r in recipes.items()}
        handles = build(model, recipes, device, train)
        entry: dict[str, Any] = {"flops_per_item": flops_per_item(model, device)}
        if fidelity:
            eval_texts = texts[-(32 if args.smoke else 512):]  # not among the training texts
            ref = model.predict(eval_texts, seq_len=SEQ, device=device, batch_size=64)
            entry["fidelity"] = {name: embedding_fidelity(h.predict(eval_texts, seq_len=SEQ, device=device,
                                                                    batch_size=64), ref)
                                 for name, h in handles.items()}
        variants = compare(handles, device=device, texts=texts[:256], batches=batches,
                           rounds=2 if args.smoke else args.rounds, window_s=0.1 if args.smoke else args.window,
                           energy_s=0.2 if args.smoke else 2.0)
        entry["throughput"] = table(variants, batches, entry["flops_per_item"], peak)
        entry["chosen_vs_best_peer"] = ratios(entry["throughput"], batches)
        if fidelity:
            entry["real_text_batch_256"] = bucketing({k: handles[k] for k in ("bf16 eager", CHOSEN)},
                                                     texts[:64] if args.smoke else texts, device,
                                                     1 if args.smoke else 2)
        for name, row in entry["throughput"].items():
            print(f"{label:14s} {name:22s} " + " ".join(f"b{b} {row[str(b)]['items_per_s']:>10,.0f}/s "
                                                       f"{row[str(b)]['energy']['mj_per_item']:7.2f} mJ"
                                                       for b in batches), flush=True)
        print(f"{label}: chosen vs best peer {json.dumps(entry['chosen_vs_best_peer'])}", flush=True)
        return entry

    minilm_started = time.monotonic()
    doc["minilm"] = run_model("minilm", base, fidelity=True)
    minilm_s = time.monotonic() - minilm_started
    save(complete=False)
    if not args.no_bert and left() < minilm_s:
        doc["bert_base"] = {"skipped": f"time budget: {left():.0f} s left, the MiniLM part took {minilm_s:.0f} s"}
    elif not args.no_bert:
        from gpu_profile import build_random_encoder

        assets = Path(base.weight_files[0]).parent if base.weight_files else None
        if assets is None or not (assets / "tokenizer.json").is_file():
            doc["bert_base"] = {"skipped": "no tokenizer directory beside the model weights"}
        else:
            bert = load_model(str(build_random_encoder(assets, work / "bert", bert_base=True)))
            doc["bert_base"] = run_model("bert-base", bert, fidelity=False)
    m = doc["minilm"]["chosen_vs_best_peer"]
    fid = doc["minilm"].get("fidelity", {}).get(CHOSEN, {}).get("mean_cosine")
    if not args.smoke and "1" in m and "256" in m:
        doc["target"] = {"fidelity_mean_cosine": fid, "fidelity_ok": bool(fid is not None and fid >= 0.99),
                         "batch_256_speedup": m["256"]["speedup"], "batch_256_ok": m["256"]["speedup"] >= 1.3,
                         "batch_1_speedup": m["1"]["speedup"], "batch_1_ok": m["1"]["speedup"] >= 2.0,
                         "energy_ratio_256": m["256"].get("energy_ratio"),
                         "energy_ok": (m["256"].get("energy_ratio") or 9) <= 0.7}
    save(complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

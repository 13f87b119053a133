"""Does dynamic batching pay, and does the server stay correct under bad traffic? `frugal serve` on loopback.

1. Load: for zoo:minilm and its ONNX INT8 artifact (examples/recipes/minilm-int8.yaml), four server
   configurations, one measured at a time, cache off, each a `frugal serve` subprocess: batching on
   with no wait (--max-batch 32 --max-wait-ms 0, the default: a batch takes what queued while the
   previous one ran), batching on with a 5 ms wait, batching on with each batch run as one padded
   batch (--no-split-batches: the default splits a batch of mixed lengths into sub-batches of similar
   length), and batching off (--max-batch 1). Closed-loop clients (aiohttp, one request of one
   distinct docstring sentence at a time each) at 1, 8 and 64 concurrency, `--seconds` per (level,
   mode) in two halves after a 1 s warm-up, in mirrored order (A B C D D C B A): throughput, p50, p99,
   failures. Target at 64 clients: >= 3x the throughput of batching off, 0 failed valid requests.
2. Faults (digits MLP, in-process server on the CPU): 8 clients send 10% malformed or oversized requests among
   valid ones; every bad one must get a 4xx with a message and every valid one a 200; then the same
   valid requests with a shadow whose every batch raises: every answer must equal the no-shadow one.

With ``--device cuda`` the servers run the models on the GPU and the compressed model is the BF16
artifact (examples/recipes/minilm-bf16.yaml) instead of the CPU INT8 one; ``--artifact`` names another
recipe of examples/recipes (minilm-bf16 on a CPU with native BF16, say).

    python benchmarks/serve_load.py [--seconds 8] [--device cpu|cuda] [--artifact minilm-int8|minilm-bf16]
                                    [--no-wait-mode] [--budget-s S] [--[no-]reuse-servers]
                                    [--out benchmarks/results/serve_load.json]

The JSON is written after each model's group of configurations (``"complete": false`` until the
end), so a run cut short by a GPU machine call's time limit keeps what it measured. ``--budget-s``
runs the target's pair (on, off) for both models first (mirrored: on off off on), then the other
configurations and the fault mix as far as the budget allows, and lists what it skipped. On a GPU
machine (16 cores) each server is started once for both of its halves by default, which halves the
server starts; on the 2-core CPU they are not (an idle server's threads took CPU from the measured one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MODES = {"on": ["--max-batch", "32", "--max-wait-ms", "0"], "on, wait 5 ms": ["--max-batch", "32", "--max-wait-ms", "5"],
         "on, one padded batch": ["--max-batch", "32", "--max-wait-ms", "0", "--no-split-batches"],
         "off": ["--max-batch", "1", "--max-wait-ms", "0"]}


def _start(model: str, flags: list[str], store: str) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "frugalml", "serve", model, "--port", str(port), "--cache-size", "0",
                             "--max-queue", "4096", *flags], env={**os.environ, "FRUGAL_STORE": store},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited")
        try:
            ready = httpx.get(f"{url}/readyz", timeout=1)
            if ready.status_code == 200:
                return proc, url, ready.json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError("server did not start")


async def _load(url: str, endpoint: str, texts: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """Closed loop: each client sends its next request when the last is answered. aiohttp, because
    httpx's pool was the bottleneck at 64 connections on 2 cores (it capped both servers near 60 req/s)."""
    import aiohttp

    latencies: list[float] = []
    failures = 0
    counter = 0
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=clients),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def worker(stop: float, record: bool) -> None:
            nonlocal failures, counter
            while time.perf_counter() < stop:
                text = texts[counter % len(texts)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    async with session.post(endpoint, json={"inputs": [text]}) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                if record:
                    if ok:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        failures += 1

        await asyncio.gather(*(worker(time.perf_counter() + 1.0, False) for _ in range(clients)))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = sorted(1000 * v for v in latencies)
    return {"requests": len(ms), "failures": failures, "seconds": elapsed, "throughput_rps": len(ms) / elapsed,
            "p50_ms": statistics.median(ms) if ms else None,
            "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else None}


FAULTS_S = 30.0
CORE = ("on", "off")  # the target's two configurations: under a time budget they come first


def load(seconds: float, tmp: Path, device: str = "cpu", recipe: str | None = None,
         modes: list[str] | None = None, on_model: Any = None, *, reuse: bool = False,
         left: Any = None) -> dict[str, Any]:
    """``on_model(out)`` is called with the results so far after each model (to save them as they come).

    ``reuse``: each configuration's server is started once and serves both of its halves (the
    mirrored order is unchanged): half the server starts, for a GPU machine whose many cores keep
    an idle server from taking anything from the measured one. ``left()``: seconds of budget left;
    with it the two configurations of the target (on, off) run for both models before any other,
    and a group of runs that would not fit is skipped and listed under ``skipped``."""
    from frugalml.compress import compress_to_dir
    from frugalml.datasets import load_dataset

    texts = list(dict.fromkeys(load_dataset("zoo:stdlib-docs").texts()))
    np.random.default_rng(0).shuffle(texts)
    store = f"sqlite:///{tmp / 'runs.db'}"
    recipe = recipe or ("minilm-bf16" if device == "cuda" else "minilm-int8")
    artifact = tmp / recipe
    compress_to_dir("zoo:minilm", Path(__file__).parents[1] / "examples" / "recipes" / f"{recipe}.yaml", artifact,
                    store=store)
    label = {"minilm-int8": "minilm-int8 (ONNX Runtime)",
             "minilm-bf16": f"minilm-bf16 (PyTorch, {'CUDA' if device == 'cuda' else 'CPU'})"}.get(recipe, recipe)
    names = modes or list(MODES)
    models = {"zoo:minilm": "zoo:minilm", str(artifact): label}
    # Groups of configurations, each measured in mirrored order (A B C C B A) to cancel drift: all of
    # them at once, or under a budget the target's pair for every model first, then the rest.
    extra = [m for m in names if m not in CORE]
    groups = ([(model, names) for model in models] if left is None
              else [(model, list(CORE)) for model in models] + [(model, extra) for model in models if extra])
    runs = {model: {m: {c: [] for c in (1, 8, 64)} for m in names} for model in models}
    overheads: dict[str, list[float]] = {model: [] for model in models}
    out: dict[str, Any] = {}
    skipped: list[str] = []
    start_s: list[float] = []  # seconds per server start
    run_s: list[float] = []  # seconds per server run (the three client levels)

    def start(model: str, mode: str) -> tuple[subprocess.Popen[bytes], str]:
        t0 = time.monotonic()
        proc, url, ready = _start(model, [*MODES[mode], "--device", device], store)
        start_s.append(time.monotonic() - t0)
        if "split_overhead_tokens" in ready:
            overheads[model].append(ready["split_overhead_tokens"])
        return proc, url

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)

    for k, (model, group) in enumerate(groups):
        if "off" not in group and not runs[model]["off"][1]:
            skipped += [f"{models[model]}: {mode}" for mode in group]  # its target pair was skipped
            continue
        if left is not None and start_s:
            # Keep room for the target's pair of every model still waiting for it.
            need = sum((len(g) if reuse else 2 * len(g)) * statistics.mean(start_s) + 2 * len(g) * statistics.mean(run_s)
                       for j, (_, g) in enumerate(groups[k:], k) if j == k or g == list(CORE))
            if need > left():
                skipped += [f"{models[model]}: {mode}" for mode in group]
                print(f"skipped {models[model]}: {', '.join(group)} ({left():.0f} s left, about {need:.0f} s needed)",
                      flush=True)
                continue
        servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for mode in group + group[::-1]:
                # One server at a time, unless reused: on the 2-core CPU an idle PyTorch server's OpenMP
                # threads spin for a while after a batch and took CPU from the measured one.
                if mode not in servers:
                    servers[mode] = start(model, mode)
                t0 = time.monotonic()
                for clients in (1, 8, 64):
                    runs[model][mode][clients].append(asyncio.run(_load(servers[mode][1], "/v1/embed", texts, clients,
                                                                        seconds / 2)))
                run_s.append(time.monotonic() - t0)
                if not reuse:
                    stop(servers.pop(mode)[0])
        finally:
            for proc, _ in servers.values():
                stop(proc)
        out[models[model]] = _levels(models[model], runs[model], names, texts, overheads[model])
        if skipped:
            out["skipped"] = skipped
        if on_model is not None:
            on_model(out)
    return out


def _levels(label: str, runs: dict[str, dict[int, list[dict[str, Any]]]], names: list[str], texts: list[str],
            overheads: list[float]) -> dict[str, Any]:
    """Each client level's configurations, halves merged, with batching's speed-ups over "off"."""
    levels: dict[str, Any] = {}
    measured = [m for m in names if runs[m][1]]
    for clients in (1, 8, 64):
        merged: dict[str, Any] = {}
        for mode in measured:
            parts = runs[mode][clients]
            n = sum(p["requests"] for p in parts)
            merged[mode] = {"requests": n, "failures": sum(p["failures"] for p in parts),
                            "throughput_rps": n / sum(p["seconds"] for p in parts),
                            "p50_ms": statistics.mean(p["p50_ms"] for p in parts),
                            "p99_ms": max(p["p99_ms"] for p in parts), "halves": parts}
        off = merged["off"]["throughput_rps"]
        merged["speedup"] = merged["on"]["throughput_rps"] / off
        for key, mode in (("speedup_wait_5ms", "on, wait 5 ms"), ("speedup_one_padded_batch", "on, one padded batch")):
            if mode in merged:
                merged[key] = merged[mode]["throughput_rps"] / off
        levels[str(clients)] = merged
        print(f"{label} {clients} clients: " + ", ".join(f"{m} {merged[m]['throughput_rps']:.1f} req/s" for m in measured)
              + f", on/off x{merged['speedup']:.2f}", flush=True)
    levels["padding"] = _padding(texts, overheads)
    return levels


def _padding(texts: list[str], overheads: list[float], batch: int = 32) -> dict[str, Any]:
    """What splitting by length does to batches of ``batch`` consecutive texts (as the clients send them):
    tokens computed over tokens held, one padded batch vs the split plan for the median of the fixed
    costs the servers timed at warm-up (``/readyz``'s ``split_overhead_tokens``, one per start)."""
    from frugalml.models import load_model
    from frugalml.serve._split import plan_batches

    handle = load_model("zoo:minilm")
    lengths = handle.token_lengths(texts[:64 * batch])
    out: dict[str, Any] = {"texts": len(lengths), "tokens_median": float(np.median(lengths)),
                           "split_overhead_tokens": overheads}
    one = [len(b) * b.max() / b.sum() for b in np.split(lengths, len(lengths) // batch)]
    out["one_batch_computed_over_held_median"] = float(np.median(one))
    if overheads:
        overhead = float(np.median(overheads))
        split, counts, sizes = [], [], []
        for b in np.split(lengths, len(lengths) // batch):
            parts = plan_batches(b, overhead_tokens=overhead)
            split.append(sum(len(p) * b[p].max() for p in parts) / b.sum())
            counts.append(len(parts))
            sizes.append([len(p) for p in parts])
        out |= {"split_computed_over_held_median": float(np.median(split)),
                "sub_batches_median": float(np.median(counts)), "sub_batch_sizes_first": sizes[:3]}
    return out


def _in_process(app: Any) -> tuple[Any, str, threading.Thread]:
    import uvicorn

    port = _port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}", thread


def faults(tmp: Path) -> dict[str, Any]:
    from frugalml.datasets import load_dataset
    from frugalml.serve import ServeConfig, ServedModel, create_app

    x = load_dataset("zoo:digits", split="test").features()
    mlp = ServedModel("zoo:digits-mlp")
    rng = np.random.default_rng(0)
    bad_kinds = [("malformed JSON", b"{not json"), ("wrong type", json.dumps({"inputs": ["text"]}).encode()),
                 ("wrong length", json.dumps({"inputs": [[0.0] * 10]}).encode()),
                 ("too many inputs", json.dumps({"inputs": [[0.0] * 64] * 300}).encode()),
                 ("oversized body", json.dumps({"inputs": [[0.0] * 64], "pad": "x" * 5_000_000}).encode())]
    plan = [("bad", bad_kinds[i % len(bad_kinds)]) if rng.random() < 0.1 else ("valid", i % len(x)) for i in range(2000)]

    def drive(url: str) -> dict[str, Any]:
        results: list[Any] = [None] * len(plan)

        async def main() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                async def worker(k: int) -> None:
                    for i in range(k, len(plan), 8):
                        kind, what = plan[i]
                        if kind == "valid":
                            r = await client.post("/v1/predict", json={"inputs": [x[what].tolist()]})
                        else:
                            r = await client.post("/v1/predict", content=what[1],
                                                  headers={"content-type": "application/json"})
                        body = r.json()
                        answer = body.get("error")
                        if "predictions" in body:
                            answer = [(p["label"], p["score"]) for p in body["predictions"]]
                        results[i] = (r.status_code, answer)

                await asyncio.gather(*(worker(k) for k in range(8)))

        asyncio.run(main())
        return {"results": results}

    summary: dict[str, Any] = {}
    server, url, thread = _in_process(create_app(ServeConfig(model="zoo:digits-mlp", cache_size=0),
                                                 models={"zoo:digits-mlp": mlp}))
    try:
        plain = drive(url)["results"]
    finally:
        server.should_exit = True
        thread.join()
    valid = [i for i, (k, _) in enumerate(plan) if k == "valid"]
    bad = [i for i, (k, _) in enumerate(plan) if k == "bad"]
    by_kind: dict[str, list[int]] = {}
    for i in bad:
        by_kind.setdefault(plan[i][1][0], []).append(plain[i][0])
    summary["requests"] = len(plan)
    summary["valid"] = {"sent": len(valid), "answered_200": sum(plain[i][0] == 200 for i in valid)}
    summary["bad"] = {"sent": len(bad), "answered_4xx_with_message": sum(
        400 <= plain[i][0] < 500 and isinstance(plain[i][1], str) and len(plain[i][1]) > 10 for i in bad),
        "status_by_kind": {k: sorted(set(v)) for k, v in by_kind.items()},
        "example_messages": {plan[i][1][0]: plain[i][1] for i in bad}}
    crashing = ServedModel("zoo:digits-mlp")

    def crash(items: list[Any]) -> Any:
        raise RuntimeError("shadow crashed")

    crashing.run = crash  # type: ignore[method-assign]  # fault injection
    app = create_app(ServeConfig(model="zoo:digits-mlp", cache_size=0, shadow="crashing",
                                 store=f"sqlite:///{tmp / 'faults.db'}"),
                     models={"zoo:digits-mlp": mlp, "crashing": crashing})
    server, url, thread = _in_process(app)
    try:
        shadowed = drive(url)["results"]
        shadow_summary = app.state.server.shadow.summary()
    finally:
        server.should_exit = True
        thread.join()
    def same(a: Any, b: Any) -> bool:
        # Same status and labels, scores within 1e-5: a request's batch mates change the kernel's
        # float32 summation order (so rounding both to 5 decimals still flipped one in 1,790 once).
        if a[0] != b[0] or not isinstance(a[1], list) or not isinstance(b[1], list) or len(a[1]) != len(b[1]):
            return bool(a == b)
        return all(la == lb and abs(sa - sb) <= 1e-5 for (la, sa), (lb, sb) in zip(a[1], b[1]))

    summary["crashing_shadow"] = {"valid_answers_identical": sum(same(shadowed[i], plain[i]) for i in valid),
                                  "valid": len(valid), "shadow_errors": shadow_summary["error"]}
    summary["met"] = (summary["valid"]["answered_200"] == len(valid)
                      and summary["bad"]["answered_4xx_with_message"] == len(bad)
                      and summary["crashing_shadow"]["valid_answers_identical"] == len(valid))
    return summary


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name())
    return "cpu"


def main() -> None:
    from frugalml.measure.env import fingerprint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--no-wait-mode", action="store_true",
                        help="leave out the 5 ms wait configuration (a quarter less time: short GPU sessions)")
    parser.add_argument("--artifact", choices=("minilm-int8", "minilm-bf16"), default=None,
                        help="the compressed model's recipe (default minilm-int8 on cpu, minilm-bf16 on cuda)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/serve_load.json (serve_load_cuda.json with --device cuda)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="bound the run (a GPU machine call's time limit): the target's configurations (on, off) "
                             "run for both models first, then the others and the fault mix as far as time allows; "
                             "what did not fit is listed")
    parser.add_argument("--reuse-servers", action=argparse.BooleanOptionalAction, default=None,
                        help="start each configuration's server once for both halves (default: on with --device cuda, "
                             "off on a CPU, where an idle server's threads take CPU from the measured one)")
    args = parser.parse_args()
    if args.out is None:
        name = "serve_load_cuda.json" if args.device == "cuda" else "serve_load.json"
        args.out = Path(__file__).parent / "results" / name
    args.out.parent.mkdir(parents=True, exist_ok=True)
    reuse = args.device == "cuda" if args.reuse_servers is None else args.reuse_servers
    began = time.monotonic()

    def left() -> float:
        return float("inf") if args.budget_s is None else args.budget_s - (time.monotonic() - began)

    header = {"benchmark": "serve_load", "device": _device_name(args.device), "seconds_per_level_and_mode": args.seconds,
              "servers_reused_for_both_halves": reuse, "budget_s": args.budget_s}
    fault: dict[str, Any] | None = None

    def partial(loads: dict[str, Any]) -> None:
        # Rewritten after each model: a run cut short (a GPU machine call's time limit) keeps what it did.
        args.out.write_text(json.dumps({**header, "complete": False, "load": loads, "faults": fault}, indent=2) + "\n")

    modes = [m for m in MODES if not (args.no_wait_mode and m == "on, wait 5 ms")]
    with tempfile.TemporaryDirectory() as tmp:
        partial({})
        loads = load(args.seconds, Path(tmp), args.device, args.artifact, modes, on_model=partial, reuse=reuse,
                     left=None if args.budget_s is None else left)
        # The fault mix serves the digits MLP in-process on the CPU whatever --device says, so under a
        # budget it comes last. FAULTS_S: it took about 20 s on the 2-core VM (2026-12-01).
        if left() >= FAULTS_S:
            fault = faults(Path(tmp))
            print(json.dumps({k: v for k, v in fault.items() if k != "bad"}, indent=1), flush=True)
        else:
            fault = {"skipped": f"time budget: {left():.0f} s left"}
    measured = {m: v for m, v in loads.items() if m != "skipped"}
    at64 = {m: {"speedup": v["64"]["speedup"], "speedup_wait_5ms": v["64"].get("speedup_wait_5ms"),
                "speedup_one_padded_batch": v["64"].get("speedup_one_padded_batch"),
                "failures": sum(v["64"][mode]["failures"] for mode in modes if mode in v["64"])}
            for m, v in measured.items()}
    # Two models (zoo:minilm and the artifact) make the target; with one skipped it cannot be judged.
    judged = len(measured) == 2
    result = {**header, "complete": "skipped" not in loads and "skipped" not in fault, "machine": fingerprint(),
              "load": loads, "faults": fault,
              "target": {"speedup_at_64": 3.0,
                         "met": all(v["speedup"] >= 3 and v["failures"] == 0 for v in at64.values()) if judged else None,
                         "met_with_5ms_wait": None if args.no_wait_mode or not judged or any(
                             v["speedup_wait_5ms"] is None for v in at64.values()) else all(
                             v["speedup_wait_5ms"] >= 3 and v["failures"] == 0 for v in at64.values()),
                         "at_64": at64}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["target"], indent=2))


if __name__ == "__main__":
    main()

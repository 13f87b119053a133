"""`frugal profile MODEL` and `frugal compare MODEL MODEL...`: parse options, call frugalml.profile /
compare_latency, render the results."""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml._units import format_small
from frugalml.cli._app import app, console, data_option, err_console
from frugalml.measure import Comparison, Profile, compare_latency, profile
from frugalml.store import default_store_url

__all__ = ["compare_command", "profile_command", "render_comparison", "render_profile"]


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}"
    return f"{value:.0f} B"


def _ms(value: float) -> str:
    """Milliseconds with 3 significant digits, never in exponent notation."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.2e}"


def render_profile(p: Profile) -> None:
    """Rich tables: the model, latency / throughput / memory / energy per batch size, the roofline."""
    head = Table(title=f"Profile of {p.model}", show_header=False, title_justify="left")
    head.add_column(style="bold")
    head.add_column()
    rows: list[tuple[str, str]] = [
        ("format / task", f"{p.format} / {p.task or '-'}"),
        ("runtime / device", f"{p.runtime} on {p.device} ({p.threads} threads, {p.precision})"),
        ("inputs", f"{p.data}" + (f", {p.seq_len} tokens per item" if p.seq_len else "")),
        ("parameters", f"{p.params:,} ({p.params_nonzero:,} non-zero)"),
        ("size as saved", f"{_bytes(p.size_bytes)} ({p.bytes_per_param:.2f} bytes/param)"),
        ("FLOPs / MACs per item", f"{_si(p.flops_per_item, 'FLOP')} / {_si(p.macs_per_item, 'MAC')}"),
        ("energy source", p.energy_note),
    ]
    if p.region:
        rows.append(("carbon intensity", f"{p.carbon_intensity_g_per_kwh:.0f} g CO2e/kWh ({p.region})"))
    if p.run_id is not None:
        rows.append(("run", f"#{p.run_id}"))
    for key, value in rows:
        head.add_row(key, value)
    console.print(head)

    energy_label = "energy" + ("*" if p.energy_source == "estimate" else "")
    table = Table(title="Per batch size (latency in ms; energy per item"
                  + ("; CO2e per 1,000 items" if p.co2e_g_per_1k_items else "")
                  + ("; * = estimate)" if p.energy_source == "estimate" else ")"), title_justify="left")
    for col in ("batch", "p50", "p50 CI", "p95", "p99", "n", "items/s", "memory", energy_label):
        table.add_column(col, justify="right")
    if p.co2e_g_per_1k_items:
        table.add_column("CO2e", justify="right")
    for b in p.batch_sizes:
        s = p.latency_ms[b]
        row = [str(b), _ms(s.p50), f"{_ms(s.p50_ci_low)}-{_ms(s.p50_ci_high)}", _ms(s.p95), _ms(s.p99),
               f"{s.n}", f"{p.throughput_items_per_s[b]:,.0f}",
               _bytes(p.memory[b].cuda_max_allocated_bytes if p.device == "cuda" else p.memory[b].peak_rss_bytes),
               format_small(p.energy_j_per_item[b], "J")]
        if p.co2e_g_per_1k_items:
            row.append(format_small(p.co2e_g_per_1k_items[b], "g"))
        table.add_row(*row)
    console.print(table)

    roof = p.roofline
    main = roof.by_batch[roof.layer_batch]
    console.print(
        f"Roofline on {roof.device.name} ({roof.device.source}): peak {_si(roof.peak_flops_per_s, 'FLOP/s')} "
        f"{roof.precision}, {_si(roof.bandwidth_bytes_per_s, 'B/s')}, ridge {roof.ridge_intensity:.1f} FLOP/B. "
        f"At batch {roof.layer_batch}: intensity {main.intensity:.1f} FLOP/B -> [bold]{main.bound}-bound[/], "
        f"achieved {_si(main.achieved_flops_per_s, 'FLOP/s')}"
        + (f" = {main.fraction_of_roof:.1%} of the roof." if main.fraction_of_roof is not None else "."),
        highlight=False,
    )
    if roof.layers:
        layers = Table(title=f"Heaviest layers at batch {roof.layer_batch}", title_justify="left")
        for col in ("layer", "kind", "FLOPs", "FLOP/B", "bound", "ms", "of roof"):
            layers.add_column(col, justify="left" if col in ("layer", "kind", "bound") else "right")
        for layer in sorted(roof.layers, key=lambda x: x.flops, reverse=True)[:8]:
            # Drop the root class name and shared prefixes: "encoder.layer.3.intermediate.dense".
            short = layer.name.split(".", 1)[-1].replace("encoder.encoder.", "encoder.")
            layers.add_row(short if len(short) <= 40 else "..." + short[-37:], layer.kind, _si(layer.flops, ""), f"{layer.intensity:.1f}", layer.bound,
                           f"{layer.time_ms:.3f}" if layer.time_ms is not None else "-",
                           f"{layer.fraction_of_roof:.1%}" if layer.fraction_of_roof is not None else "-")
        console.print(layers)


@app.command("profile")
def profile_command(
    model: str = typer.Argument(..., help="zoo:NAME, a Hugging Face / sentence-transformers directory, or an .onnx file."),
    data: str = typer.Option(None, "--data", help="Inputs to run on: zoo:NAME or a CSV / JSONL / Parquet file."),
    text_column: str = typer.Option(None, "--text-column", help="The column of --data holding the text "
                                    "(default 'text')."),
    batch_sizes: str = typer.Option("1,8,32", "--batch-sizes", help="Comma-separated batch sizes."),
    seq_len: int = typer.Option(None, "--seq-len", help="Tokens per text item (default 128)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    runtime: str = typer.Option(None, "--runtime", help="torch | onnxruntime (default: torch, onnxruntime for .onnx)"),
    threads: int = typer.Option(None, "--threads", help="CPU threads for the runtime."),
    region: str = typer.Option(None, "--region", help="ISO 3166-1 alpha-3 country code for CO2e, e.g. USA."),
    max_time: float = typer.Option(10.0, "--max-time", help="Cap on timed seconds per batch size."),
    no_layers: bool = typer.Option(False, "--no-layers", help="Skip per-layer timing."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow pickle-based checkpoints (can run code)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of tables."),
    samples: bool = typer.Option(False, "--samples", help="With --json, include every latency sample."),
    store: str = typer.Option(None, "--store", help="Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."),
) -> None:
    """Measure size, FLOPs, latency, throughput, memory, energy and the roofline of MODEL on this machine."""
    store_url = store or default_store_url()
    kwargs: dict[str, Any] = dict(data=data_option(data, text_column=text_column), batch_sizes=batch_sizes,
                                  seq_len=seq_len, device=device,
                                  runtime=runtime, threads=threads, region=region, store=store_url,
                                  max_time_s=max_time, layers=not no_layers, trust_pickle=trust_pickle)
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"profiling {model}", total=None)

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        result = profile(model, on_progress=on_progress, **kwargs)
    if as_json:
        typer.echo(dumps(result.to_dict(include_samples=samples)))
    else:
        render_profile(result)


def render_comparison(c: Comparison) -> None:
    """One row per model: the medians over the rounds, their spread, and each against the first."""
    table = Table(title=f"Head to head at batch {c.batch} on {c.device}: {c.rounds} alternating rounds of "
                  f"{c.round_s:g} s per model (latency in ms; medians over the rounds)", title_justify="left")
    for col in ("#", "model", "runtime", "p50", "p95", "p95 by round (min-max)", "items/s", "n", "p50 vs #0"):
        table.add_column(col, justify="left" if col in ("model", "runtime") else "right")
    for i, x in enumerate(c.contenders):
        table.add_row(str(i), x.name, x.runtime, _ms(x.p50_ms), _ms(x.p95_ms),
                      f"{_ms(min(x.p95_by_round_ms))}-{_ms(max(x.p95_by_round_ms))}",
                      f"{x.throughput_items_per_s:,.0f}", str(x.n), f"{c.ratio(i, 0):.2f}x")
    console.print(table)
    if c.run_id is not None:
        console.print(f"run #{c.run_id}", highlight=False)


@app.command("compare")
def compare_command(
    models: list[str] = typer.Argument(..., help="Two or more models: zoo:NAME, an artifact or model directory, an .onnx file."),
    data: str = typer.Option(None, "--data", help="Inputs to run on: zoo:NAME or a CSV / JSONL / Parquet file."),
    text_column: str = typer.Option(None, "--text-column", help="The column of --data holding the text "
                                    "(default 'text')."),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    seq_len: int = typer.Option(None, "--seq-len", help="Tokens per text item (default 128)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    threads: int = typer.Option(None, "--threads", help="CPU threads for the runtimes."),
    rounds: int = typer.Option(6, "--rounds", help="Alternating rounds (even)."),
    round_s: float = typer.Option(1.0, "--round-s", help="Timed seconds per model per round."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of a table."),
    store: str = typer.Option(None, "--store", help="Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."),
) -> None:
    """Time MODELS head to head on the same inputs, in alternating rounds, so the machine's drift falls on all alike."""
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"comparing {len(models)} models", total=rounds)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, description=f"round {done} of {total}", completed=done, total=total)

        result = compare_latency(models, data=data_option(data, text_column=text_column), batch=batch,
                                 seq_len=seq_len, device=device, threads=threads,
                                 rounds=rounds, round_s=round_s, store=store or default_store_url(),
                                 on_progress=on_progress)
    if as_json:
        typer.echo(dumps(result.to_dict()))
    else:
        render_comparison(result)

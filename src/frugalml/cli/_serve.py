"""`frugal serve MODEL` and `frugal monitor`: parse options, call frugalml.serve / frugalml.monitor, render."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console

__all__: list[str] = []

_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."


@app.command("serve")
def serve_command(
    model: str = typer.Argument(None, help="zoo:NAME, a compressed artifact or model directory, or an .onnx file "
                                "(omit with --cascade)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="Port."),
    runtime: str = typer.Option(None, "--runtime", help="torch or onnxruntime (default: the model's own)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (an NVIDIA GPU)."),
    max_batch: int = typer.Option(32, "--max-batch", help="Most items per inference batch (1 = batching off)."),
    max_wait_ms: float = typer.Option(0.0, "--max-wait-ms", help="Longest an item waits for more items (0: a batch "
                                      "takes what queued while the previous one ran)."),
    split_batches: bool = typer.Option(True, "--split-batches/--no-split-batches", help="Text: run a batch of "
                                       "mixed lengths as sub-batches of similar length when the model's timed "
                                       "per-call cost says that is faster."),
    max_queue: int = typer.Option(1024, "--max-queue", help="Queued items before requests get 429."),
    cache_size: int = typer.Option(10_000, "--cache-size", help="Answers kept in the LRU response cache (0: off)."),
    cache_ttl_s: float = typer.Option(None, "--cache-ttl-s", help="Expire cached answers after this many seconds."),
    timeout_s: float = typer.Option(30.0, "--timeout-s", help="504 when a request waits longer."),
    max_items: int = typer.Option(256, "--max-items", help="Most inputs in one request."),
    max_text_chars: int = typer.Option(10_000, "--max-text-chars", help="Longest text input."),
    max_body_bytes: int = typer.Option(4 * 1024 * 1024, "--max-body-bytes", help="Largest request body."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads the model)."),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="Require one of these keys (one per line) as "
                                      "'Authorization: Bearer KEY' or 'X-API-Key'."),
    ssl_certfile: Path = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)."),
    ssl_keyfile: Path = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)."),
    cascade: str = typer.Option(None, "--cascade", help="SMALL:LARGE: the small model answers when confident."),
    threshold: float = typer.Option(0.9, "--threshold", help="Cascade: the small model's confidence to answer."),
    shadow: str = typer.Option(None, "--shadow", help="A candidate model that gets a copy of the traffic; agreement "
                               "and latency go to the store at shutdown."),
    reference: str = typer.Option(None, "--reference", help="Dataset of typical inputs: enables the live drift "
                                  "monitor (metrics frugal_drift_score / frugal_drift_alert)."),
    drift_window: int = typer.Option(1000, "--drift-window", help="Live drift: recent items compared."),
    drift_every: int = typer.Option(250, "--drift-every", help="Live drift: check every this many items."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Serve a model over HTTP: POST /v1/predict or /v1/embed; GET /healthz, /readyz, /metrics."""
    import importlib.util

    from frugalml.errors import InvalidArgumentError

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidArgumentError("serve", ", ".join(missing), "is not installed", "Run: pip install 'frugalml[serve]'.")
    from frugalml.serve import ServeConfig, serve

    config = ServeConfig(model=model, host=host, port=port, runtime=runtime, device=device,
                         max_batch=max_batch, split_batches=split_batches,
                         max_wait_ms=max_wait_ms, max_queue=max_queue, cache_size=cache_size, cache_ttl_s=cache_ttl_s,
                         timeout_s=timeout_s, max_items=max_items, max_text_chars=max_text_chars,
                         max_body_bytes=max_body_bytes, workers=workers, api_key_file=api_key_file,
                         ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, cascade=cascade, threshold=threshold,
                         shadow=shadow, reference=reference, drift_window=drift_window, drift_every=drift_every,
                         store=store).checked()
    scheme = "https" if ssl_certfile else "http"
    serve(config, on_listen=lambda: console.print(
        f"serving {cascade or model} on {scheme}://{host}:{port} ({device}, batch <= {max_batch}, wait <= {max_wait_ms:g} ms, "
        f"{workers} worker{'s' if workers > 1 else ''}); Ctrl+C stops"))


@app.command("monitor")
def monitor_command(
    reference: str = typer.Option(..., "--reference", help="The reference data (zoo:NAME or a file)."),
    current: str = typer.Option(..., "--current", help="The data to check (same columns)."),
    model: str = typer.Option(None, "--model", help="Also compare this model's predictions (or embeddings) and its "
                              "efficiency trend in the store."),
    text_column: str = typer.Option(None, "--text-column", help="The text column (default 'text' if present)."),
    label_column: str = typer.Option(None, "--label-column", help="The label column (compared, never a model input)."),
    column: list[str] = typer.Option(None, "--column", help="Only these columns (repeat)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Significance level of the KS, chi-squared and MMD tests."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check data, prediction and embedding drift and efficiency regressions; exit 1 on an alert."""
    from frugalml.monitor import monitor

    report = monitor(reference, current, model=model, text_column=text_column, label_column=label_column,
                     columns=list(column) if column else None,
                     alpha=alpha, store=store)
    if as_json:
        typer.echo(dumps(report.to_dict()))
    else:
        table = Table(title=f"Drift of {report.current} ({report.rows[1]:,} rows) against {report.reference} "
                      f"({report.rows[0]:,} rows)", title_justify="left")
        # the p-value each level used: the column checks' Holm-adjusted together (the raw one is in --json)
        for col in ("feature", "kind", "PSI", "test", "statistic", "p (Holm)", "level"):
            table.add_column(col, justify="right" if col in ("PSI", "statistic", "p (Holm)") else "left")
        rows = sorted(report.features, key=lambda f: {"alert": 0, "warn": 1, "ok": 2}[f.level])
        if report.predictions is not None:
            rows.insert(0, report.predictions)
        style = {"alert": "bold red", "warn": "yellow", "ok": "green"}
        for f in rows[:40]:
            table.add_row(f.feature, f.kind, "" if f.psi is None else f"{f.psi:.3f}", f.test, f"{f.statistic:.4g}",
                          f"{f.details.get('p_holm', f.p_value):.3g}", f"[{style[f.level]}]{f.level}[/]")
        console.print(table)
        if len(rows) > 40:
            console.print(f"... {len(rows) - 40} more (--json for all)")
        if report.missing_columns:
            console.print(f"[bold red]columns missing from {report.current}[/]: {', '.join(report.missing_columns)}")
        if report.efficiency is not None:
            e = report.efficiency
            console.print(e.get("note") or f"efficiency: {len(e['runs'])} profile runs; " + (
                "; ".join(e["regressions"]) if e["regressions"] else "no regression"))
        for note in report.notes:
            console.print(f"note: {note}")
        console.print(f"[bold red]{len(report.alerts)} alert(s)[/]: {', '.join(report.alerts)}" if report.alerts
                      else "[green]no alert[/]")
    if report.alerts:
        raise typer.Exit(1)

"""`frugal runs list` and `frugal runs show ID`: read the run store."""

from __future__ import annotations

import typer
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console
from frugalml.compress import compress_headline
from frugalml.evaluate import evaluation_headline
from frugalml.store import RunRecord, open_store

__all__ = ["runs_app"]

runs_app = typer.Typer(help="Browse the runs recorded in the store.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."


def _headline(run: RunRecord) -> str:
    result = run.result or {}
    latency = result.get("latency_ms") or {}
    if latency:
        first = min(latency, key=int)
        return f"p50 {latency[first]['p50']:.3f} ms at batch {first}"
    if run.kind == "compare" and result.get("contenders"):
        first = result["contenders"][0]["p50_ms"]
        return f"batch {result['batch']}, p50 vs the first: " + ", ".join(
            f"{c['p50_ms'] / first:.2f}x" for c in result["contenders"])
    if run.kind == "evaluate":
        return evaluation_headline(result)
    if run.kind == "compress":
        return compress_headline(result)
    chosen = result.get("chosen")
    if chosen:
        return f"{chosen.get('recipe_text') or '(unchanged)'}: {chosen['quality']:.4g}, {chosen['cost']:.4g}"
    if run.kind == "simulate-al" and result.get("savings_vs_random"):
        saved = {k: v for k, v in result["savings_vs_random"].items() if v is not None}
        if saved:
            best = max(saved, key=saved.get)
            return f"{best}: {saved[best]:.0%} fewer labels than random"
    if run.kind == "prune-data" and result.get("kept_rows"):
        accuracy = result.get("accuracy", {}).get(result.get("method"), {})
        return ", ".join(f"keep {float(k):.0%}" + (f": {accuracy[k]['mean']:.4f}" if k in accuracy else "")
                         for k in result["kept_rows"])
    if run.kind in ("train", "federated"):
        from frugalml.train._report import train_headline

        return train_headline(run)
    result = result.get("verdict") if isinstance(result.get("verdict"), dict) else result
    if "passed" in result:
        return "pass" if result["passed"] else "fail: " + ", ".join(result.get("failed", []))
    return ""


@runs_app.command("list")
def list_runs(
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    kind: str = typer.Option(None, "--kind", help="Only runs of this kind (e.g. profile)."),
    status: str = typer.Option(None, "--status", help="running | succeeded | failed"),
    name: str = typer.Option(None, "--name", help="Only runs whose name contains this text."),
    limit: int = typer.Option(20, "--limit", help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs, newest first."""
    # The table's last column summarises each result; JSON stays small (full results: runs show --json).
    runs = open_store(store).list_runs(kind=kind, status=status, name_contains=name, limit=limit,
                                       with_result=not as_json)
    if as_json:
        typer.echo(dumps([r.to_dict() for r in runs]))
        return
    table = Table(title=f"{len(runs)} run(s)", title_justify="left")
    for col in ("id", "kind", "name", "status", "created (UTC)", "seconds", "result"):
        # the result column gives way first on a narrow terminal
        table.add_column(col, justify="right" if col in ("id", "seconds") else "left", no_wrap=col != "result",
                         overflow="fold" if col == "result" else "ellipsis")
    for r in runs:
        style = {"failed": "red", "running": "yellow"}.get(r.status, "")
        table.add_row(str(r.id), r.kind, r.name, f"[{style}]{r.status}[/]" if style else r.status,
                      r.created.strftime("%Y-%m-%d %H:%M:%S"),
                      f"{r.duration_s:.1f}" if r.duration_s is not None else "-", _headline(r))
    console.print(table)


@runs_app.command("show")
def show_run(
    run_id: int = typer.Argument(..., help="The run's ID (see frugal runs list)."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the run, its measurements and result as JSON."),
) -> None:
    """Show one run: its configuration, environment, measurements, artifacts and audit events."""
    run = open_store(store).get_run(run_id)
    if as_json:
        typer.echo(dumps(run.to_dict()))
        return
    console.print(f"[bold]Run #{run.id}[/] {run.kind} of {run.name}: {run.status}"
                  f" (created {run.created:%Y-%m-%d %H:%M:%S} UTC"
                  + (f", {run.duration_s:.1f} s)" if run.duration_s is not None else ")"), highlight=False)
    if run.error:
        console.print(f"[red]error:[/] {run.error}", highlight=False)
    env = run.env
    if env:
        gpu = (env.get("gpu") or {}).get("name")
        console.print(f"on {env.get('cpu')}" + (f" + {gpu}" if gpu else "") + f", {env.get('threads')} threads, "
                      f"frugalml {env.get('frugalml')}, torch {(env.get('libraries') or {}).get('torch')}",
                      highlight=False)
    if run.measurements:
        table = Table(title="Measurements", title_justify="left")
        for col in ("name", "batch", "value", "unit", "device", "source"):
            table.add_column(col, justify="right" if col in ("batch", "value") else "left")
        for m in run.measurements:
            value = f"{int(m.value):,}" if abs(m.value) >= 1e4 and m.value == int(m.value) else f"{m.value:.6g}"
            table.add_row(m.name, "" if m.batch is None else str(m.batch), value, m.unit, m.device, m.source)
        console.print(table)
    for a in run.artifacts:
        console.print(f"artifact {a.path} ({a.bytes} bytes, sha256 {a.sha256[:12]}...)", highlight=False)
    for e in run.events:
        console.print(f"{e.at:%Y-%m-%d %H:%M:%S} {e.who} {e.what}", highlight=False)

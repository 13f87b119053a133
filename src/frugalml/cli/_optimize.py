"""`frugal optimize` and `frugal gate`: parse options, call optimize() / gate(), render the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from frugalml._json import dumps
from frugalml._validate import parse_duration
from frugalml.cli._app import app, console, err_console
from frugalml.config import find_config, load_config
from frugalml.gate import Verdict, gate
from frugalml.search import SearchResult, optimize

__all__ = ["gate_command", "optimize_command", "render_search", "render_verdict"]


def render_verdict(verdict: Verdict) -> None:
    table = Table(title=f"Gate: {verdict.model} ({verdict.context})", title_justify="left")
    for col in ("budget", "measured (95% CI)", "limit", "margin", "result"):
        table.add_column(col, justify="left" if col in ("budget", "result") else "right")
    for c in verdict.checks:
        measured = ("not measured" + (f" ({c.note})" if c.note else "")) if c.measured is None else (
            f"{c.measured:.4g}" + (f" [{c.low:.4g}, {c.high:.4g}]" if c.low is not None else ""))
        result = ("[green]pass[/]" + (" (CI straddles)" if c.uncertain else "")) if c.passed else "[red]FAIL[/]"
        if not c.passed and c.note and c.measured is not None:
            result += f" ({c.note})"
        table.add_row(c.budget, measured, f"{'≤' if c.kind == 'max' else '≥'} {c.limit:.4g} {c.unit}".strip(),
                      "—" if c.margin is None else f"{c.margin:.4g}", result)
    console.print(table)
    if verdict.regressions:
        reg = Table(title=f"Against baseline {verdict.baseline}", title_justify="left",
                    caption=verdict.regressions[0].rule(), caption_justify="left")
        interval = "range over rounds" if verdict.regressions[0].method == "head-to-head" else "95% CI"
        for col in ("metric", f"measured ({interval})", f"baseline ({interval})", "ratio", "result"):
            reg.add_column(col, justify="left" if col in ("metric", "result") else "right")
        for r in verdict.regressions:
            reg.add_row(r.metric, f"{r.measured.value:.4g} [{r.measured.low:.4g}, {r.measured.high:.4g}]",
                        f"{r.baseline.value:.4g} [{r.baseline.low:.4g}, {r.baseline.high:.4g}]", f"{r.ratio:.2f}x",
                        "[red]REGRESSION[/]" if r.regressed else "[green]ok[/]")
        console.print(reg)
    console.print("[bold green]PASS[/]" if verdict.passed else f"[bold red]FAIL[/]: {', '.join(verdict.failed)}")


def render_search(result: SearchResult) -> None:
    table = Table(title=f"Candidates ({result.context}; study {result.study})", title_justify="left")
    for col in ("#", "recipe", result.objectives[0], result.objectives[1], "budgets", "front"):
        table.add_column(col, justify="left" if col in ("recipe", "budgets") else "right")
    chosen = result.chosen["number"] if result.chosen else None
    for c in sorted(result.candidates, key=lambda c: c["number"]):
        missed = [r["budget"] for r in c["checks"] if not r["passed"]]
        style = "bold yellow" if c["number"] == chosen else None
        table.add_row(str(c["number"]), c["recipe_text"], f"{c['quality']:.4f}", f"{c['cost']:.4g}",
                      "[green]all met[/]" if not missed else f"[red]misses {', '.join(missed)}[/]",
                      "◆" if c["pareto"] else "", style=style)
    console.print(table)
    if result.stopped_early:
        console.print(f"stopped early: {result.stopped_early}", highlight=False)
    if result.runoff:
        r = result.runoff
        runoff = Table(title=f"Run-off: {r['metric']}, finalists timed head to head in {r['rounds']} alternating "
                       "rounds", title_justify="left")
        for col in ("#", "recipe", "in its trial", "run-off", "rounds (min-max)", "tied"):
            runoff.add_column(col, justify="left" if col == "recipe" else "right")
        tied = r.get("tied") or []
        for f in r["finalists"]:
            runoff.add_row(str(f["number"]), f["recipe_text"], f"{f['trial_cost']:.4g}", f"{f['cost']:.4g}",
                           f"{min(f['by_round']):.4g}-{max(f['by_round']):.4g}",
                           "yes" if f["number"] in tied and len(tied) > 1 else "",
                           style="bold yellow" if f["number"] == r["pick"] else None)
        console.print(runoff)
        if r.get("tie_note"):
            console.print(f"tied: {r['tie_note']}", highlight=False)
    if result.resumed_trials:
        console.print(f"resumed: {result.resumed_trials} trial(s) came from an earlier run of this study")
    if result.chosen is not None:
        c = result.chosen
        console.print(f"[bold]chosen[/]: #{c['number']} {c['recipe_text']}: {result.objectives[0]} {c['quality']:.4f}, "
                      f"{result.objectives[1]} {c['cost']:.4g}", highlight=False)
        console.print(f"why: {result.why}", highlight=False)
    else:
        closest = result.closest
        console.print("[bold red]no candidate meets every budget[/]" + (
            f"; closest: #{closest['number']} {closest['recipe_text']}, missing {', '.join(result.missed)}"
            if closest else ""), highlight=False)
    if result.verdict is not None:
        render_verdict(result.verdict)
    if result.out_dir is not None:
        card = ", MODEL_CARD.md" if result.chosen is not None else ""
        console.print(f"wrote {result.out_dir}/model, summary.json, report.html{card} (run #{result.run_id})")


class _Bar:
    """A Rich progress bar with the current best on a terminal; otherwise a line per finished trial and
    per step after the trials."""

    def __init__(self, total: int) -> None:
        self.tty = err_console.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("[dim]{task.fields[best]}"), console=err_console,
                                 transient=True, disable=not self.tty)
        self.task = self.progress.add_task("searching", total=total, best="")
        self.last_done = -1

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, event: dict[str, Any]) -> None:
        best = f"best: {event['best']}" if event.get("best") else ""
        self.progress.update(self.task, completed=event["done"], total=event["total"],
                             description=event["message"][:70], best=best[:80])
        # Off a terminal (CI logs): a line per finished trial, and one per step after the trials.
        if not self.tty and (event["done"] != self.last_done or not event["message"].startswith("trial ")):
            self.last_done = event["done"]
            err_console.print(f"[{event['done']}/{event['total']}] {event['message']}" + (f"; {best}" if best else ""),
                              highlight=False, soft_wrap=True)


def _announce(config: Path | None, *, given: bool) -> Path | None:
    """Say which config a command found (on stderr, so --json stays one document): a frugal.yaml picked
    up from the working directory, or the built-in default, is never a silent choice."""
    if not given:
        err_console.print(f"config: ./{config} (found in the working directory)" if config is not None else
                          "config: the built-in default (no --config, no ./frugal.yaml)", highlight=False)
    return config


@app.command("optimize")
def optimize_command(
    config: Path = typer.Option(None, "--config", "-c", help="frugal.yaml (default: ./frugal.yaml when there is one, "
                                "else the built-in default)."),
    out: Path = typer.Option(Path("frugal-out"), "--out", "-o", help="Output directory (model, summary.json, report.html, MODEL_CARD.md)."),
    trials: int = typer.Option(None, "--trials", help="Override search.trials."),
    timeout: str = typer.Option(None, "--timeout", help="Start no new trial after this long, e.g. 90s, 10m, 1h "
                                "(overrides search.timeout_s); the run-off and saving follow."),
    executor: str = typer.Option(None, "--executor", help="local or ray (overrides search.executor)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address (with --executor ray)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json instead of tables."),
) -> None:
    """Search compression recipes for the Pareto front of quality vs cost, pick one under the budgets, save it.

    Exit 0 when a candidate meets every budget, 1 when none does (the closest is named), 2 on a usage error.
    """
    timeout_s = None if timeout is None else parse_duration(timeout, "--timeout")
    config = _announce(find_config(config), given=config is not None)
    cfg = load_config(config)
    total = trials or cfg.search.trials
    with _Bar(total) as bar:
        result = optimize(cfg, out_dir=out, trials=trials, timeout_s=timeout_s, executor=executor, address=address,
                          overwrite=overwrite, on_progress=bar.update)
    if as_json:
        typer.echo(dumps(result.to_dict()))
    else:
        render_search(result)
    if not result.ok or (result.verdict is not None and not result.verdict.passed):
        raise typer.Exit(1)


@app.command("gate")
def gate_command(
    model: str = typer.Argument(..., help="The model to check: an artifact directory, zoo:NAME, or a model path."),
    config: Path = typer.Option(None, "--config", "-c", help="frugal.yaml with the budgets (default: ./frugal.yaml "
                                "when there is one, else the built-in default)."),
    baseline: str = typer.Option(None, "--baseline", help="A run id or a model directory to check latency regressions against."),
    tolerance: float = typer.Option(0.05, "--tolerance", help="Slowdown vs the baseline that still passes (fraction)."),
    junit: Path = typer.Option(None, "--junit", help="Write a JUnit XML report here."),
    markdown: Path = typer.Option(None, "--markdown", help="Write a Markdown table here (for a pull-request comment)."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
    store: str = typer.Option(None, "--store", help="Run store URL (default: the config's store)."),
) -> None:
    """Measure MODEL, check every budget, and exit 0 (pass), 1 (a budget failed) or 2 (usage error)."""
    config = _announce(find_config(config), given=config is not None)
    cfg = load_config(config)
    from frugalml.store import default_store_url

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"gating {model}", total=None)
        # The path (or None), not cfg: gate() checks that the built-in default suits the model.
        verdict = gate(model, config, baseline=baseline, tolerance=tolerance, store=store or cfg.store or default_store_url(),
                       on_progress=lambda message: bar.update(task, description=message))
    if junit is not None:
        junit.write_text(verdict.to_junit(), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(verdict.to_markdown(), encoding="utf-8")
    if as_json:
        typer.echo(dumps(verdict.to_dict()))
    else:
        render_verdict(verdict)
    if not verdict.passed:
        raise typer.Exit(1)

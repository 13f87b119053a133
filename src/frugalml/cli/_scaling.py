"""`frugal scaling fit|plan|diagnose|sweep`: parse options, call frugalml.scaling, render the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console, err_console

__all__ = ["scaling_app"]

scaling_app = typer.Typer(help="Scaling laws: fit, plan, diagnose, sweep.", no_args_is_help=True)
app.add_typer(scaling_app, name="scaling")

_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."
_CONSTANTS_HELP = "chinchilla (Hoffmann et al. 2022), epoch (Besiroglu et al. 2024), or a JSON file from 'fit --json'."


def _warn(warnings: list[Any]) -> None:
    for w in warnings:
        message = w.message if hasattr(w, "message") else str(w)
        kind = f"{w.kind}: " if hasattr(w, "kind") else ""
        err_console.print(f"[yellow]warning:[/] {kind}{message}", highlight=False, soft_wrap=True)


def _law_table(fit: Any) -> Table:
    law = fit.law
    names = ("E", "A", "B", "alpha", "beta") if hasattr(law, "beta") else ("A", "alpha", "B")
    table = Table(title=f"{'L(N, D) = E + A/N^alpha + B/D^beta' if hasattr(law, 'beta') else 'L(x) = A x^-alpha + B'}"
                  f" ({fit.n_points} points, {fit.n_boot} bootstrap refits)", title_justify="left")
    for col in ("constant", "value", "95% CI"):
        table.add_column(col, justify="left" if col == "constant" else "right")
    for k in names:
        ci = law.ci.get(k)
        table.add_row(k, f"{getattr(law, k):.4g}", f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "—")
    return table


@scaling_app.command("fit")
def fit_command(
    data: Path = typer.Argument(None, help="CSV, Parquet or JSON of runs (params, tokens or samples, loss[, flops])."),
    run: int = typer.Option(None, "--run", help="Fit the points of a 'scaling-sweep' run in the store instead."),
    single: str = typer.Option(None, "--single", help="Fit L(x) = A x^-alpha + B of one column: params, tokens "
                               "or flops."),
    n_boot: int = typer.Option(100, "--bootstrap", help="Bootstrap refits for the CIs."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the fitted law as JSON (usable as --constants)."),
    report: Path = typer.Option(None, "--report", help="Write an HTML report with the plots."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Fit a scaling law to measured runs (Hoffmann et al.'s method) with bootstrap CIs."""
    from frugalml.scaling import fit_power_law, fit_two_resource
    from frugalml.scaling._report import points_for, write_scaling_report

    points = points_for(data, run, store)
    if single is not None:
        from frugalml._validate import check_choice

        column = {"params": points.n_params, "tokens": points.n_tokens, "flops": points.flops}[
            check_choice(single, "single", ("params", "tokens", "flops"))]
        fit = fit_power_law(column, points.loss, resource=single, n_boot=n_boot)
    else:
        fit = fit_two_resource(points, n_boot=n_boot)
    if output is not None:
        output.write_text(dumps(fit.to_dict()) + "\n")
    if report is not None:
        write_scaling_report(points, fit, report)
    if as_json:
        typer.echo(dumps(fit.to_dict()))
        return
    console.print(_law_table(fit))
    g = fit.goodness
    console.print(f"goodness: R^2 of log loss {g['r2_log']:.4f}, RMSE(log) {g['rmse_log']:.4g}, mean |rel error| "
                  f"{100 * g['mean_abs_rel_error']:.2f}%, max {100 * g['max_abs_rel_error']:.2f}%")
    rng = fit.law.fitted_range
    spans = [f"{k} [{v[0]:.3g}, {v[1]:.3g}]" for k, v in (("params", rng.n_params), ("tokens", rng.n_tokens),
                                                             ("flops", rng.flops), (single or "x", rng.x)) if v]
    console.print("fitted range: " + ", ".join(spans))
    _warn(fit.warnings)
    if output is not None:
        console.print(f"wrote {output}")
    if report is not None:
        console.print(f"wrote {report}")


def _plan_rows(p: Any) -> Table:
    table = Table(title=f"Compute-optimal allocation ({p.law} constants; given {p.given})", title_justify="left")
    table.add_column("", justify="left")
    table.add_column("value", justify="right")
    table.add_row("parameters N", f"{p.n_params:.4g}")
    table.add_row("tokens D", f"{p.n_tokens:.4g}")
    table.add_row("compute C = 6ND (FLOPs)", f"{p.flops:.4g}")
    table.add_row("tokens per parameter", f"{p.tokens_per_param:.3g}")
    table.add_row("predicted loss", f"{p.loss:.4g}")
    return table


@scaling_app.command("plan")
def plan_command(
    flops: float = typer.Option(None, "--flops", help="Compute budget C in FLOPs, e.g. 1e21."),
    params: float = typer.Option(None, "--params", help="Model size N: the compute and data for which it is optimal."),
    tokens: float = typer.Option(None, "--tokens", help="Data size D: the compute and model for which it is optimal."),
    constants: str = typer.Option("chinchilla", "--constants", help=_CONSTANTS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compute-optimal N and D for a budget (C = 6ND), or the inverse questions."""
    from frugalml.scaling import load_constants, plan

    law = load_constants(constants)
    p = plan(law, flops=flops, n_params=params, n_tokens=tokens)
    if as_json:
        typer.echo(dumps(p.to_dict()))
    else:
        console.print(_plan_rows(p))
        console.print(f"[dim]{law.source}[/]")
    _warn(p.warnings)


@scaling_app.command("diagnose")
def diagnose_command(
    params: float = typer.Option(..., "--params", help="The run's model size N."),
    tokens: float = typer.Option(..., "--tokens", help="The run's training tokens (or samples) D."),
    loss: float = typer.Option(None, "--loss", help="The run's measured final loss, if it ran."),
    constants: str = typer.Option("chinchilla", "--constants", help=_CONSTANTS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The regime of a planned or actual run (data-limited, compute-limited, near optimal) and warnings."""
    from frugalml.scaling import diagnose, load_constants

    d = diagnose(load_constants(constants), n_params=params, n_tokens=tokens, loss=loss)
    if as_json:
        typer.echo(dumps(d.to_dict()))
    else:
        console.print(f"[bold]{d.regime}[/]: {d.tokens_per_param:.3g} tokens per parameter; compute-optimal at "
                      f"C = {d.flops:.3g} is {d.optimal.n_params:.3g} parameters on {d.optimal.n_tokens:.3g} tokens "
                      f"({d.optimal.tokens_per_param:.3g} per parameter).")
        console.print(f"predicted loss {d.predicted_loss:.4g} (optimum {d.optimal.loss:.4g}, excess {d.excess_loss:.3g})"
                      + (f"; measured {d.loss:.4g}" if d.loss is not None else "")
                      + f"; doubling the compute buys {d.gain_per_doubling:.3g}.")
    _warn(d.warnings)


@scaling_app.command("sweep")
def sweep_command(
    config: Path = typer.Option(None, "--config", help="Sweep YAML (grid and training recipe); built-in default "
                                "when omitted."),
    device: str = typer.Option(None, "--device", help="cpu or cuda (overrides the config)."),
    report: Path = typer.Option(Path("scaling-report.html"), "--report", help="Where to write the HTML report."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train a grid of small models over model size x data size, record them, fit, report."""
    from frugalml._validate import check_choice
    from frugalml.scaling._report import write_scaling_report
    from frugalml.scaling._sweep import load_sweep_config, sweep

    cfg = load_sweep_config(config)
    updates: dict[str, Any] = {}
    if device is not None:
        updates["device"] = check_choice(device, "device", ("cpu", "cuda"))
    if store is not None:
        updates["store"] = store
    cfg = cfg.model_copy(update=updates)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("sweep", total=len(cfg.model_sizes) * len(cfg.data_sizes))
        result = sweep(cfg, on_progress=lambda done, total, message: bar.update(task, completed=done,
                                                                                 description=message))
    from frugalml.scaling import points_from_arrays

    pts = result.points
    points = points_from_arrays([p["n_params"] for p in pts], [p["n_tokens"] for p in pts], [p["loss"] for p in pts],
                                [p["flops"] for p in pts], source=f"sweep run #{result.run_id}")
    write_scaling_report(points, result.fit, report)
    if as_json:
        typer.echo(dumps(result.to_dict()))
        return
    table = Table(title=f"Sweep ({cfg.task}, run #{result.run_id}, {result.seconds:.0f} s)", title_justify="left")
    for col in ("size", "params N", "tokens D", "FLOPs", "held-out loss", "s"):
        table.add_column(col, justify="right")
    for p in pts:
        table.add_row(f"{p['size']:.0f}", f"{p['n_params']:.4g}", f"{p['n_tokens']:.4g}", f"{p['flops']:.3g}",
                      f"{p['loss']:.4f}", f"{p['seconds']:.1f}")
    console.print(table)
    if result.fit is not None:
        console.print(_law_table(result.fit))
        _warn(result.fit.warnings)
    console.print(f"wrote {report}")

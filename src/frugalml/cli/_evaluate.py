"""`frugal evaluate MODEL`: quality overall and per subgroup, and the drop against a reference model."""

from __future__ import annotations

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console, err_console
from frugalml.errors import InvalidArgumentError
from frugalml.evaluate import Evaluation, dropped_group, evaluate
from frugalml.store import default_store_url

__all__ = ["evaluate_command", "render_evaluation"]


def _num(value: float | None) -> str:
    # Rounded to 1e-6 first, so a paired difference of float noise (-9e-09) reads 0.
    return "-" if value is None else f"{round(value, 6) + 0.0:.4g}"


def render_evaluation(ev: Evaluation) -> None:
    """The metrics with their intervals, the reference's values and the drops, then one row per group."""
    against = f" against {ev.reference_model}" if ev.reference_model else ""
    # A line of its own: as a table title it would wrap to the (narrow) table's width.
    console.print(f"{ev.task} quality of {ev.model} on {ev.data} ({ev.n_items} rows){against}; "
                  f"{ev.confidence:.0%} bootstrap intervals", highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value (CI)", justify="right")
    if ev.reference is not None:
        table.add_column("reference", justify="right")
        table.add_column("drop (paired CI)", justify="right")
    for metric, e in ev.overall.items():
        name = f"{metric} *" if metric == ev.primary else metric
        row = [name, f"{_num(e.value)} [{_num(e.low)}, {_num(e.high)}]"]
        if ev.reference is not None:
            drop = (ev.drop or {}).get(metric)
            row += [_num(ev.reference.get(metric)),
                    f"{_num(drop.value)} [{_num(drop.low)}, {_num(drop.high)}]" if drop is not None else "-"]
        table.add_row(*row)
    console.print(table)
    note = "* the primary metric (budgets and the search use it)"
    if ev.drop is not None:
        note += "; drop: how much worse than the reference (positive = worse)"
    console.print(note, highlight=False)
    if not ev.by_group:
        return
    console.print(f"By group ({ev.group_column}): {ev.primary}", highlight=False)
    groups = Table()
    for col in ("group", "rows", ev.primary, *(("reference", "drop") if ev.group_drop else ())):
        groups.add_column(col, justify="left" if col == "group" else "right")
    worst = ev.worst_group_drop
    dropped = dropped_group(worst)
    for group in sorted(ev.by_group, key=lambda g: (-ev.group_drop.get(g, 0.0), g)):
        row = [group, f"{ev.group_sizes.get(group, 0):,}", _num(ev.by_group[group].get(ev.primary))]
        if ev.group_drop:
            row += [_num(ev.reference_by_group.get(group, {}).get(ev.primary)), _num(ev.group_drop.get(group))]
        groups.add_row(*row, style="bold" if group == dropped else "")
    console.print(groups)
    gap = ev.difference()
    lines = [f"best group minus worst: {_num(gap)}"] if gap is not None else []
    if worst is not None:
        lines.append(f"worst group drop: {dropped} {_num(worst[1])}" if dropped else "no group dropped")
    if lines:
        console.print("; ".join(lines), highlight=False)


@app.command("evaluate")
def evaluate_command(
    model: str = typer.Argument(..., help="The model to evaluate: zoo:NAME, a model directory or an .onnx file."),
    data: str = typer.Option(None, "--data", help="zoo:NAME or a CSV / TSV / Parquet / JSONL file (default: the "
                             "model's own data). Its test split is used when it has a 'split' column."),
    reference: str = typer.Option(None, "--reference", help="The model to compare against (the original): "
                                  "drops, per-group drops and, for embedding models, fidelity."),
    text_column: str = typer.Option(None, "--text-column", help="The column holding the text (default 'text')."),
    label_column: str = typer.Option(None, "--label-column", help="The column holding the labels."),
    group_column: str = typer.Option(None, "--group-column", help="The column naming each row's subgroup."),
    task: str = typer.Option(None, "--task", help="classification | embedding | regression (default: the model's)."),
    limit: int = typer.Option(512, "--limit", help="Evaluate a seeded sample of at most this many rows "
                              "(0: every row)."),
    seq_len: int = typer.Option(64, "--seq-len", help="Tokens per text item (padded / truncated)."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the confidence intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the row sample and the bootstrap."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda (where the models run)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    store: str = typer.Option(None, "--store", help="Run store URL (default $FRUGAL_STORE or "
                              "sqlite:///.frugal/runs.db)."),
) -> None:
    """Quality of MODEL overall and per subgroup, with confidence intervals, and its drop against --reference."""
    # The library names its own parameters (n_boot, limit); these errors name the options.
    for option, value, low in (("--bootstrap", bootstrap, 1), ("--limit", limit, 0), ("--seed", seed, 0)):
        if value < low:
            raise InvalidArgumentError(option, value, f"must be >= {low}",
                                       f"Use e.g. {option} {dict(bootstrap=200, limit=512, seed=0)[option[2:]]}.")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        bar.add_task(f"evaluating {model}", total=None)
        result = evaluate(model, data, reference, store=store or default_store_url(), task=task, text_column=text_column,
                          label_column=label_column, group_column=group_column,
                          limit=None if limit == 0 else limit, seq_len=seq_len, n_boot=bootstrap, seed=seed,
                          device=device)
    if as_json:
        typer.echo(dumps(result.to_dict()))
    else:
        render_evaluation(result)
        if result.run_id is not None:
            console.print(f"run #{result.run_id}", highlight=False)

"""`frugal data audit`: parse options, call frugalml.data.audit, render the findings."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console, err_console

__all__ = ["data_app"]

data_app = typer.Typer(help="Data efficiency: audit datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("audit")
def audit_command(
    data: Path = typer.Argument(..., help="CSV, Parquet, JSONL, or a folder of .txt files."),
    text_column: str = typer.Option(None, "--text-column", help="The text column (default: 'text' if present; "
                                    "without text, numeric columns are feature vectors)."),
    label_column: str = typer.Option(None, "--label-column", help="Labels: class balance and label issues."),
    group_column: str = typer.Option(None, "--group-column", help="Groups: their balance."),
    split_column: str = typer.Option(None, "--split-column", help="Splits (train/test): duplicates across them are "
                                     "leakage."),
    schema: Path = typer.Option(None, "--schema", help="YAML schema: columns: {name: {dtype, nullable, min, max, "
                                "isin}}."),
    near_threshold: float = typer.Option(0.7, "--near-threshold", help="Jaccard similarity (character 5-grams) "
                                         "for near-duplicate text."),
    cosine_threshold: float = typer.Option(0.995, "--cosine-threshold", help="Cosine similarity for near-duplicate "
                                           "vectors."),
    no_label_issues: bool = typer.Option(False, "--no-label-issues", help="Skip the label-issue model."),
    write_clean_to: Path = typer.Option(None, "--write-clean", help="Write a copy without duplicates and label "
                                        "issues (the input is never modified)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --write-clean file."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Find duplicates, near-duplicates, train/test leakage, label issues, schema problems and imbalance."""
    from frugalml.data import audit, write_clean

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("reading")
        report = audit(data, text_column=text_column, label_column=label_column, group_column=group_column,
                       split_column=split_column, schema=schema, near_threshold=near_threshold,
                       cosine_threshold=cosine_threshold, find_label_issues=not no_label_issues,
                       on_progress=lambda rows, message: bar.update(task, description=message))
    written = write_clean(report, write_clean_to, overwrite=overwrite) if write_clean_to is not None else None
    if as_json:
        doc = report.to_dict()
        if written is not None:
            doc["clean"] = {"path": str(write_clean_to), "rows": written}
        typer.echo(dumps(doc))
        return
    s = report.to_dict()["summary"]
    table = Table(title=f"Audit of {data} ({report.n_rows:,} rows, {report.seconds:.1f} s)", title_justify="left")
    table.add_column("finding")
    table.add_column("rows", justify="right")
    table.add_column("examples (row: the earlier row it repeats, or given -> suggested label)")
    table.add_row("exact duplicates", f"{s['exact_duplicates']:,}",
                  ", ".join(f"{r}: {e}" for r, e in report.exact_duplicates[:5]))
    table.add_row("near duplicates", f"{s['near_duplicates']:,}",
                  ", ".join(f"{r}: {e} ({sim:.2f})" for r, e, sim in report.near_duplicates[:5]))
    table.add_row("train/test leakage", f"{s['leakage']:,}" if split_column else "not checked (no --split-column)",
                  ", ".join(f"{r}: {e}" for r, e, _ in report.leakage[:5]))
    table.add_row("label issues", f"{s['label_issues']:,}" if report.label_issues_checked else "not checked",
                  ", ".join(f"{r}: {g} -> {sug}" for r, g, sug in report.label_issues[:5]))
    table.add_row("schema failures", f"{s['schema_failures']:,}" if schema else "not checked (no --schema)",
                  "; ".join(f"{f['column']} {f['check']} ({f['count']})" for f in report.schema_failures[:3]))
    table.add_row("missing values", f"{s['missing']:,}", ", ".join(f"{c}: {n}" for c, n in report.missing.items()))
    console.print(table)
    if report.class_balance:
        console.print("classes: " + ", ".join(f"{k} {v}" for k, v in list(report.class_balance.items())[:12]))
    if report.group_balance:
        console.print("groups: " + ", ".join(f"{k} {v}" for k, v in list(report.group_balance.items())[:12]))
    for note in report.notes:
        console.print(f"note: {note}")
    if written is not None:
        console.print(f"wrote {write_clean_to}: {written:,} rows ({report.n_rows - written:,} removed)")

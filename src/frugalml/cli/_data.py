"""`frugal data audit|select|simulate-al|prune-data`: parse options, call frugalml.data, render the results."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console, err_console

__all__ = ["data_app"]

data_app = typer.Typer(help="Data efficiency: audit datasets, choose rows to label, prune training data.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("audit")
def audit_command(
    data: str = typer.Argument(..., help="CSV, TSV, Parquet, JSONL, a folder of .txt files, or zoo:NAME (its "
                               "declared text, label, group and split columns are the defaults)."),
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
                                           "vectors whose columns share one scale (pixels, embeddings); other "
                                           "numeric rows are standardised and compared by distance."),
    near_metric: str = typer.Option("auto", "--near-metric", help="How near-duplicate rows are compared: auto "
                                    "(jaccard for text; cosine for vectors on one scale, distance_sd otherwise), "
                                    "or force cosine or distance_sd on numeric rows."),
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
                       cosine_threshold=cosine_threshold, near_metric=near_metric,
                       find_label_issues=not no_label_issues,
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
                  ", ".join(f"{r}: {e} ({sim:.2f}{' sd' if report.near_metric == 'distance_sd' else ''})"
                            for r, e, sim in report.near_duplicates[:5]))
    table.add_row("train/test leakage", f"{s['leakage']:,}" if report.split_column else "not checked (no --split-column)",
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


_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."
_DATA_HELP = "zoo:NAME, a CSV / TSV / Parquet / JSONL file, or a folder of .txt files."
_TEXT_HELP = "The text column (default: 'text' if present; otherwise numeric columns are features)."
_SPLIT_HELP = "Column whose 'test' rows are the test set (default: hold out --test-fraction, stratified)."


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


@data_app.command("select")
def select_command(
    data: str = typer.Argument(..., help=_DATA_HELP + " Rows with an empty label are the unlabelled pool."),
    label_column: str = typer.Option(..., "--label-column", help="The label column (empty = not yet labelled)."),
    strategy: str = typer.Option("margin", "--strategy", help="uncertainty, margin, entropy, bald, coreset or "
                                 "random."),
    budget: int = typer.Option(100, "--budget", help="How many rows to choose."),
    text_column: str = typer.Option(None, "--text-column", help=_TEXT_HELP),
    probs: list[Path] = typer.Option(None, "--probs", help="Your model's class probabilities (.npy or .csv, one "
                                     "row per data row or per unlabelled row); repeat for bald's stochastic "
                                     "passes. Default: a quick model fitted on the labelled rows."),
    seed: int = typer.Option(0, "--seed", help="Seed (random strategy, bootstrap ensemble)."),
    out: Path = typer.Option(None, "--out", help="Write the chosen rows (all their columns, plus row, score and "
                             "predicted) to this CSV, for labelling."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Choose the BUDGET unlabelled rows most worth labelling next."""
    from frugalml.data import select, write_rows
    from frugalml.data._write import check_out

    if out is not None:
        check_out(out, overwrite=overwrite)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        bar.add_task(f"choosing {budget} rows by {strategy}")
        selection = select(data, label_column=label_column, strategy=strategy, budget=budget,
                           text_column=text_column, probs=list(probs) if probs else None, seed=seed)
    if out is not None:
        write_rows(data, selection.rows, out, extra={"score": selection.scores, "predicted": selection.predicted},
                   text_column=text_column, label_column=label_column, overwrite=overwrite)
    if as_json:
        typer.echo(dumps(selection.to_dict()))
        return
    table = Table(title=f"{len(selection.rows)} of {selection.n_unlabelled:,} unlabelled rows by {strategy} "
                  f"({selection.n_labelled:,} labelled; model: {selection.model})", title_justify="left")
    for col in ("rank", "row", "score", "predicted"):
        table.add_column(col, justify="right")
    for i, (r, sc, p) in enumerate(zip(selection.rows, selection.scores, selection.predicted), 1):
        if i > 20:
            break
        table.add_row(str(i), str(r), "" if sc != sc else f"{sc:.4g}", p or "")
    console.print(table)
    if len(selection.rows) > 20:
        console.print(f"... {len(selection.rows) - 20} more (--json or --out for all)")
    if out is not None:
        console.print(f"wrote {out}")


@data_app.command("simulate-al")
def simulate_al_command(
    data: str = typer.Argument(..., help=_DATA_HELP + " Every row needs a label (hidden until queried)."),
    label_column: str = typer.Option(..., "--label-column", help="The label column."),
    strategy: list[str] = typer.Option(None, "--strategy", help="Strategies to compare (repeat; default: all). "
                                       "random is always run, as the baseline."),
    text_column: str = typer.Option(None, "--text-column", help=_TEXT_HELP),
    split_column: str = typer.Option(None, "--split-column", help=_SPLIT_HELP),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Held-out share without --split-column."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds per strategy (each a different random start)."),
    initial: int = typer.Option(20, "--initial", help="Random labels to start from."),
    batch: int = typer.Option(10, "--batch", help="Rows queried per round."),
    max_labels: int = typer.Option(600, "--max-labels", help="Stop a run at this many labels."),
    target: float = typer.Option(0.95, "--target", help="Target: this fraction of the accuracy with all labels."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with the learning curves)."),
) -> None:
    """Simulate active learning on labelled data: labels each strategy needs to reach the target vs random."""
    from frugalml._validate import check_positive_int
    from frugalml.data import STRATEGIES, simulate_al

    check_positive_int(seeds, "seeds", maximum=1000)
    strategies = tuple(strategy) if strategy else STRATEGIES
    with _bar() as bar:
        task = bar.add_task("simulating", total=None)
        result = simulate_al(data, label_column=label_column, text_column=text_column, split_column=split_column,
                             test_fraction=test_fraction, strategies=strategies, seeds=tuple(range(seeds)),
                             initial=initial, batch=batch, max_labels=max_labels, target_fraction=target,
                             store=store, on_progress=lambda done, total, message: bar.update(
                                 task, completed=done, total=total, description=message))
    if as_json:
        typer.echo(dumps(result.to_dict()))
        return
    table = Table(title=f"Active learning on {data} (run #{result.run_id}, {result.seconds:.0f} s): labels to reach "
                  f"{result.target:.4f} = {result.target_fraction:.0%} of {result.full_accuracy:.4f}, "
                  f"{len(result.config['seeds'])} seeds", title_justify="left")
    for col in ("strategy", "labels needed (mean)", "per seed", "fewer labels than random"):
        table.add_column(col, justify="right")
    ranked = sorted(result.labels_needed, key=lambda s: result.mean_labels_needed(s) or float("inf"))
    for s in ranked:
        mean, saving = result.mean_labels_needed(s), result.savings(s)
        table.add_row(s, f"{mean:.0f}" if mean is not None else f"> {max_labels} (not reached)",
                      " ".join("-" if n is None else str(n) for n in result.labels_needed[s]),
                      "" if s == "random" else ("-" if saving is None else f"{saving:.0%}"))
    console.print(table)


@data_app.command("prune-data")
def prune_data_command(
    data: str = typer.Argument(..., help=_DATA_HELP),
    label_column: str = typer.Option(..., "--label-column", help="The label column."),
    method: str = typer.Option("el2n", "--method", help="el2n, forgetting or random."),
    keep: list[float] = typer.Option(None, "--keep", help="Fraction of the training rows to keep (repeat for "
                                     "several; default 0.5)."),
    text_column: str = typer.Option(None, "--text-column", help=_TEXT_HELP),
    split_column: str = typer.Option(None, "--split-column", help=_SPLIT_HELP),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Held-out share without --split-column."),
    epochs: int = typer.Option(None, "--epochs", help="Scoring epochs (default: el2n 3, forgetting 20)."),
    evaluate: bool = typer.Option(False, "--evaluate", help="Train on each kept subset, a random subset of the same "
                                  "size and all rows; report test accuracy per fraction."),
    seeds: int = typer.Option(5, "--seeds", help="Seeds per accuracy with --evaluate."),
    out: Path = typer.Option(None, "--out", help="Write the kept rows (of the largest --keep) to this CSV."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Score training rows early in training and keep the informative fraction."""
    from frugalml.data import prune_data, write_rows
    from frugalml.data._write import check_out

    if out is not None:
        check_out(out, overwrite=overwrite)
    fractions = list(keep) if keep else [0.5]
    with _bar() as bar:
        task = bar.add_task("scoring", total=None)
        result = prune_data(data, label_column=label_column, method=method, keep=fractions, text_column=text_column,
                            split_column=split_column, test_fraction=test_fraction, epochs=epochs, evaluate=evaluate,
                            seeds=seeds, store=store, on_progress=lambda done, total, message: bar.update(
                                task, completed=done, total=total, description=message))
    written = None
    if out is not None:
        largest = max(result.kept)
        written = write_rows(data, result.kept[largest], out, text_column=text_column, label_column=label_column,
                             overwrite=overwrite)
    if as_json:
        doc = result.to_dict()
        if written is not None:
            doc["out"] = {"path": str(out), "rows": written}
        typer.echo(dumps(doc))
        return
    table = Table(title=f"Data pruning of {data} by {method} (run #{result.run_id}, {len(result.train_rows):,} "
                  f"training rows, {result.seconds:.0f} s)", title_justify="left")
    table.add_column("kept", justify="right")
    table.add_column("rows", justify="right")
    compared = [name for name in result.accuracy if name != "all"]
    if evaluate:
        everything = result.accuracy["all"]["1.0"]["mean"]
        for col in [f"{name} accuracy" for name in compared] + [f"{method} vs all ({everything:.4f})"]:
            table.add_column(col, justify="right")
    for k, rows in result.kept.items():
        cells = [f"{k:.0%}", f"{len(rows):,}"]
        if evaluate:
            cells += [f"{a['mean']:.4f} ± {a['std']:.4f}" for a in (result.accuracy[n][str(k)] for n in compared)]
            cells.append(f"{100 * (result.accuracy[method][str(k)]['mean'] - everything):+.2f} points")
        table.add_row(*cells)
    console.print(table)
    if written is not None:
        console.print(f"wrote {out}: {written:,} rows")

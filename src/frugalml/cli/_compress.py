"""`frugal compress MODEL --recipe FILE -o OUT`: parse options, call compress_to_dir, render the result."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from frugalml._json import dumps
from frugalml.cli._app import app, console, data_option, err_console
from frugalml.compress import CompressResult, compress_to_dir, read_key_file
from frugalml.errors import InvalidArgumentError
from frugalml.store import default_store_url

__all__ = ["compress_command", "render_compress"]


def render_compress(result: CompressResult) -> None:
    table = Table(title=f"Compressed to {result.out_dir}", title_justify="left")
    for col in ("step", "technique", "changed", "skipped"):
        table.add_column(col, justify="right" if col in ("step", "changed", "skipped") else "left")
    for i, step in enumerate(result.steps, 1):
        table.add_row(str(i), step["technique"], str(len(step["changed"])), str(len(step["skipped"])))
    console.print(table)
    for step in result.steps:
        for skip in step["skipped"]:
            console.print(f"  skipped by {step['technique']}: {skip['layer']}: {skip['reason']}", highlight=False)
        note = step["metrics"].get("note")
        if note:
            console.print(f"  {step['technique']}: {note}", highlight=False)
    metrics = Table(title="Measured", title_justify="left", show_header=False)
    metrics.add_column(style="bold")
    metrics.add_column(justify="right")
    for key, value in result.metrics.items():
        metrics.add_row(key, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(metrics)
    if result.run_id is not None:
        console.print(f"run #{result.run_id}")


@app.command("compress")
def compress_command(
    model: str = typer.Argument(..., help="zoo:NAME, a model directory, or an .onnx file."),
    recipe: Path = typer.Option(..., "--recipe", "-r", help="Recipe YAML or JSON (see docs/compress.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the compressed model."),
    data: str = typer.Option(None, "--data", help="Calibration / distillation / evaluation data (zoo:NAME or a file)."),
    text_column: str = typer.Option(None, "--text-column", help="The column of --data holding the text "
                                    "(default 'text')."),
    label_column: str = typer.Option(None, "--label-column", help="The column of --data holding the labels (hard "
                                     "targets for distillation, accuracy in the manifest)."),
    calibration: str = typer.Option(None, "--calibration", help="Other data for static-quantization calibration and "
                                    "the sensitivity analysis (default: --data); its text column as --text-column."),
    seq_len: int = typer.Option(64, "--seq-len", help="Tokens per text item during calibration and training."),
    seed: int = typer.Option(0, "--seed", help="Seed for everything random."),
    device: str = typer.Option("cpu", "--device", help="Where PyTorch steps run: cpu or cuda (INT4 / FP8 weights "
                               "and 2:4 sparsity need cuda)."),
    encrypt_key_file: Path = typer.Option(None, "--encrypt-key-file", help="Encrypt the artifact (AES-256-GCM) with this 32-byte key."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    store: str = typer.Option(None, "--store", help="Run store URL."),
) -> None:
    """Apply a compression recipe to MODEL and save the result as a verified artifact directory."""
    if seed < 0:
        raise InvalidArgumentError("--seed", seed, "must be >= 0", "Use e.g. --seed 0.")
    key = read_key_file(encrypt_key_file) if encrypt_key_file is not None else None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err_console,
                  transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"compressing {model}", total=None)
        result = compress_to_dir(model, recipe, out, data=data_option(data, text_column=text_column,
                                                                      label_column=label_column),
                                 calibration_data=None if calibration is None else data_option(
                                     calibration, text_column=text_column, option="--calibration"),
                                 seq_len=seq_len, seed=seed, device=device, encrypt_key=key,
                                 overwrite=overwrite, store=store or default_store_url(),
                                 on_progress=lambda message: bar.update(task, description=message))
    if as_json:
        typer.echo(dumps({"out_dir": str(result.out_dir), "run_id": result.run_id, "metrics": result.metrics,
                          "steps": result.steps}))
    else:
        render_compress(result)

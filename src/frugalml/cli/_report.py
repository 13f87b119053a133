"""`frugal report`, `frugal card` and `frugal ui`: parse options, call frugalml.report / frugalml.ui."""

from __future__ import annotations

from pathlib import Path

import typer

from frugalml.cli._app import app, console

__all__ = ["card_command", "report_command", "ui_command"]

_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."
_TARGET_HELP = "A run id from 'frugal runs list', or the directory 'frugal optimize -o DIR' wrote."


@app.command("report")
def report_command(
    target: str = typer.Argument(..., help="A run id from 'frugal runs list', the directory 'frugal optimize -o "
                                 "DIR' wrote, or a JSON file from 'frugal profile --json', 'frugal compare --json' or "
                                 "'frugal evaluate --json'."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default: report.html in the "
                                "output directory, or report-RUN.html)."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Write the self-contained HTML report of a search, profile, comparison or evaluation (opens offline)."""
    from frugalml.report import write_report

    path = write_report(target, output, store=store)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command("card")
def card_command(
    target: str = typer.Argument(..., help=_TARGET_HELP),
    output: Path = typer.Option(Path("MODEL_CARD.md"), "--output", "-o", help="Where to write the Markdown."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
) -> None:
    """Write the model card (Mitchell et al. 2019) of the model an optimize run chose."""
    from frugalml.report import write_model_card

    path = write_model_card(target, output, store=store)
    console.print(f"wrote {path}")


@app.command("ui")
def ui_command(
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
) -> None:
    """Browse the store in a local web app: runs, reports, comparisons, cost of experimentation."""
    from frugalml.ui import serve
    from frugalml._net import check_bind

    check_bind(host, port)
    console.print(f"frugal ui on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(store, host=host, port=port)

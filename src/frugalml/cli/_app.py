"""The `frugal` Typer application, global options, and the error boundary.

Commands only parse arguments, call the library and render its result. A :class:`FrugalError`
becomes one line on stderr and exit code 2; any other exception exits 1 with a one-line summary.
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from frugalml._version import __version__
from frugalml.errors import FrugalError, InvalidArgumentError

__all__ = ["app", "console", "data_option", "err_console", "main", "state"]

app = typer.Typer(
    name="frugal",
    help="Make ML models fit where they are deployed: measure, compress, verify, gate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)
state: dict[str, bool] = {"debug": False}
_PIPED_WIDTH = 160  # characters: the widest table (profile's per-batch rows) fits whole


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"frugalml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    key_file: Path = typer.Option(None, "--key-file", help="The key of encrypted artifacts (compress "
                                  "--encrypt-key-file) that this command loads; sets $FRUGAL_KEY_FILE."),
) -> None:
    state["debug"] = debug or bool(os.environ.get("FRUGAL_DEBUG"))
    if key_file is not None:
        from frugalml.compress.artifact import KEY_FILE_ENV, read_key_file

        read_key_file(key_file, argument="--key-file")  # a bad key file fails here, named as the option
        # in the environment, so every load in this process, and the processes it starts (serve
        # --workers replicas), can open the artifact
        os.environ[KEY_FILE_ENV] = str(key_file.resolve())
    # Off a terminal (CI logs, a pipe, `| tee`) Rich assumes 80 columns and truncates the numbers of
    # wide tables ("0.000…"); lay them out whole there unless COLUMNS says how wide to be.
    for out in (console, err_console):
        if not out.is_terminal and not os.environ.get("COLUMNS"):
            out.width = _PIPED_WIDTH
    level = logging.DEBUG if state["debug"] else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Library loggers that are chatty at INFO.
    for name in ("alembic", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # torch-pruning imports torchao, whose optional CUDA kernels and pytree registrations log
    # warnings on every CPU-only start; they say nothing about the user's command.
    for name in ("torchao", "torch.utils._pytree", "root"):
        logging.getLogger(name).setLevel(max(level, logging.ERROR))
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def data_option(data: str | None, *, text_column: str | None = None, label_column: str | None = None,
                option: str = "--data") -> Any:
    """``--data`` as the library takes it: the spec itself, or with ``--text-column`` / ``--label-column``
    the Dataset those columns describe (a file's text column need not be called ``text``)."""
    if text_column is None and label_column is None:
        return data
    if data is None:
        flag, value = ("--text-column", text_column) if text_column is not None else ("--label-column", label_column)
        raise InvalidArgumentError(flag, value, f"names a column of {option}, and no {option} was given",
                                   f"Pass {option} FILE with that column, or leave {flag} out.")
    from frugalml.datasets import load_dataset

    return load_dataset(data, text_column=text_column, label_column=label_column, argument=option)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    # importing the command modules registers their commands
    from frugalml.cli import (  # noqa: F401
        _compress,
        _data,
        _evaluate,
        _optimize,
        _profile,
        _report,
        _runs,
        _scaling,
        _serve,
        _train,
    )

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app(args=argv, prog_name="frugal", standalone_mode=True)
    except FrugalError as exc:
        if state["debug"]:
            raise
        # escape: a message quoting a list ("[a, b]") is text, not Rich markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if state["debug"]:
            raise
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                          "Run again with --debug for the traceback, and please report it.",
                          highlight=False, soft_wrap=True)
        sys.exit(1)

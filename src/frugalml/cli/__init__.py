"""The `frugal` command line: thin commands over the library (see _app.py for the error boundary)."""

from frugalml.cli._app import app, main

__all__ = ["app", "main"]

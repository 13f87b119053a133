"""`python -m frugalml` runs the CLI."""

from frugalml.cli import main

main()

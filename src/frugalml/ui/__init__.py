"""`frugal ui`: the local web app over the run store (see :mod:`frugalml.ui._app`)."""

from frugalml.ui._app import create_app
from frugalml.ui._serve import serve

__all__ = ["create_app", "serve"]

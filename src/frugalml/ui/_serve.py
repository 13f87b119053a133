"""Run the UI with uvicorn: loopback by default, since the store may hold private results."""

from __future__ import annotations

import logging
from typing import Any

from frugalml._net import check_bind, check_free
from frugalml.errors import InvalidArgumentError

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(store: Any = None, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the UI until interrupted."""
    check_bind(host, port)
    try:
        import uvicorn
    except ImportError:
        raise InvalidArgumentError("ui", "uvicorn", "uvicorn is not installed",
                                   "Run: pip install 'frugalml[ui]'.") from None
    from frugalml.ui._app import create_app

    app = create_app(store)
    check_free(host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")

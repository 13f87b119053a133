"""Run the UI with uvicorn: loopback by default, since the store may hold private results."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from frugalml.errors import InvalidArgumentError

__all__ = ["check_bind", "serve"]

log = logging.getLogger(__name__)


def check_bind(host: str, port: int) -> None:
    """Validate the address to listen on; warn when it is not loopback."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidArgumentError("port", port, "must be an integer between 1 and 65535", "Use e.g. --port 8765.")
    if not isinstance(host, str) or not host.strip():
        raise InvalidArgumentError("host", host, "must be a host name or IP address", "Use e.g. --host 127.0.0.1.")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("frugal ui listens on %s: anyone who can reach this address can read the store", host)


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
    _check_free(host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_free(host: str, port: int) -> None:
    """uvicorn exits the process when it cannot bind; find out first and say so clearly."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidArgumentError("host", host, f"does not resolve ({exc.strerror})",
                                   "Use e.g. --host 127.0.0.1.") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidArgumentError("port", port, f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                                       "Choose another --port, or stop what is using it.") from None

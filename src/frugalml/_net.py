"""Listening addresses for the HTTP servers (`frugal ui`, `frugal serve`): validated, and checked free
before uvicorn starts (uvicorn exits the whole process when it cannot bind)."""

from __future__ import annotations

import ipaddress
import logging

from frugalml.errors import InvalidArgumentError

__all__ = ["check_bind", "check_free"]

log = logging.getLogger(__name__)


def check_bind(host: str, port: int, *, what: str = "frugal ui", exposes: str = "read the store") -> None:
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
        log.warning("%s listens on %s: anyone who can reach this address can %s", what, host, exposes)


def check_free(host: str, port: int) -> None:
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

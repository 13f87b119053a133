"""The local cache directory: trained zoo models, the stdlib-docs corpus, device probes.

``$FRUGAL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/frugalml``, else ``~/.cache/frugalml``.
Writes go to a temporary file that is renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "cache_dir"]


def cache_dir() -> Path:
    if env := os.environ.get("FRUGAL_CACHE_DIR"):
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "frugalml"
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""`ServeConfig`: every option of `frugal serve`, validated once (pydantic) with messages that name the
option and the fix."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from frugalml._validate import check_device
from frugalml.errors import InvalidArgumentError

__all__ = ["ServeConfig", "read_api_keys", "split_pair"]


class ServeConfig(BaseModel):
    """Options of the model server (see docs/serve.md); bounds are checked by :meth:`checked`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    runtime: str | None = None
    device: str = "cpu"
    max_batch: int = 32
    max_wait_ms: float = 0.0
    split_batches: bool = True
    max_queue: int = 1024
    cache_size: int = 10_000
    cache_ttl_s: float | None = None
    timeout_s: float = 30.0
    max_items: int = 256
    max_text_chars: int = 10_000
    max_body_bytes: int = 4 * 1024 * 1024
    workers: int = 1
    api_key_file: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    cascade: str | None = None  # "SMALL:LARGE"
    threshold: float = 0.9
    shadow: str | None = None
    reference: str | None = None  # dataset for the live drift monitor
    drift_window: int = Field(default=1000)
    drift_every: int = Field(default=250)
    store: str | None = None

    def checked(self) -> ServeConfig:
        """Raise :class:`InvalidArgumentError` on the first out-of-range option; return self."""
        if (self.model is None) == (self.cascade is None):
            raise InvalidArgumentError("model", self.model, "give a model, or --cascade SMALL:LARGE (not both)",
                                       "Pass MODEL (a zoo name, an artifact directory or an .onnx file).")
        for name, low, high in (("max_batch", 1, 4096), ("max_queue", 1, 10**7), ("max_items", 1, 100_000),
                                ("max_text_chars", 1, 10**7), ("max_body_bytes", 1024, 2**31), ("workers", 1, 256),
                                ("drift_window", 50, 10**7), ("drift_every", 1, 10**7), ("cache_size", 0, 10**8),
                                ("port", 1, 65535)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise InvalidArgumentError(name, value, f"must be between {low} and {high}",
                                           f"Use e.g. --{name.replace('_', '-')} {getattr(ServeConfig(), name)}.")
        for name in ("max_wait_ms", "timeout_s"):
            if not 0 <= getattr(self, name) <= 3600_000:
                raise InvalidArgumentError(name, getattr(self, name), "must be >= 0", f"Use e.g. --{name.replace('_', '-')} 5.")
        if self.timeout_s <= 0:
            raise InvalidArgumentError("timeout_s", self.timeout_s, "must be > 0", "Use e.g. --timeout-s 30.")
        check_device(self.device, fix="Use --device cpu, or run on a machine with an NVIDIA GPU and its drivers.")
        if self.cache_ttl_s is not None and self.cache_ttl_s <= 0:
            raise InvalidArgumentError("cache_ttl_s", self.cache_ttl_s, "must be > 0", "Leave it out for no expiry.")
        if self.max_items > self.max_queue:
            raise InvalidArgumentError("max_items", self.max_items, f"exceeds --max-queue {self.max_queue}: such a "
                                       "request could never be admitted", "Raise --max-queue or lower --max-items.")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise InvalidArgumentError("ssl_certfile", self.ssl_certfile, "TLS needs both --ssl-certfile and "
                                       "--ssl-keyfile", "Pass both files, or neither.")
        for name in ("api_key_file", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise InvalidArgumentError(name, str(path), "no such file", "Check the path.")
        if self.cascade is not None:
            split_pair(self.cascade)
        if self.api_key_file is not None:
            read_api_keys(self.api_key_file)  # an empty file fails here, before any worker starts
        return self


def read_api_keys(path: Path) -> list[bytes]:
    """The keys in ``path``: one per line, blank lines and ``#`` comments skipped; at least one."""
    keys = [line.strip().encode() for line in Path(path).read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise InvalidArgumentError("api_key_file", str(path), "holds no key", "Put one key per line.")
    return keys


def split_pair(spec: str) -> tuple[str, str]:
    """``SMALL:LARGE`` -> (SMALL, LARGE), where either may be ``zoo:NAME`` (its colon is not a separator)."""
    parts: list[str] = []
    for token in spec.split(":"):
        if parts and parts[-1] == "zoo":
            parts[-1] = f"zoo:{token}"
        else:
            parts.append(token)
    if len(parts) != 2 or not all(parts):
        raise InvalidArgumentError("cascade", spec, "must be SMALL:LARGE (two models)",
                                   "Use e.g. --cascade zoo:digits-mlp:zoo:digits-cnn or small_dir:large_dir.")
    return parts[0], parts[1]

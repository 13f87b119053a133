"""The response cache: answers keyed by a hash of (endpoint, model, input), least recently used out first,
optionally expiring after a TTL. One event loop owns it, so it needs no lock."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

__all__ = ["ResponseCache", "cache_key"]


def cache_key(endpoint: str, model: str, item: Any) -> str:
    """SHA-256 of the canonical JSON of the item, with the endpoint and model it was answered by."""
    payload = json.dumps([endpoint, model, item], separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """LRU of at most ``size`` answers; ``ttl_s`` (None: no expiry) bounds how stale one can be."""

    def __init__(self, size: int, ttl_s: float | None = None) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Any | None:
        if self.size <= 0:
            return None
        entry = self._data.get(key)
        if entry is None or (self.ttl_s is not None and time.monotonic() - entry[0] > self.ttl_s):
            if entry is not None:
                del self._data[key]
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        if self.size <= 0:
            return
        self._data[key] = (time.monotonic(), value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

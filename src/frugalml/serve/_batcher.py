"""Dynamic batching: requests' items queue; a batch runs when it is full (``max_batch`` items) or when its
oldest item has waited ``max_wait_ms``. Inference runs on one worker thread, off the event loop, so the
server keeps accepting (and rejecting) requests while a batch computes.

``max_batch=1`` is batching off: each item runs alone, in arrival order (the benchmark's baseline).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = ["DynamicBatcher", "QueueFull"]

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue cannot take a request's items now (answered 429 with Retry-After)."""


@dataclass
class _Entry:
    item: Any
    future: asyncio.Future[Any]
    enqueued: float


class DynamicBatcher:
    """Batches items for ``run_batch(items) -> answers`` (one answer per item, same order)."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], *, max_batch: int, max_wait_ms: float,
                 max_queue: int, on_batch: Callable[[int, float], None] | None = None) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch or (lambda size, seconds: None)
        self._queue: asyncio.Queue[_Entry] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frugal-infer")
        self.depth = 0  # items queued, not yet in a running batch

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="frugal-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def submit(self, items: list[Any]) -> list[Any]:
        """Answers for ``items``; all of a request's items are admitted or none (QueueFull)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self.depth + len(items) > self.max_queue:
            raise QueueFull(f"{self.depth} items are queued; the limit is {self.max_queue}")
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        entries = [_Entry(item, loop.create_future(), now) for item in items]
        self.depth += len(entries)
        for entry in entries:
            self._queue.put_nowait(entry)
        return list(await asyncio.gather(*(e.future for e in entries)))

    async def _take(self) -> list[_Entry]:
        assert self._queue is not None  # started
        first = await self._queue.get()
        batch = [first]
        deadline = first.enqueued + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                while len(batch) < self.max_batch and not self._queue.empty():  # already waiting: take them
                    batch.append(self._queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        self.depth -= len(batch)
        return [e for e in batch if not e.future.done()]  # a timed-out request's items are not run

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._take()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                answers = await loop.run_in_executor(self._executor, self.run_batch, [e.item for e in batch])
                if len(answers) != len(batch):  # zip would leave the unanswered waiting until they time out
                    raise RuntimeError(f"the model returned {len(answers)} answers for a batch of {len(batch)}")
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, the loop goes on
                log.exception("batch of %d failed", len(batch))
                for e in batch:
                    if not e.future.done():
                        e.future.set_exception(exc)
                continue
            self.on_batch(len(batch), time.perf_counter() - started)
            for e, answer in zip(batch, answers):
                if not e.future.done():
                    e.future.set_result(answer)

"""The dynamic batcher: batch sizes, the wait bound, batching off, backpressure, timeouts, failures."""

from __future__ import annotations

import asyncio
import time

import pytest

from frugalml.serve import DynamicBatcher, QueueFull


def _run(coro):
    return asyncio.run(coro)


def test_full_batches_and_order() -> None:
    sizes: list[int] = []

    async def main() -> list[list[int]]:
        b = DynamicBatcher(lambda items: [i * 10 for i in items], max_batch=4, max_wait_ms=200, max_queue=100,
                           on_batch=lambda n, s: sizes.append(n))
        await b.start()
        try:
            return await asyncio.gather(*(b.submit([i]) for i in range(10)))
        finally:
            await b.stop()

    answers = _run(main())
    assert answers == [[i * 10] for i in range(10)]
    assert sizes[:2] == [4, 4] and sum(sizes) == 10  # full batches go at once; the rest within the wait


def test_batching_off_and_the_wait_bound() -> None:
    sizes: list[int] = []

    async def main(max_batch: int, wait_ms: float) -> float:
        b = DynamicBatcher(lambda items: items, max_batch=max_batch, max_wait_ms=wait_ms, max_queue=100,
                           on_batch=lambda n, s: sizes.append(n))
        await b.start()
        started = time.perf_counter()
        try:
            await b.submit([1, 2, 3])
            return time.perf_counter() - started
        finally:
            await b.stop()

    _run(main(1, 0))
    assert sizes == [1, 1, 1]
    sizes.clear()
    _run(main(64, 20))
    assert sizes == [3]  # a partial batch runs once its oldest item has waited max_wait


def test_backpressure_timeouts_and_failures() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        calls: list[list[int]] = []

        def slow(items: list[int]) -> list[int]:
            calls.append(items)
            time.sleep(0.3)
            return items

        b = DynamicBatcher(slow, max_batch=2, max_wait_ms=0, max_queue=3)
        await b.start()
        try:
            first = asyncio.create_task(b.submit([1, 2]))  # runs now
            await asyncio.sleep(0.05)
            queued = asyncio.create_task(b.submit([3, 4, 5]))  # fills the queue of 3
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFull):
                await b.submit([6])
            assert await first == [1, 2] and await queued == [3, 4, 5]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b.submit([7, 8]), 0.05)
            assert await b.submit([9]) == [9]  # the loop goes on after a timed-out request
            gate.set()
        finally:
            await b.stop()

        def boom(items: list[int]) -> list[int]:
            raise ValueError("bad batch")

        b = DynamicBatcher(boom, max_batch=4, max_wait_ms=0, max_queue=10)
        await b.start()
        try:
            with pytest.raises(ValueError, match="bad batch"):
                await b.submit([1])
            b.run_batch = lambda items: items
            assert await b.submit([2]) == [2]
        finally:
            await b.stop()

    _run(main())


def test_a_short_answer_fails_the_batch_instead_of_hanging() -> None:
    async def main() -> None:
        b = DynamicBatcher(lambda items: items[:-1], max_batch=4, max_wait_ms=20, max_queue=10)
        await b.start()
        try:
            with pytest.raises(RuntimeError, match="returned 1 answers for a batch of 2"):
                await asyncio.wait_for(b.submit([1, 2]), 5)  # before the check, this waited the 5 s out
        finally:
            await b.stop()

    _run(main())

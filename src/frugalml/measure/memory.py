"""Peak memory while a model runs: CPU resident set size by a sampling thread, CUDA by the allocator.

RSS is read from ``psutil`` every ``interval_s`` by a daemon thread and once more when sampling
stops, so a peak shorter than the interval can be missed: the figure is a lower bound of the true
peak. The profiler samples during a separate pass, not during the timed iterations, so the sampler
thread never competes with the latency measurement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil

__all__ = ["MemoryStats", "RssSampler", "measure_memory"]


@dataclass(frozen=True)
class MemoryStats:
    """Bytes: the process RSS before the pass, its peak during it, and CUDA's max allocated (if on CUDA)."""

    rss_before_bytes: int
    peak_rss_bytes: int
    peak_rss_increase_bytes: int
    cuda_max_allocated_bytes: int | None
    samples: int

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)


class RssSampler:
    """Context manager that records the peak RSS of this process while it is open."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.before_bytes = 0
        self.peak_bytes = 0
        self.samples = 0

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        self.samples += 1
        self.peak_bytes = max(self.peak_bytes, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self.before_bytes = self._process.memory_info().rss
        self.peak_bytes = self.before_bytes
        self._thread = threading.Thread(target=self._loop, name="frugalml-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


def measure_memory(fn: Callable[[], object], *, iterations: int = 3, min_s: float = 0.05, device: str = "cpu",
                   interval_s: float = 0.002) -> MemoryStats:
    """Run ``fn`` at least ``iterations`` times and ``min_s`` seconds under the RSS sampler (and
    CUDA's peak counter on CUDA), so that even a fast model is sampled several times."""
    cuda_peak = None
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with RssSampler(interval_s) as sampler:
        start, calls = time.perf_counter(), 0
        while calls < iterations or time.perf_counter() - start < min_s:
            fn()
            calls += 1
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        cuda_peak = int(torch.cuda.max_memory_allocated())
    return MemoryStats(rss_before_bytes=sampler.before_bytes, peak_rss_bytes=sampler.peak_bytes,
                       peak_rss_increase_bytes=sampler.peak_bytes - sampler.before_bytes,
                       cuda_max_allocated_bytes=cuda_peak, samples=sampler.samples)

"""The latency harness: warm-up, then timed iterations until the median is known well enough.

Stopping rule. After ``min_iters`` timed iterations, and then whenever the sample has grown by a
tenth (at least ``check_every`` iterations), the distribution-free 95% confidence interval of the
median (from binomial order statistics: a sort of the samples, nothing else) is computed. Timing
stops as soon as its width is at most ``rel_ci`` of the median ("converged"), or when ``max_time_s``
of timed work has passed ("time_cap"), or after ``max_iters`` ("max_iters"). The check is kept that
cheap on purpose: a bootstrap between iterations would evict the model from the caches and slow
the next iterations of a small model by several percent. The reported CI of p50 is the bootstrap
one, computed once at the end.

Races. ``race`` times several callables head to head: in each round every one of them is warmed up
and then timed for the same slice of time, in an order that alternates between rounds (forward,
then reversed), so a machine that speeds up or slows down during the race (a shared VM, a CPU
that throttles) touches every contender alike instead of favouring whichever ran when it was fast.

Timers. On the CPU an iteration is timed with a monotonic clock around the call and the runner's
synchronize. On CUDA it is timed with CUDA events recorded on the stream around the call, then
synchronised, so the time is the device's and the launch overhead is included, as a caller sees it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from frugalml._validate import check_positive_int
from frugalml.errors import InvalidArgumentError

__all__ = [
    "LatencyStats",
    "cpu_timer",
    "cuda_timer",
    "measure_latency",
    "median_ci",
    "order_statistic_ci",
    "quantile_ci",
    "race",
    "summarize",
]

Timer = Callable[[Callable[[], object]], float]  # runs fn once, returns seconds


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one batch size, in milliseconds, from ``n`` timed iterations."""

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    p50_ci_low: float
    p50_ci_high: float
    p95_ci_low: float  # distribution-free (order statistics); the gate compares p95s by these
    p95_ci_high: float
    n: int
    warmup: int
    stop_reason: str
    timed_s: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def cpu_timer(synchronize: Callable[[], None] = lambda: None,
              clock: Callable[[], float] = time.perf_counter) -> Timer:
    def time_once(fn: Callable[[], object]) -> float:
        start = clock()
        fn()
        synchronize()
        return clock() - start

    return time_once


def cuda_timer() -> Timer:
    import torch

    def time_once(fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # elapsed_time is in ms

    return time_once


def median_ci(samples_s: np.ndarray, *, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (same units as the samples)."""
    from scipy.stats import bootstrap

    if len(samples_s) < 2 or float(np.ptp(samples_s)) == 0.0:
        value = float(np.median(samples_s))
        return value, value
    result = bootstrap((samples_s,), np.median, n_resamples=999, confidence_level=confidence, method="percentile",
                       vectorized=True, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def order_statistic_ci(samples_s: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median: the order statistics that bracket it with ``confidence``."""
    from scipy.stats import binom

    n = len(samples_s)
    ordered = np.sort(samples_s)
    if n < 6:  # too few samples for a 95% interval inside the range
        return float(ordered[0]), float(ordered[-1])
    k = int(binom.ppf((1 - confidence) / 2, n, 0.5))
    low_index = max(k - 1, 0)
    return float(ordered[low_index]), float(ordered[n - 1 - low_index])


def quantile_ci(samples: np.ndarray, q: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the ``q`` quantile: the number of samples below it is Binomial(n, q),
    so the order statistics at that binomial's tail ranks bracket it with ``confidence``. With too
    few samples for a tail, the interval reaches the sample's minimum or maximum."""
    from scipy.stats import binom

    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(ordered)
    alpha = 1 - confidence
    low_rank = int(binom.ppf(alpha / 2, n, q))  # 1-based ranks of the bracketing order statistics
    high_rank = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    return float(ordered[max(low_rank - 1, 0)]), float(ordered[min(high_rank - 1, n - 1)])


def summarize(samples_s: np.ndarray, *, warmup: int, stop_reason: str) -> LatencyStats:
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    low, high = median_ci(ms)
    p95_low, p95_high = quantile_ci(ms, 0.95)
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return LatencyStats(p50=float(p50), p90=float(p90), p95=float(p95), p99=float(p99), mean=float(ms.mean()),
                        std=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0, min=float(ms.min()), max=float(ms.max()),
                        p50_ci_low=low, p50_ci_high=high, p95_ci_low=p95_low, p95_ci_high=p95_high, n=len(ms), warmup=warmup, stop_reason=stop_reason,
                        timed_s=float(ms.sum() / 1e3))


def measure_latency(
    fn: Callable[[], object],
    *,
    timer: Timer | None = None,
    warmup_iters: int = 3,
    warmup_s: float = 0.2,
    min_iters: int = 10,
    max_iters: int = 5000,
    max_time_s: float = 10.0,
    rel_ci: float = 0.02,
    check_every: int = 5,
) -> tuple[LatencyStats, np.ndarray]:
    """Time ``fn`` until the stopping rule above holds; returns the stats and the samples in seconds.

    Warm-up runs ``warmup_iters`` iterations and continues until ``warmup_s`` has passed (capped at a
    quarter of ``max_time_s``), so lazy initialisation, allocator growth and caches stay out of the numbers.
    """
    _check_iters(min_iters, max_iters, warmup_iters)
    check_positive_int(check_every, "check_every")
    for name, value in (("max_time_s", max_time_s), ("rel_ci", rel_ci)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidArgumentError(name, value, "must be a positive finite number", f"Pass e.g. {name}=10.")
    if warmup_s < 0:
        raise InvalidArgumentError("warmup_s", warmup_s, "must be >= 0", "Pass e.g. warmup_s=0.2.")
    timer = timer or cpu_timer()

    warmed = _warm_up(fn, timer, calls=warmup_iters, seconds=min(warmup_s, max_time_s / 4), max_calls=max_iters)

    samples: list[float] = []
    elapsed = 0.0
    next_check = min_iters
    stop_reason = "max_iters"
    while len(samples) < max_iters:
        duration = timer(fn)
        samples.append(duration)
        elapsed += duration
        if len(samples) >= next_check:
            array = np.asarray(samples)
            low, high = order_statistic_ci(array)
            median = float(np.median(array))
            if median > 0 and (high - low) <= rel_ci * median:
                stop_reason = "converged"
                break
            next_check = len(samples) + max(check_every, len(samples) // 10)
        if elapsed >= max_time_s and len(samples) >= min_iters:
            stop_reason = "time_cap"
            break
    array = np.asarray(samples)
    return summarize(array, warmup=warmed, stop_reason=stop_reason), array


def _check_iters(min_iters: int, max_iters: int, warmup_iters: int) -> None:
    check_positive_int(min_iters, "min_iters")
    check_positive_int(max_iters, "max_iters")
    if max_iters < min_iters:
        raise InvalidArgumentError("max_iters", max_iters, f"must be >= min_iters ({min_iters})", "Raise max_iters.")
    if not (isinstance(warmup_iters, int) and warmup_iters >= 0):
        raise InvalidArgumentError("warmup_iters", warmup_iters, "must be an integer >= 0", "Pass e.g. 3.")


def _warm_up(fn: Callable[[], object], timer: Timer, *, calls: int, seconds: float, max_calls: int) -> int:
    """Untimed calls of ``fn``: at least ``calls``, and until ``seconds`` have passed (at most
    ``max_calls``); returns how many ran."""
    warmed, elapsed = 0, 0.0
    while warmed < calls or (elapsed < seconds and warmed < max_calls):
        elapsed += timer(fn)
        warmed += 1
    return warmed


def race(
    fns: Sequence[Callable[[], object]],
    *,
    timer: Timer | None = None,
    rounds: int = 6,
    round_s: float = 1.0,
    warmup_iters: int = 2,
    settle_s: float = 0.1,
    first_warmup_s: float = 0.2,
    min_iters: int = 5,
    max_iters: int = 5000,
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[list[list[np.ndarray]], list[list[int]]]:
    """Time ``fns`` head to head: ``rounds`` rounds, each running every function for ``round_s``
    seconds of timed work (at least ``min_iters``, at most ``max_iters`` iterations) after
    untimed calls (at least ``warmup_iters``, and for at least ``settle_s`` seconds), in
    alternating order (forward in even rounds, reversed in odd). Before the first round each
    function is called, untimed, for at least ``first_warmup_s`` seconds and 3 calls (lazy
    initialisation, compilation, CUDA graph capture, allocator growth).

    The untimed calls before each slice let the previous function's runtime let go of the cores,
    not only of the caches: ONNX Runtime's worker threads keep spinning for tens of milliseconds
    after a run, and PyTorch's OpenMP threads briefly too, so a fast function timed straight
    after another runtime's would be charged for them (benchmarks/race_settle.py: zoo:digits-cnn
    on PyTorch after ONNX Runtime, p95 1.27x its own with two untimed calls, 1.03x with 0.1 s).

    Returns the samples in seconds (``samples[i][r]``: function ``i`` in round ``r``) and the order
    each round ran, for the record.
    ``on_round(done, total)`` is called after each round.
    """
    if not fns:
        raise InvalidArgumentError("fns", "[]", "holds nothing to time", "Pass at least one callable.")
    check_positive_int(rounds, "rounds", maximum=10_000)
    _check_iters(min_iters, max_iters, warmup_iters)
    if not (isinstance(round_s, (int, float)) and math.isfinite(round_s) and round_s > 0):
        raise InvalidArgumentError("round_s", round_s, "must be a positive finite number", "Pass e.g. round_s=1.0.")
    for name, value, example in (("settle_s", settle_s, 0.1), ("first_warmup_s", first_warmup_s, 0.2)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise InvalidArgumentError(name, value, "must be a finite number >= 0", f"Pass e.g. {name}={example}.")
    timer = timer or cpu_timer()
    for fn in fns:
        _warm_up(fn, timer, calls=3, seconds=first_warmup_s, max_calls=max_iters)
    samples: list[list[np.ndarray]] = [[] for _ in fns]
    orders: list[list[int]] = []
    for r in range(rounds):
        order = list(range(len(fns))) if r % 2 == 0 else list(reversed(range(len(fns))))
        orders.append(order)
        for i in order:
            fn = fns[i]
            # The previous contender had the caches, and its runtime's threads may still be spinning.
            _warm_up(fn, timer, calls=warmup_iters, seconds=settle_s, max_calls=max_iters)
            times: list[float] = []
            elapsed = 0.0
            while len(times) < max_iters and (len(times) < min_iters or elapsed < round_s):
                times.append(timer(fn))
                elapsed += times[-1]
            samples[i].append(np.asarray(times))
        if on_round is not None:
            on_round(r + 1, rounds)
    return samples, orders

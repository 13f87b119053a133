"""The latency harness's stopping rule, on models of known timing (a simulated clock)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import InvalidArgumentError
from frugalml.measure.latency import cpu_timer, measure_latency, median_ci, race


class FakeModel:
    """A 'model' whose every call takes a known time on a simulated clock."""

    def __init__(self, durations: np.ndarray) -> None:
        self.durations = durations
        self.now = 0.0
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def __call__(self) -> None:
        self.now += float(self.durations[self.calls % len(self.durations)])
        self.calls += 1


def test_constant_timing_converges_at_min_iters() -> None:
    model = FakeModel(np.array([0.004]))
    stats, samples = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_iters=3, warmup_s=0,
                                     min_iters=10)
    assert stats.stop_reason == "converged" and stats.n == 10 and len(samples) == 10
    assert stats.p50 == pytest.approx(4.0) and stats.p99 == pytest.approx(4.0) and stats.std < 1e-9
    assert stats.warmup == 3 and model.calls == 13


def test_noisy_timing_needs_more_iterations_then_converges() -> None:
    rng = np.random.default_rng(0)
    durations = 0.010 * (1 + 0.2 * rng.standard_normal(20000).clip(-3, 3))
    model = FakeModel(durations)
    stats, _ = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_s=0, min_iters=10,
                               rel_ci=0.02, max_time_s=1e6)
    assert stats.stop_reason == "converged" and stats.n > 10
    assert (stats.p50_ci_high - stats.p50_ci_low) <= 0.02 * stats.p50
    assert stats.p50_ci_low <= stats.p50 <= stats.p50_ci_high
    assert stats.p50 == pytest.approx(10.0, rel=0.03)


def test_time_cap_stops_a_hopelessly_noisy_model() -> None:
    rng = np.random.default_rng(1)
    model = FakeModel(rng.lognormal(mean=-4, sigma=2.0, size=50000))  # heavy tail: the CI stays wide
    stats, _ = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_s=0, min_iters=10, rel_ci=1e-4,
                               max_time_s=2.0, max_iters=100000)
    assert stats.stop_reason == "time_cap"
    assert stats.timed_s >= 2.0 and stats.timed_s - 2.0 <= stats.max / 1e3


def test_max_iters() -> None:
    rng = np.random.default_rng(2)
    model = FakeModel(rng.lognormal(mean=-6, sigma=1.5, size=1000))
    stats, _ = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_s=0, min_iters=5, max_iters=40,
                               rel_ci=1e-6, max_time_s=1e9)
    assert stats.stop_reason == "max_iters" and stats.n == 40


def test_warmup_runs_for_warmup_seconds() -> None:
    model = FakeModel(np.array([0.01]))
    stats, _ = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_iters=1, warmup_s=0.5,
                               max_time_s=10)
    assert stats.warmup == 50  # 0.5 s of 10 ms iterations


def test_percentiles_and_ci_on_known_samples() -> None:
    samples = np.arange(1, 101) / 1e3  # 1..100 ms
    low, high = median_ci(samples)
    assert low < 0.0505 < high


@pytest.mark.parametrize("kwargs, name", [
    ({"min_iters": 0}, "min_iters"), ({"max_iters": 3, "min_iters": 10}, "max_iters"),
    ({"max_time_s": 0}, "max_time_s"), ({"rel_ci": float("nan")}, "rel_ci"), ({"warmup_iters": -1}, "warmup_iters"),
])
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        measure_latency(lambda: None, **kwargs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=1, max_size=50))
def test_stats_are_ordered_for_any_timings(durations: list[float]) -> None:
    model = FakeModel(np.array(durations))
    stats, samples = measure_latency(model, timer=cpu_timer(clock=model.clock), warmup_iters=0, warmup_s=0,
                                     min_iters=1, max_iters=60, max_time_s=1e9)
    assert stats.min <= stats.p50 <= stats.p90 <= stats.p95 <= stats.p99 <= stats.max
    assert stats.p50_ci_low <= stats.p50 + 1e-9 and stats.p50 <= stats.p50_ci_high + 1e-9
    assert stats.n == len(samples)


def test_order_statistic_ci_brackets_the_median() -> None:
    from frugalml.measure.latency import order_statistic_ci

    rng = np.random.default_rng(3)
    samples = rng.exponential(1.0, 400)
    low, high = order_statistic_ci(samples)
    assert low < np.median(samples) < high
    boot_low, boot_high = median_ci(samples)
    # Both are 95% intervals of the same median: they agree to within a few order statistics.
    assert abs(low - boot_low) < 0.1 and abs(high - boot_high) < 0.1
    assert order_statistic_ci(np.array([3.0, 1.0, 2.0])) == (1.0, 3.0)


class DriftingMachine:
    """A simulated machine that slows down as time passes: every call takes ``base`` seconds times
    (1 + ``slope`` x the time so far), whichever model makes it."""

    def __init__(self, base: float, slope: float) -> None:
        self.base, self.slope, self.now, self.calls = base, slope, 0.0, 0

    def clock(self) -> float:
        return self.now

    def model(self) -> None:
        self.now += self.base * (1 + self.slope * self.now)
        self.calls += 1


def _mean_ratio(rounds: int) -> float:
    machine = DriftingMachine(base=0.001, slope=1.0)
    a, b = (lambda: machine.model()), (lambda: machine.model())  # two identical models
    samples, _ = race([a, b], timer=cpu_timer(clock=machine.clock), rounds=rounds, round_s=0.1)
    a_mean, b_mean = (np.mean([r.mean() for r in s]) for s in samples)  # each round weighs the same
    return float(a_mean / b_mean)


def test_race_alternates_so_drift_falls_on_every_contender() -> None:
    # One round favours whoever runs first on a machine that slows down; an even number of
    # alternating rounds cancels a steady drift.
    assert _mean_ratio(rounds=1) < 0.95
    assert _mean_ratio(rounds=4) == pytest.approx(1.0, abs=0.002)


def test_race_rounds_orders_and_slices() -> None:
    model = FakeModel(np.array([0.01]))
    slow = FakeModel(np.array([1.0]))
    def timer(fn) -> float:
        before = fn.now
        fn()
        return fn.now - before

    rounds: list[tuple[int, int]] = []
    samples, orders = race([model, slow], timer=timer, rounds=3, round_s=0.2, warmup_iters=2, settle_s=0.045,
                           first_warmup_s=0.095, min_iters=5, on_round=lambda done, total: rounds.append((done, total)))
    assert orders == [[0, 1], [1, 0], [0, 1]] and rounds == [(1, 3), (2, 3), (3, 3)]
    assert [len(s) for s in samples[0]] == [20, 20, 20]  # 0.2 s of 10 ms calls per round
    assert [len(s) for s in samples[1]] == [5, 5, 5]  # a slow model still gets min_iters calls
    # first 0.095 s of untimed calls (at least 3), then before each slice untimed calls for 0.045 s
    # (at least two: the slow model's 1 s calls)
    assert model.calls == 10 + 3 * (5 + 20) and slow.calls == 3 + 3 * (2 + 5)


class SpinningMachine:
    """A simulated 2-core machine with two runtimes: after a call of the ``spinner`` (ONNX
    Runtime, say) its threads keep spinning for ``spin_s``, and a call of the other model
    (PyTorch) that starts in that window runs at half speed until the spinning ends."""

    def __init__(self, spin_s: float) -> None:
        self.spin_s, self.now, self.spin_until = spin_s, 0.0, 0.0

    def clock(self) -> float:
        return self.now

    def spinner(self) -> None:
        self.now += 0.010
        self.spin_until = self.now + self.spin_s

    def victim(self, work: float = 0.005) -> None:
        slowed = max(0.0, min(self.spin_until - self.now, 2 * work))  # wall time at half speed
        self.now += slowed + (work - slowed / 2)


@pytest.mark.parametrize("settle_s, charged", [(0.0, True), (0.1, False)])
def test_race_settles_before_timing_after_another_runtime(settle_s: float, charged: bool) -> None:
    machine = SpinningMachine(spin_s=0.08)
    samples, _ = race([machine.spinner, machine.victim], timer=cpu_timer(clock=machine.clock), rounds=6,
                      round_s=0.3, first_warmup_s=0.0, settle_s=settle_s)
    p95s = [float(np.percentile(s, 95)) for s in samples[1]]
    # With two untimed calls only (20 ms at half speed), the rounds that follow the spinner time
    # the victim's next calls at half speed too (its p95 doubles from 5 ms); after 0.1 s, none are.
    assert (max(p95s) > 0.009) is charged
    if not charged:
        assert p95s == pytest.approx([0.005] * 6)


@pytest.mark.parametrize("kwargs, name", [
    ({"fns": []}, "fns"), ({"rounds": 0}, "rounds"), ({"round_s": -1.0}, "round_s"),
    ({"min_iters": 5, "max_iters": 2}, "max_iters"), ({"warmup_iters": -1}, "warmup_iters"),
    ({"first_warmup_s": float("inf")}, "first_warmup_s"), ({"settle_s": -0.1}, "settle_s"),
])
def test_race_bad_arguments(kwargs: dict, name: str) -> None:
    fns = kwargs.pop("fns", [lambda: None])
    with pytest.raises(InvalidArgumentError, match=name):
        race(fns, **kwargs)

"""`compare_latency()`: several models timed head to head on the same inputs, in alternating rounds.

:func:`~frugalml.measure.profile` measures one model at a time. Two profiles taken minutes apart on a
shared machine differ by the machine's drift as much as by the models (tens of percent within minutes
on the 2-core VMs of docs/compress.md). Here every model runs in every round, for the same slice of
time, in an order that alternates between rounds (see :func:`~frugalml.measure.latency.race`), so
the drift falls on all of them alike. The search's run-off picks among its finalists this way.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalml._validate import check_choice, check_positive_int
from frugalml.errors import InvalidArgumentError
from frugalml.measure._profile import _data_label, _items, seq_len_for
from frugalml.measure.env import fingerprint
from frugalml.measure.latency import cpu_timer, cuda_timer, race
from frugalml.models import ModelHandle, load_model

__all__ = ["Comparison", "Contender", "compare_latency"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contender:
    """One model's times in a :class:`Comparison`, in milliseconds per batch.

    The headline figures are medians over the rounds of each round's own statistic: every round
    weighs the same, so with an even number of alternating rounds a steady drift of the machine
    cancels out (pooling every round's samples would not: a round on a faster machine yields more
    of them), and one disturbed round does not move the median.
    """

    name: str
    runtime: str
    p50_ms: float
    p95_ms: float
    throughput_items_per_s: float  # batch over the mean time per batch, as profile() reports it
    p50_by_round_ms: tuple[float, ...]
    p95_by_round_ms: tuple[float, ...]
    mean_by_round_ms: tuple[float, ...]
    n: int  # timed calls, every round together

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "runtime": self.runtime, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                "throughput_items_per_s": self.throughput_items_per_s,
                "p50_by_round_ms": list(self.p50_by_round_ms), "p95_by_round_ms": list(self.p95_by_round_ms),
                "mean_by_round_ms": list(self.mean_by_round_ms), "n": self.n}


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_latency` measured: the contenders in the order given, and how."""

    batch: int
    device: str
    seq_len: int | None
    rounds: int
    round_s: float
    orders: tuple[tuple[int, ...], ...]  # the order each round ran (indices into contenders)
    contenders: tuple[Contender, ...]
    run_id: int | None = None  # the store run, when recorded

    def ratio(self, i: int, j: int, *, stat: str = "p50") -> float:
        """Contender ``i``'s latency (``p50`` or ``p95``) over contender ``j``'s: below 1 when ``i``
        is faster."""
        check_choice(stat, "stat", ("p50", "p95"))
        for name, index in (("i", i), ("j", j)):
            if not (isinstance(index, int) and 0 <= index < len(self.contenders)):
                raise InvalidArgumentError(name, index, f"is not a contender index (0..{len(self.contenders) - 1})",
                                           "Pass the position of a model in the list compared.")
        return getattr(self.contenders[i], f"{stat}_ms") / getattr(self.contenders[j], f"{stat}_ms")

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "device": self.device, "seq_len": self.seq_len, "rounds": self.rounds,
                "round_s": self.round_s, "orders": [list(o) for o in self.orders],
                "contenders": [c.to_dict() for c in self.contenders], "run_id": self.run_id}


def compare_latency(
    models: Sequence[ModelHandle | str | Path],
    *,
    data: Any = None,
    batch: int = 1,
    seq_len: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    rounds: int = 6,
    round_s: float = 1.0,
    settle_s: float = 0.1,
    store: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Time ``models`` head to head at one batch size: ``rounds`` rounds (an even number, so each
    model runs as often early in a round as late), each giving every model ``round_s`` seconds of
    timed work after ``settle_s`` seconds (and at least two calls) of untimed ones, forward in even
    rounds and reversed in odd ones.

    Args:
        models: loaded handles, or anything :func:`frugalml.load_model` takes; at least two. Each
            runs on PyTorch if it has a module, else on ONNX Runtime (as ``profile`` does).
        data: inputs, as for ``profile``; by default the first model's default data. Every model
            gets the same items.
        batch, seq_len, device, threads: as for ``profile``.
        settle_s: untimed work before each model's slice of a round, so that the previous
            model's runtime has let go of the cores (ONNX Runtime's threads spin for tens of
            milliseconds after a run; see :func:`~frugalml.measure.latency.race`).
        store: a store URL or :class:`~frugalml.store.Store` to record the comparison in (a
            ``compare`` run: each model's p50, p95 and throughput, ``source`` naming it); not
            recorded if None.
        on_progress: called with (rounds done, rounds) after each round.
    """
    if isinstance(models, (str, Path, ModelHandle)) or len(models) < 2:
        raise InvalidArgumentError("models", _label(models), "needs at least two models to compare",
                                   "Pass a list of two or more models; profile() measures one.")
    batch = check_positive_int(batch, "batch", maximum=65536)
    rounds = check_positive_int(rounds, "rounds", maximum=10_000)
    if rounds % 2:
        raise InvalidArgumentError("rounds", rounds, "must be even: with an odd count the first model runs first "
                                   "once more than it runs last, and a drifting machine favours it",
                                   f"Pass rounds={rounds + 1}.")
    if not (isinstance(round_s, (int, float)) and math.isfinite(round_s) and round_s > 0):
        raise InvalidArgumentError("round_s", round_s, "must be a positive finite number of seconds",
                                   "Pass e.g. round_s=1.0.")
    if not (isinstance(settle_s, (int, float)) and math.isfinite(settle_s) and settle_s >= 0):
        raise InvalidArgumentError("settle_s", settle_s, "must be a finite number of seconds >= 0",
                                   "Pass e.g. settle_s=0.1.")
    check_choice(device, "device", ("cpu", "cuda"))
    handles = [m if isinstance(m, ModelHandle) else load_model(m) for m in models]
    kinds = {h.input_spec.kind for h in handles}
    if len(kinds) > 1:
        raise InvalidArgumentError("models", _label(handles), f"mix input kinds ({', '.join(sorted(kinds))})",
                                   "Compare models that take the same inputs.")
    seq_lens = {seq_len_for(h, seq_len) for h in handles}
    length = min(s for s in seq_lens if s is not None) if seq_lens != {None} else None
    items, _ = _items(handles[0], data, batch)
    runners, calls = [], []
    for h in handles:
        runner = h.runner("torch" if h.module is not None else "onnxruntime", device, threads)
        inputs = runner.prepare(items[:batch], length)

        def call(runner: Any = runner, inputs: Any = inputs) -> object:
            return runner(inputs)

        runners.append(runner)
        calls.append(call)
    # Each contender's own timer: CUDA events for PyTorch on the GPU, else the clock and its synchronize.
    timer_of = {id(c): cuda_timer() if device == "cuda" and r.runtime == "torch" else cpu_timer(r.synchronize)
                for c, r in zip(calls, runners)}

    def timed(fn: Callable[[], object]) -> float:
        return timer_of[id(fn)](fn)

    log.info("compare_latency: %d models at batch %d, %d rounds of %.2f s each", len(handles), batch, rounds, round_s)
    run = _start_run(store, handles, dict(models=[h.name for h in handles], data=_data_label(data), batch=batch,
                                          seq_len=length, device=device, threads=threads, rounds=rounds,
                                          round_s=round_s, settle_s=settle_s))
    from frugalml.store import fail_on_error

    with fail_on_error(run):
        samples, orders = race(calls, timer=timed, rounds=rounds, round_s=round_s, settle_s=settle_s,
                               on_round=on_progress)
    contenders = []
    for h, r, by_round in zip(handles, runners, samples):
        p50s = tuple(float(np.median(s)) * 1e3 for s in by_round)
        p95s = tuple(float(np.percentile(s, 95)) * 1e3 for s in by_round)
        means = tuple(float(np.mean(s)) * 1e3 for s in by_round)
        contenders.append(Contender(
            name=h.name, runtime=r.runtime, p50_ms=float(np.median(p50s)), p95_ms=float(np.median(p95s)),
            throughput_items_per_s=float(np.median([batch * 1e3 / m for m in means])),
            p50_by_round_ms=p50s, p95_by_round_ms=p95s, mean_by_round_ms=means,
            n=sum(len(s) for s in by_round)))
    result = Comparison(batch=batch, device=device, seq_len=length, rounds=rounds, round_s=float(round_s),
                        orders=tuple(tuple(o) for o in orders), contenders=tuple(contenders), run_id=None)
    if run is not None:
        from frugalml.store import Measurement

        rows = []
        for i, c in enumerate(contenders):
            source = f"{i}:{c.name}"[:64]  # the position keeps two models of one name apart
            rows += [Measurement("latency_p50", c.p50_ms, "ms", batch=batch, device=device, source=source),
                     Measurement("latency_p95", c.p95_ms, "ms", batch=batch, device=device, source=source),
                     Measurement("throughput", c.throughput_items_per_s, "items/s", batch=batch, device=device,
                                 source=source)]
        result = dataclasses.replace(result, run_id=run.id)
        run.finish(result=result.to_dict(), measurements=rows)
    return result


def _start_run(store: Any, handles: list[ModelHandle], config: dict[str, Any]) -> Any:
    if store is None:
        return None
    from frugalml.store import Store, open_store

    opened = store if isinstance(store, Store) else open_store(store)
    return opened.start_run("compare", name=" vs ".join(h.name for h in handles), config=config,
                            env=fingerprint(config["threads"]))


def _label(models: Any) -> str:
    if isinstance(models, (str, Path)):
        return str(models)
    if isinstance(models, ModelHandle):
        return models.name
    return "[" + ", ".join(m.name if isinstance(m, ModelHandle) else str(m) for m in models) + "]"

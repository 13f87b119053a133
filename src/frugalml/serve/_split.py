"""Splitting one served batch of texts into sub-batches of similar length.

A batch of texts pads every row to its longest text. Served traffic mixes lengths: among zoo:stdlib-docs
sentences (median 17 tokens), a random batch of 32 computes about 2.2 times the tokens it holds. Run
sorted by length as a few sub-batches, the same texts pad far less, at the price of one call's overhead
per extra sub-batch. :func:`plan_batches` chooses the split with the least cost under the model

    cost(sub-batch) = overhead + rows x length          (both in tokens)

exactly, by dynamic programming over the sorted lengths (a sub-batch is always a run of neighbours in
length order: swapping two texts between sub-batches never lowers both longest lengths). The overhead
is the model's own, in tokens: :func:`fit_overhead` takes it from two shapes timed at warm-up. Where
a bigger batch costs no more time (a GPU with room to spare), the overhead is infinite and a batch is
never split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from frugalml.errors import InvalidArgumentError

__all__ = ["fit_overhead", "plan_batches"]


def _same(n: int) -> int:
    return n


def plan_batches(lengths: Sequence[int] | np.ndarray, *, overhead_tokens: float,
                 rows: Callable[[int], int] = _same, length_of: Callable[[int], int] = _same) -> list[np.ndarray]:
    """The sub-batches (index arrays into ``lengths``, each ordered by length) that run ``lengths`` cheapest.

    ``rows(n)`` is how many rows a sub-batch of ``n`` texts computes (a compiled model rounds up to a
    power of two) and ``length_of(l)`` the length a sub-batch whose longest text has ``l`` tokens pads
    to (rounded up to a multiple on a GPU). ``overhead_tokens=inf`` returns one batch.
    """
    if not (isinstance(overhead_tokens, (int, float)) and not math.isnan(overhead_tokens) and overhead_tokens >= 0):
        raise InvalidArgumentError("overhead_tokens", overhead_tokens, "must be a number >= 0 (inf: never split)",
                                   "Pass the overhead fitted by fit_overhead().")
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or len(lengths) == 0 or (lengths < 1).any():
        raise InvalidArgumentError("lengths", lengths.tolist(), "must be a non-empty list of token counts >= 1",
                                   "Pass each text's token count.")
    order = np.argsort(lengths, kind="stable")
    n = len(order)
    if n == 1 or math.isinf(overhead_tokens):
        return [order]
    padded = np.array([length_of(int(v)) for v in lengths[order]], dtype=np.float64)
    row_count = np.array([0] + [rows(k) for k in range(1, n + 1)], dtype=np.float64)
    best = np.zeros(n + 1)  # best[j]: least cost of the j shortest texts
    cut = np.zeros(n + 1, dtype=np.int64)  # where the last sub-batch of those j starts
    for j in range(1, n + 1):
        starts = np.arange(j)
        # the sub-batch of sorted texts starts..j-1 pads to the longest, text j-1
        costs = best[:j] + overhead_tokens + row_count[j - starts] * padded[j - 1]
        cut[j] = int(np.argmin(costs))  # on a tie the earliest start: the larger last sub-batch
        best[j] = costs[cut[j]]
    parts: list[np.ndarray] = []
    j = n
    while j > 0:
        parts.append(order[cut[j]:j])
        j = int(cut[j])
    return parts[::-1]


def fit_overhead(small: tuple[int, float], large: tuple[int, float]) -> float:
    """A call's fixed cost in tokens from two timed shapes ``(tokens, seconds)``: the line through them.

    ``inf`` when the larger shape took no longer (nothing to gain from splitting); 0 when the line
    crosses below the origin (the fixed cost is lost in noise: split freely).
    """
    (t_small, s_small), (t_large, s_large) = small, large
    if not 0 < t_small < t_large:
        raise InvalidArgumentError("large", large, f"must hold more tokens than the small shape ({t_small})",
                                   "Time a larger batch second.")
    per_token = (s_large - s_small) / (t_large - t_small)
    if not per_token > 0:
        return math.inf
    return max(s_small - per_token * t_small, 0.0) / per_token

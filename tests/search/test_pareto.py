"""Pareto fronts and the 2-D hypervolume."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.search import hypervolume_2d, pareto_front


def test_front_with_mixed_directions() -> None:
    # (quality up, latency down)
    points = [[0.9, 10], [0.95, 20], [0.85, 5], [0.8, 15], [0.95, 25]]
    assert pareto_front(points, [True, False]) == [0, 1, 2]


def test_hypervolume_known_values() -> None:
    # Minimise both; two points against reference (4, 4): [1,4]x[3,4] (3) and [2,4]x[1,4] (6) overlap in
    # [2,4]x[3,4] (2): 7.
    assert hypervolume_2d([[1, 3], [2, 1]], [False, False], [4, 4]) == pytest.approx(7.0)
    assert hypervolume_2d([[1, 3], [2, 1], [3, 3]], [False, False], [4, 4]) == pytest.approx(7.0)  # dominated adds nothing
    assert hypervolume_2d([[5, 5]], [False, False], [4, 4]) == 0.0
    # Maximise quality: (0.9, 10 ms) against reference (0.5, 30 ms) = 0.4 * 20.
    assert hypervolume_2d([[0.9, 10]], [True, False], [0.5, 30]) == pytest.approx(8.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=25))
def test_front_is_non_dominated_and_keeps_the_hypervolume(points: list[tuple[float, float]]) -> None:
    front = pareto_front(points, [True, False])
    p = np.asarray(points)
    for i in front:
        assert not any((p[j, 0] >= p[i, 0] and p[j, 1] <= p[i, 1]) and (p[j, 0] > p[i, 0] or p[j, 1] < p[i, 1])
                       for j in range(len(p)))
    ref = [-0.1, 1.1]
    assert hypervolume_2d([points[i] for i in front], [True, False], ref) == pytest.approx(
        hypervolume_2d(points, [True, False], ref))

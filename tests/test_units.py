"""frugalml._units: quantities shown in tables keep their digits at every scale."""

from __future__ import annotations

import pytest

from frugalml._units import format_bytes, format_joules, format_small


@pytest.mark.parametrize("value, shown", [(None, "n/a"), (0, "0 B"), (999, "999 B"), (23_834, "23.8 kB"),
                                          (999_949, "999.9 kB"), (1_000_000, "1.0 MB"), (90_867_000, "90.9 MB"),
                                          (1_234_000_000, "1.23 GB")])
def test_format_bytes(value: float | None, shown: str) -> None:
    assert format_bytes(value) == shown


@pytest.mark.parametrize("value, shown", [(0, "0 J"), (0.000274, "274 µJ"), (0.374, "374 mJ"), (21.2, "21.2 J"),
                                          (99.94, "99.9 J"), (100, "100 J"), (12_345.6, "12,346 J")])
def test_format_joules(value: float, shown: str) -> None:
    assert format_joules(value) == shown


@pytest.mark.parametrize("value, shown", [(0.0, "0 J"), (2.5, "2.5 J"), (0.0253, "25.3 mJ"), (0.000274, "274 µJ"),
                                          (3.2e-8, "32 nJ"), (-0.002, "-2 mJ")])
def test_small_quantities_get_a_unit_prefix(value: float, shown: str) -> None:
    assert format_small(value, "J") == shown

"""frugalml._units: sizes shown in tables keep their digits at every scale."""

from __future__ import annotations

import pytest

from frugalml._units import format_bytes


@pytest.mark.parametrize("value, shown", [(None, "n/a"), (0, "0 B"), (999, "999 B"), (23_834, "23.8 kB"),
                                          (999_949, "999.9 kB"), (1_000_000, "1.0 MB"), (90_867_000, "90.9 MB"),
                                          (1_234_000_000, "1.23 GB")])
def test_format_bytes(value: float | None, shown: str) -> None:
    assert format_bytes(value) == shown

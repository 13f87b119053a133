"""Shared input validators: durations (``--timeout``) parse exactly what they document and refuse the rest."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugalml._validate import parse_duration
from frugalml.errors import InvalidArgumentError

UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


@given(st.integers(min_value=1, max_value=10_000), st.sampled_from(sorted(UNITS)), st.booleans(), st.booleans())
def test_a_number_with_a_unit_is_that_many_seconds(n: int, unit: str, upper: bool, spaced: bool) -> None:
    text = f"{n}{' ' if spaced else ''}{unit.upper() if upper else unit}"
    expected = n * UNITS[unit]
    if expected > 30 * 24 * 3600:
        with pytest.raises(InvalidArgumentError, match="at most"):
            parse_duration(text, "--timeout")
    else:
        assert parse_duration(text, "--timeout") == expected


@pytest.mark.parametrize(("text", "seconds"), [("2.5m", 150.0), (".5h", 1800.0), ("1.", 1.0), (90, 90.0), (0.25, 0.25)])
def test_decimals_and_numbers(text, seconds: float) -> None:
    assert parse_duration(text, "--timeout") == seconds


@given(st.one_of(st.text(max_size=12), st.floats(), st.integers(), st.booleans(), st.none()))
def test_anything_else_fails_with_one_clear_error(value) -> None:
    try:
        seconds = parse_duration(value, "--timeout")
    except InvalidArgumentError as exc:
        message = str(exc)
        assert message.startswith("--timeout=") and "Write it like --timeout=90s" in message
    else:  # accepted: a positive finite number of seconds within the limit
        assert math.isfinite(seconds) and 0 < seconds <= 30 * 24 * 3600


@pytest.mark.parametrize(("value", "why"), [("0", "longer than 0"), ("0s", "longer than 0"), ("1d", "not a duration"),
                                            ("-5", "not a duration"), ("", "not a duration"), ("nan", "not a duration"),
                                            (float("inf"), "not a duration"), (True, "not a duration"),
                                            ("31d", "not a duration"), (10**9, "at most")])
def test_bad_durations_say_why(value, why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why):
        parse_duration(value, "--timeout")

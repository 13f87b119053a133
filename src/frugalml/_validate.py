"""Validators for user input shared by the library and the CLI.

Each returns the cleaned value or raises :class:`~frugalml.errors.InvalidArgumentError` with the
argument's name, the value and the fix, in the style of scikit-learn's ``check_scalar``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from frugalml.errors import InvalidArgumentError

__all__ = ["check_choice", "check_device", "check_positive_int", "nearest", "parse_duration", "parse_int_list",
           "zoo_fix"]


def nearest(value: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling to ``value``, if any is close enough to suggest."""
    match = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def zoo_fix(name: str, names: Iterable[str]) -> str:
    """The fix for an unknown ``zoo:NAME``: the valid names, and the nearest one if any is close."""
    names = list(names)
    hint = nearest(name, names)
    return f"Use one of {', '.join('zoo:' + n for n in names)}." + (f" Did you mean 'zoo:{hint}'?" if hint else "")


def check_positive_int(value: Any, name: str, *, maximum: int | None = None) -> int:
    """``value`` as an int >= 1 (and <= ``maximum``), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(name, value, "must be a positive integer", f"Pass an integer such as {name}=1.")
    if value < 1:
        raise InvalidArgumentError(name, value, "must be >= 1", f"Pass a positive integer for {name}.")
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(name, value, f"must be <= {maximum}", f"Pass a value of at most {maximum}.")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else an error naming the nearest valid one."""
    if isinstance(value, str) and value in choices:
        return value
    hint = nearest(value, choices) if isinstance(value, str) else None
    did_you_mean = f" Did you mean {hint!r}?" if hint else ""
    raise InvalidArgumentError(
        name, value, f"is not one of {', '.join(choices)}", f"Choose one of {', '.join(choices)}.{did_you_mean}"
    )


def parse_int_list(text: Any, name: str, *, maximum: int | None = None) -> list[int]:
    """Parse ``"1,8,32"`` (or a sequence of ints) into sorted unique positive ints."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise InvalidArgumentError(
                name, text, "must be a comma-separated list of positive integers", f"Write it like {name}=1,8,32."
            )
        values: list[Any] = []
        for part in parts:
            try:
                values.append(int(part))
            except ValueError:
                raise InvalidArgumentError(
                    name, text, f"{part!r} is not an integer", f"Write it like {name}=1,8,32."
                ) from None
    elif isinstance(text, Sequence) and not isinstance(text, (bytes, bytearray)):
        values = list(text)
        if not values:
            raise InvalidArgumentError(name, text, "must not be empty", f"Pass at least one value, e.g. {name}=[1].")
    else:
        raise InvalidArgumentError(name, text, "must be a list of positive integers", f"Pass e.g. {name}=[1, 8, 32].")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (maximum is not None and v > maximum):
            bound = f" and <= {maximum}" if maximum is not None else ""
            raise InvalidArgumentError(
                name, text, f"every value must be an integer >= 1{bound}, got {v!r}", "Use positive batch sizes such as 1,8,32."
            )
    return sorted(set(values))


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*", re.IGNORECASE)
_SECONDS_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: Any, name: str, *, maximum_s: float = 30 * 24 * 3600) -> float:
    """Parse ``"90"``, ``"90s"``, ``"2.5m"`` / ``"2.5min"`` or ``"1h"`` (or a number of seconds) into
    seconds, > 0 and <= ``maximum_s``; anything else is a clear error."""
    if isinstance(text, bool):
        value = None
    elif isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str) and (match := _DURATION.fullmatch(text)):
        value = float(match.group(1)) * _SECONDS_PER[(match.group(2) or "").lower() or None]
    else:
        value = None
    fix = f"Write it like {name}=90s, {name}=10m or {name}=1h (a bare number is seconds)."
    if value is None or not math.isfinite(value):
        raise InvalidArgumentError(name, text, "is not a duration", fix)
    if value <= 0:
        raise InvalidArgumentError(name, text, "must be longer than 0 seconds", fix)
    if value > maximum_s:
        raise InvalidArgumentError(name, text, f"must be at most {maximum_s:g} seconds", fix)
    return value


def check_device(value: Any, name: str = "device", *, fix: str = "Use device cpu, or run on a machine with an "
                 "NVIDIA GPU and its drivers.") -> str:
    """``value`` as ``cpu`` or ``cuda``, and ``cuda`` only where PyTorch sees a GPU; else a clear error.

    The one check behind every ``device`` argument (compress, profile and predict runners, serve,
    train, the scaling sweep), so they accept and refuse the same values with the same words.
    """
    check_choice(value, name, ("cpu", "cuda"))
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InvalidArgumentError(name, value, "no CUDA GPU is visible to PyTorch on this machine", fix)
    return value

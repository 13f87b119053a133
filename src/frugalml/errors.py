"""frugalml's exceptions.

Every error a user can cause is a :class:`FrugalError`. Its message is one line that names the
argument, the value it got, and what to do instead, so the CLI can print it as is (exit code 2)
and a library caller can show it without a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DataError",
    "FrugalError",
    "InvalidArgumentError",
    "MeasurementError",
    "ModelLoadError",
    "StoreError",
    "UnsafeFormatError",
]


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FrugalError(Exception):
    """Base class: a problem the user can fix.

    Args:
        argument: the name of the argument, option or field at fault (``"--batch-sizes"``).
        value: the value it had.
        problem: what is wrong with it, as a clause ("must be a positive integer").
        fix: what to do instead, as an imperative sentence.
    """

    def __init__(self, argument: str, value: Any, problem: str, fix: str) -> None:
        self.argument = argument
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{argument}={_short(value)}: {problem}. {fix}")


class InvalidArgumentError(FrugalError, ValueError):
    """An argument has a value outside what the function accepts."""


class ModelLoadError(FrugalError):
    """A model could not be found, recognised or read."""


class UnsafeFormatError(ModelLoadError):
    """A pickle-based file was refused because loading it could run arbitrary code."""


class DataError(FrugalError):
    """A dataset could not be found, read, or lacks what was asked of it."""


class StoreError(FrugalError):
    """The run store could not be opened, migrated or written."""


class MeasurementError(FrugalError):
    """A measurement could not be taken on this machine as asked (no GPU, unknown runtime...)."""

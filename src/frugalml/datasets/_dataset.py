"""The `Dataset` type: a table plus the roles of its columns (text, features, label, group, split)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from frugalml.errors import DataError

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset.

    Attributes:
        name: where it came from (``zoo:digits``, a path).
        frame: the rows.
        text_column: the column holding raw text, for text models.
        feature_columns: numeric columns forming the model input, for tensor models.
        label_column: the target, if any.
        group_column: the subgroup of each row (for per-group quality), if any.
        feature_shape: the per-item input shape the features reshape to (``(1, 8, 8)`` for images).
    """

    name: str
    frame: pd.DataFrame
    text_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    label_column: str | None = None
    group_column: str | None = None
    feature_shape: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        # The dataclass repr would print the frame: every row, in logs, errors and stored configs.
        roles = {"text_column": self.text_column, "label_column": self.label_column,
                 "group_column": self.group_column, "feature_shape": self.feature_shape}
        shown = [f"{k}={v!r}" for k, v in roles.items() if v is not None]
        if self.feature_columns:
            shown.append(f"features={len(self.feature_columns)}")
        return f"Dataset({self.name!r}, rows={len(self.frame)}" + "".join(f", {s}" for s in shown) + ")"

    @property
    def kind(self) -> str:
        """``"text"`` when rows carry text, ``"tensor"`` when they carry numeric features."""
        return "text" if self.text_column is not None else "tensor"

    def texts(self) -> list[str]:
        if self.text_column is None:
            raise DataError(
                "text_column", None, f"dataset {self.name} has no text column",
                f"Name one of its columns ({', '.join(map(str, self.frame.columns))}) as the text column "
                "(--text-column; data.text_column in frugal.yaml).",
            )
        return self.frame[self.text_column].astype(str).tolist()

    def features(self, dtype: np.dtype = np.dtype(np.float32)) -> np.ndarray:
        """Features as an array of shape ``(n, *feature_shape)``."""
        if not self.feature_columns:
            raise DataError(
                "feature_columns", None, f"dataset {self.name} has no numeric feature columns",
                "Use a dataset with numeric columns, or a text dataset with a text model.",
            )
        array = self.frame[list(self.feature_columns)].to_numpy(dtype=dtype)
        if self.feature_shape is not None:
            array = array.reshape((len(array), *self.feature_shape))
        return array

    def labels(self) -> np.ndarray | None:
        return None if self.label_column is None else self.frame[self.label_column].to_numpy()

    def groups(self) -> np.ndarray | None:
        return None if self.group_column is None else self.frame[self.group_column].astype(str).to_numpy()

    def subset(self, rows: Sequence[int] | np.ndarray | slice) -> Dataset:
        """A dataset of the selected rows (positions), with the same column roles."""
        frame = self.frame.iloc[rows].reset_index(drop=True)
        return Dataset(
            name=self.name, frame=frame, text_column=self.text_column, feature_columns=self.feature_columns,
            label_column=self.label_column, group_column=self.group_column, feature_shape=self.feature_shape,
        )

    def is_test(self, column: str = "split") -> np.ndarray:
        """The held-out rows, as a boolean mask: ``column`` reads "test" (any case; spaces around it
        ignored). All False when there is no such column. Every command that holds rows out reads the
        split this one way, so a row a model was trained or calibrated on is never evaluated on."""
        if column not in self.frame.columns:
            return np.zeros(len(self.frame), dtype=bool)
        return (self.frame[column].astype(str).str.strip().str.lower() == "test").to_numpy()

    def held_out(self) -> Dataset:
        """The test rows when the ``split`` column marks any, else every row."""
        mask = self.is_test()
        return self.subset(np.flatnonzero(mask)) if mask.any() else self

    def for_training(self) -> Dataset:
        """Every row not marked test (train, validation, dev ...) when some are, else every row."""
        mask = self.is_test()
        return self.subset(np.flatnonzero(~mask)) if mask.any() and not mask.all() else self

    def split(self, name: str, column: str = "split") -> Dataset:
        """The rows whose ``column`` equals ``name`` (``"train"`` / ``"test"``)."""
        if column not in self.frame.columns:
            raise DataError(
                "split", name, f"dataset {self.name} has no {column!r} column",
                f"Use one of its columns ({', '.join(map(str, self.frame.columns))}), or drop the split.",
            )
        mask = (self.frame[column] == name).to_numpy()
        if not mask.any():
            values = sorted(map(str, self.frame[column].unique()))
            raise DataError("split", name, f"no rows of dataset {self.name} are in that split",
                            f"Choose one of {', '.join(values)}.")
        return self.subset(np.flatnonzero(mask))

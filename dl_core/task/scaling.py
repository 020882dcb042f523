"""Scaling each series by its own training rows (`data.scaler=per_series`), for targets and inputs alike.

One scaler for the whole panel lets a series of large values dominate the loss and leaves a series of
small ones near zero on the standardized scale; a scale per series (as neuralforecast's and darts'
local scalers) puts every series on the same footing. The scale of each series is learned from its
training rows only, so no value of its validation or test rows leaks into it, and it travels in the
checkpoint: new rows of a series are scaled exactly as in training, and a series training never saw
is refused by name (its scale is unknown, and guessing one would forecast on an unknown footing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dl_core.checks import short
from dl_core.errors import InputError


def series_labels(frame: pd.DataFrame, entity_columns: Sequence[str]) -> np.ndarray:
    """One label per row naming its series: the entity columns' values joined by `|`, or `all` without any."""
    if not entity_columns:
        return np.full(len(frame), "all", dtype=object)
    labels = frame[entity_columns[0]].astype(str)
    for column in entity_columns[1:]:
        labels = labels + "|" + frame[column].astype(str)
    return labels.to_numpy(dtype=object)


@dataclass(frozen=True)
class SeriesScaler:
    """Standardize columns by the mean and standard deviation of each series' training rows. A series
    constant in its training rows gets a scale of 1, as sklearn's StandardScaler does for a constant column."""

    entity_columns: list[str]
    # series label -> (mean, scale), each (columns,); filled by `fit`.
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def fit(self, train_rows: pd.DataFrame, columns: Sequence[str]) -> SeriesScaler:
        values = train_rows[list(columns)].to_numpy(np.float64)
        labels = series_labels(train_rows, self.entity_columns)
        stats = {}
        for label in dict.fromkeys(labels):
            rows = values[labels == label]
            scale = rows.std(axis=0)
            stats[label] = (rows.mean(axis=0), np.where(scale > 0, scale, 1.0))
        return SeriesScaler(list(self.entity_columns), stats)

    def transform(self, rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """The rows' `columns` standardized by their series' training statistics, float32 (rows, columns)."""
        mean, scale = self.moments(series_labels(rows, self.entity_columns))
        return ((rows[list(columns)].to_numpy(np.float64) - mean) / scale).astype(np.float32)

    def inverse(self, values: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Undo the scaling on `values` (first axis: one series label each, last axis: the columns)."""
        mean, scale = self.moments(labels)
        shape = (len(labels),) + (1,) * (values.ndim - 2) + (mean.shape[1],)
        return values.astype(np.float64) * scale.reshape(shape) + mean.reshape(shape)

    def moments(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, scale) of each label's series, (labels, columns); a series not in the training rows is refused."""
        unique, inverse = np.unique(labels.astype(str), return_inverse=True)
        unseen = [str(label) for label in unique if label not in self.stats]
        if unseen:
            raise InputError((), f"series {short(unseen[0])} was not in the training rows; data.scaler=per_series "
                                 f"scales each series by its own training rows, so this run forecasts only those "
                                 f"{len(self.stats)} series (train with data.scaler=global to forecast new ones)")
        means = np.stack([self.stats[label][0] for label in unique])
        scales = np.stack([self.stats[label][1] for label in unique])
        return means[inverse.reshape(-1)], scales[inverse.reshape(-1)]

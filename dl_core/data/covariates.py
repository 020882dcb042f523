"""Forecast inputs besides the past window: known-future covariates and per-series (static) ones.

- Known-future covariates are values known for the forecast horizon as well as for the past (planned
  promotions, a weather forecast): columns named in `data.future_covariates`, standardised on the
  training rows, and calendar features derived from the timestamp (`data.calendar_features`), each a
  sine and a cosine of its cycle, so no file needs them. A window sees them over its look-back and its
  horizon.
- Static covariates are constants of a series (`data.static_columns`): numbers, standardised over the
  training series, or categories, passed as indices to embed (0 for a category no training series had).

Windows stay views: the future covariates are one (rows x n_future) tensor gathered by the same start
index as the inputs, over `sequence_length + horizon` rows; the static ones are one row per series,
gathered by the series of the window's first row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from dl_core.checks import short
from dl_core.data.inputs import LABEL, NUMBER, Unseen, find_unseen
from dl_core.errors import DataError

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

# Each calendar feature: its value at a timestamp (counted from 0) and the length of its cycle.
CALENDAR: dict[str, tuple[Callable[[Any], Any], float]] = {
    "minute": (lambda t: t.minute, 60.0),
    "hour": (lambda t: t.hour, 24.0),
    "dayofweek": (lambda t: t.day_of_week, 7.0),
    "dayofmonth": (lambda t: t.day - 1, 31.0),
    "dayofyear": (lambda t: t.day_of_year - 1, 366.0),
    "month": (lambda t: t.month - 1, 12.0),
}
UNSEEN = 0  # the index of a static category that no training series had


@dataclass
class CovariateEncoder:
    """Which known-future and static columns a run uses, and their encoding fitted on the training rows."""

    future_columns: list[str]
    calendar_features: list[str]
    static_columns: list[str]
    timestamp_column: str | None
    future_scaler: StandardScaler | None = None
    static_numbers: list[str] = field(default_factory=list)
    static_scaler: StandardScaler | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_future(self) -> bool:
        return bool(self.future_columns or self.calendar_features)

    @property
    def n_future(self) -> int:
        return len(self.future_columns) + 2 * len(self.calendar_features)

    @property
    def static_labels(self) -> list[str]:
        return [c for c in self.static_columns if c not in self.static_numbers]

    def check(self, rows: pd.DataFrame, labels: np.ndarray) -> None:
        """Calendar features need dates; a static column holds one value per series, with no gap."""
        time = self.timestamp_column
        if self.calendar_features and not pd.api.types.is_datetime64_any_dtype(rows[time]):
            raise DataError(f"data.calendar_features: the timestamp column {time!r} holds numbers, not dates; "
                            f"leave data.calendar_features empty or give the rows dates")
        for column in self.static_columns:
            values = rows[column]
            if values.isna().any():
                series = labels[values.isna().to_numpy()][0]
                raise DataError(f"data.static_columns: column {column!r} is missing in series {short(series)}; "
                                f"a static column holds one value per series: give every row its series' value")
            distinct = values.groupby(labels, sort=False).nunique()
            if (distinct > 1).any():
                series = distinct.index[(distinct > 1).to_numpy()][0]
                found = values[labels == series].unique()[:2]
                raise DataError(f"data.static_columns: column {column!r} varies within series {short(series)} "
                                f"({short(found[0])}, {short(found[1])}); a static column holds one value per "
                                f"series: fix the rows, or list the column in data.feature_columns or "
                                f"data.future_covariates instead")

    def fit(self, train_rows: pd.DataFrame, labels: np.ndarray) -> CovariateEncoder:
        from sklearn.preprocessing import StandardScaler

        if self.future_columns:
            self.future_scaler = StandardScaler().fit(train_rows[self.future_columns].to_numpy(np.float64))
        first = train_rows[~pd.Series(labels).duplicated().to_numpy()]
        self.static_numbers = [c for c in self.static_columns if pd.api.types.is_numeric_dtype(first[c])]
        if self.static_numbers:
            self.static_scaler = StandardScaler().fit(first[self.static_numbers].to_numpy(np.float64))
        self.categories = {c: sorted(first[c].astype(str).unique().tolist()) for c in self.static_labels}
        return self

    def unseen(self, rows: pd.DataFrame) -> list[Unseen]:
        """Per static category column, the values of `rows` that no training series had (embedded as UNSEEN)."""
        found = (find_unseen(c, rows[c].astype(str).where(rows[c].notna()), self.categories[c])
                 for c in self.static_labels)
        return [unseen for unseen in found if unseen is not None]

    def input_columns(self) -> dict[str, str]:
        """The request columns of the covariates and their types (calendar features need none)."""
        return {**dict.fromkeys(self.future_columns, NUMBER),
                **{c: NUMBER if c in self.static_numbers else LABEL for c in self.static_columns}}

    def spec(self) -> dict[str, Any]:
        """What a model needs to know of the covariates: how many of each kind, and the categories' counts."""
        return {"n_future": self.n_future, "n_static": len(self.static_numbers),
                "static_cardinalities": [len(self.categories[c]) + 1 for c in self.static_labels]}

    def future_values(self, rows: pd.DataFrame) -> np.ndarray:
        """(rows, n_future) float32: the scaled future columns, then a sine and a cosine per calendar feature."""
        parts = []
        if self.future_columns:
            parts.append(self.future_scaler.transform(rows[self.future_columns].to_numpy(np.float64)))
        if self.calendar_features:
            times = pd.DatetimeIndex(rows[self.timestamp_column])
            for name in self.calendar_features:
                value, period = CALENDAR[name]
                angle = 2 * np.pi * np.asarray(value(times), np.float64) / period
                parts += [np.sin(angle)[:, None], np.cos(angle)[:, None]]
        return np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((len(rows), 0), np.float32)

    def tensors(self, rows: pd.DataFrame, offsets: np.ndarray) -> Covariates:
        """The covariates of cleaned rows whose series start at `offsets` (n_series + 1 row offsets)."""
        first = rows.iloc[offsets[:-1]]
        numbers = self.static_scaler.transform(first[self.static_numbers].to_numpy(np.float64)) \
            if self.static_numbers else None
        codes = None
        if self.static_labels:
            index = [{label: i + 1 for i, label in enumerate(self.categories[c])} for c in self.static_labels]
            codes = np.stack([first[c].astype(str).map(lookup).fillna(UNSEEN).to_numpy(np.int64)
                              for c, lookup in zip(self.static_labels, index, strict=True)], axis=1)
        entity = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        return Covariates(torch.from_numpy(self.future_values(rows)) if self.has_future else None,
                          None if numbers is None else torch.from_numpy(numbers.astype(np.float32)),
                          None if codes is None else torch.from_numpy(codes),
                          torch.from_numpy(entity))

    def metadata(self) -> dict[str, Any]:
        return {"future_covariates": self.future_columns, "calendar_features": self.calendar_features,
                "static_columns": self.static_columns}


@dataclass(frozen=True)
class Covariates:
    """A split's covariate tensors: future ones per row, static ones per series, and each row's series."""

    future: torch.Tensor | None
    static: torch.Tensor | None
    codes: torch.Tensor | None
    entity: torch.Tensor

    def to(self, device: torch.device) -> Covariates:
        return Covariates(*(None if t is None else t.to(device) for t in (self.future, self.static, self.codes)),
                          self.entity.to(device))

    def gather(self, starts: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """The model's covariate inputs of the windows starting at `starts`: (batch, len(offsets), n_future)
        future values, (batch, n_static) numbers and (batch, n_categorical) category indices (None when absent)."""
        series = self.entity[starts]
        return (None if self.future is None else self.future[starts.unsqueeze(1) + offsets],
                None if self.static is None else self.static[series],
                None if self.codes is None else self.codes[series])

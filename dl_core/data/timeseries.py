"""Time-series data: clean, split chronologically per entity, scale on train, index windows.

Windows are views: all rows of all entities live in one contiguous input tensor `x` (rows x
features) and one target tensor `y` (rows x targets); a split is just the array of window start
rows. A batch gathers `x[start + arange(L)]` and `y[start + L + arange(H)]`, so memory is
O(rows x features) however many windows there are, and a window never crosses an entity because
starts are only generated inside each entity's row range.

Splits partition each entity's *target* rows by time (train, then val, then test). A validation
or test window may look back into earlier rows for its inputs, as the standard ETT protocol does,
but its targets never overlap another split's targets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler

from dl_core.data.bundle import DataBundle
from dl_core.data.checks import (INFINITE, counts_listing, infinite_as_missing, listing, one_line,
                                 refuse_stray_text, short)
from dl_core.data.loading import require_columns
from dl_core.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FIXES = {  # key -> (the fix for a few stray text cells, the fix for a text column)
    "data.target_column": ("fix or blank those cells (then set data.fillna)", "name a numeric column"),
    "data.feature_columns": ("fix or blank those cells (then set data.fillna), or leave the column out of "
                             "data.feature_columns", "leave them out of data.feature_columns or convert them"),
}


@dataclass
class TimeSeriesPreprocessor:
    """The fitted, picklable recipe that turns a raw frame into scaled input/target arrays."""

    timestamp_column: str | None
    entity_columns: list[str]
    feature_columns: list[str]
    target_columns: list[str]
    fillna: str | None
    sequence_length: int
    horizon: int
    feature_scaler: StandardScaler | None = None
    target_scaler: StandardScaler | None = None

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Sorted by entity then time, missing values handled, every used column numeric."""
        keys = [c for c in [*self.entity_columns, self.timestamp_column] if c]
        require_columns(frame, keys, "data.timestamp_column/entity_columns")
        require_columns(frame, self.target_columns, "data.target_column")
        require_columns(frame, self.feature_columns, "data.feature_columns")
        _check_numeric(frame, self.target_columns, "data.target_column")  # before sorting, so that rows
        _check_numeric(frame, self.feature_columns, "data.feature_columns")  # are named as in the file
        frame = frame.copy()
        if self.timestamp_column:
            frame[self.timestamp_column] = _parse_time(frame[self.timestamp_column], self.timestamp_column)
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame
        _check_duplicate_times(frame, self.timestamp_column, self.entity_columns)
        return _handle_missing(frame, self._value_columns(), self.entity_columns, self.fillna)

    def fit(self, train_rows: pd.DataFrame) -> "TimeSeriesPreprocessor":
        self.feature_scaler = StandardScaler().fit(train_rows[self.feature_columns].to_numpy(np.float64))
        self.target_scaler = StandardScaler().fit(train_rows[self.target_columns].to_numpy(np.float64))
        return self

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = self.feature_scaler.transform(frame[self.feature_columns].to_numpy(np.float64))
        y = self.target_scaler.transform(frame[self.target_columns].to_numpy(np.float64))
        return x.astype(np.float32), y.astype(np.float32)

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        """Undo target scaling on an array whose last axis is the targets."""
        flat = y.reshape(-1, len(self.target_columns)).astype(np.float64)
        return self.target_scaler.inverse_transform(flat).reshape(y.shape)

    def entity_labels(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.entity_columns:
            return np.full(len(frame), "all", dtype=object)
        return frame[self.entity_columns].astype(str).agg("|".join, axis=1).to_numpy(dtype=object)

    def _value_columns(self) -> list[str]:
        return list(dict.fromkeys([*self.feature_columns, *self.target_columns]))


class WindowSplit:
    """Windows over shared row tensors, identified by their start rows."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, starts: torch.Tensor, sequence_length: int, horizon: int):
        self.x, self.y, self.starts = x, y, starts
        self.sequence_length, self.horizon = sequence_length, horizon
        self.input_offsets = torch.arange(sequence_length, device=x.device)
        self.target_offsets = torch.arange(sequence_length, sequence_length + horizon, device=x.device)

    def __len__(self) -> int:
        return int(self.starts.numel())

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        start = self.starts[idx].unsqueeze(1)
        return (self.x[start + self.input_offsets],), self.y[start + self.target_offsets]

    def to(self, device: torch.device) -> "WindowSplit":
        return WindowSplit(self.x.to(device), self.y.to(device), self.starts.to(device),
                           self.sequence_length, self.horizon)

    def targets(self) -> torch.Tensor:
        return self.y[self.starts.unsqueeze(1) + self.target_offsets]

    def target_rows(self) -> np.ndarray:
        """Row index of every (window, step) target: shape (windows, horizon)."""
        return (self.starts.unsqueeze(1) + self.target_offsets).cpu().numpy()


def build_timeseries_bundle(cfg: Any, frame: pd.DataFrame) -> DataBundle:
    """Frame -> cleaned rows -> chronological split per entity -> train-fit scalers -> window index."""
    prep = _preprocessor_from_config(cfg, frame)
    _refuse_empty_columns(frame, prep)
    rows = prep.clean(frame)
    if rows.empty:
        raise DataError(f"data.fillna: no rows left once rows with missing values are dropped "
                        f"(data.fillna={prep.fillna}); use ffill, interpolate or zero, or fix the gaps in data.path")
    offsets = _entity_offsets(rows, prep)
    _check_lengths(rows, offsets, prep)
    bounds = [_split_bounds(rows.iloc[lo:hi], cfg.split, prep.timestamp_column, cfg.horizon)
              for lo, hi in zip(offsets[:-1], offsets[1:])]
    train_mask = np.zeros(len(rows), dtype=bool)
    for lo, (a, _, _) in zip(offsets[:-1], bounds):
        train_mask[lo:lo + a] = True
    prep.fit(rows[train_mask])
    x_np, y_np = prep.transform(rows)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    starts = window_starts(offsets, bounds, prep.sequence_length, prep.horizon)
    entity_names = prep.entity_labels(rows)
    for name in SPLITS:
        if starts[name].size == 0:
            raise DataError(f"data.split: the {name} split has no complete window "
                            f"(sequence_length={prep.sequence_length}, horizon={prep.horizon}); "
                            f"give it more rows (data.split.{name}_fraction) or shorten the window")
    splits = {name: WindowSplit(x, y, torch.from_numpy(starts[name]), prep.sequence_length, prep.horizon)
              for name in SPLITS}
    timestamps = rows[prep.timestamp_column].to_numpy() if prep.timestamp_column else np.arange(len(rows))

    def describe(split: str, predictions: np.ndarray) -> pd.DataFrame:
        return forecast_frame(splits[split], predictions, prep, timestamps, entity_names)

    spec = {"n_features": len(prep.feature_columns), "n_targets": len(prep.target_columns),
            "horizon": prep.horizon, "sequence_length": prep.sequence_length,
            "target_index": target_index(prep)}
    info = {"rows": len(rows), "entities": len(offsets) - 1,
            **{f"n_{name}_samples": int(starts[name].size) for name in SPLITS}}
    return DataBundle("forecast", splits, spec, prep, describe, info)


def target_index(prep: TimeSeriesPreprocessor) -> list[int] | None:
    """Where each target sits among the input features, for models that forecast from the target's
    own history (naive, DLinear); None when a target is not an input."""
    if not set(prep.target_columns) <= set(prep.feature_columns):
        return None
    return [prep.feature_columns.index(t) for t in prep.target_columns]


def window_starts(offsets: np.ndarray, bounds: list[tuple[int, int, int]], sequence_length: int,
                  horizon: int) -> dict[str, np.ndarray]:
    """Global start rows per split: a window's targets lie wholly inside one split of one entity."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for lo, (a, b, end) in zip(offsets[:-1], bounds):
        for name, (first_target, stop) in zip(SPLITS, [(0, a), (a, b), (b, end)]):
            first = max(first_target - sequence_length, 0)
            last = stop - sequence_length - horizon
            out[name].append(np.arange(lo + first, lo + last + 1, dtype=np.int64))
    return {name: np.concatenate(parts) if parts else np.empty(0, np.int64) for name, parts in out.items()}


def inference_windows(rows: pd.DataFrame, prep: TimeSeriesPreprocessor) -> tuple[np.ndarray, np.ndarray]:
    """Windows of new, cleaned rows: (starts, entity end row of each window).

    Every complete window of each entity (its targets are known rows), then the entity's last
    window, whose targets lie beyond its last row: the forecast. Entities need at least
    `sequence_length` rows (callers check first, to name the short series).
    """
    offsets = _entity_offsets(rows, prep)
    length, horizon = prep.sequence_length, prep.horizon
    starts = [np.append(np.arange(lo, hi - length - horizon + 1), hi - length)
              for lo, hi in zip(offsets[:-1], offsets[1:])]
    ends = [np.full(s.size, hi) for s, hi in zip(starts, offsets[1:])]
    return np.concatenate(starts).astype(np.int64), np.concatenate(ends).astype(np.int64)


def forecast_frame(split: WindowSplit, predictions: np.ndarray, prep: TimeSeriesPreprocessor,
                   timestamps: np.ndarray, entities: np.ndarray) -> pd.DataFrame:
    """A split's forecasts in original units, in the layout of `forecast_table`."""
    rows = split.target_rows()
    return forecast_table(timestamps[rows], entities[rows[:, 0]], prep.target_columns,
                          prep.inverse_target(split.targets().cpu().numpy()), prep.inverse_target(predictions))


def forecast_table(times: np.ndarray, entities: np.ndarray, targets: list[str], actual: np.ndarray,
                   predicted: np.ndarray) -> pd.DataFrame:
    """One row per (window, step, target): timestamp, entity, step, target, actual, predicted.

    `times` is (windows, horizon), `entities` (windows,), `actual`/`predicted` (windows, horizon, targets).
    The same layout serves a run's predictions_test.csv, predict.py and the HTTP service.
    """
    n_windows, horizon, n_targets = predicted.shape
    return pd.DataFrame({
        "timestamp": np.repeat(times.ravel(), n_targets),
        "entity": np.repeat(np.repeat(entities, horizon), n_targets),
        "step": np.repeat(np.tile(np.arange(1, horizon + 1), n_windows), n_targets),
        "target": np.tile(targets, n_windows * horizon),
        "actual": actual.ravel(),
        "predicted": predicted.ravel(),
    })


def _preprocessor_from_config(cfg: Any, frame: pd.DataFrame) -> TimeSeriesPreprocessor:
    targets = [cfg.target_column] if isinstance(cfg.target_column, str) else list(cfg.target_column)
    require_columns(frame, targets, "data.target_column")
    entities = list(cfg.entity_columns or [])
    keys = {cfg.timestamp_column, *entities}
    if cfg.feature_columns is None:
        candidates = [c for c in frame.columns if c not in keys and c not in targets]
        for column in candidates:  # a column of numbers with a typo is refused, not silently left out
            refuse_stray_text(frame, column, "data.feature_columns", FIXES["data.feature_columns"][0])
        numeric = set(frame.select_dtypes(include="number").columns)
        features = [c for c in candidates if c in numeric]
    else:
        features = [c for c in cfg.feature_columns if c not in targets]
        require_columns(frame, features, "data.feature_columns")
    if cfg.include_target_in_inputs:
        features = [*features, *targets]
    if not features:
        raise DataError("data.feature_columns: no input columns left; list some numeric columns or set "
                        "data.include_target_in_inputs=true")
    return TimeSeriesPreprocessor(cfg.timestamp_column, entities, features, targets, cfg.fillna,
                                  cfg.sequence_length, cfg.horizon)


def _parse_time(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    try:
        return pd.to_datetime(column)
    except (ValueError, TypeError) as exc:
        raise DataError(f"data.timestamp_column: column {name!r} cannot be parsed as dates ({one_line(exc)}); "
                        f"fix the values or set data.timestamp_column=null to use row order") from None


def _check_duplicate_times(frame: pd.DataFrame, time_col: str | None, entities: list[str]) -> None:
    if not time_col:
        return
    dup = frame.duplicated([*entities, time_col])
    if dup.any():
        first = frame.loc[dup.idxmax(), [*entities, time_col]].to_dict()
        hint = "add the column that tells series apart to data.entity_columns" if not entities \
            else "aggregate the duplicates first"
        raise DataError(f"data.timestamp_column: {int(dup.sum())} duplicate timestamps within a series "
                        f"(first: {short(first, 120)}); {hint}")


def _check_numeric(frame: pd.DataFrame, columns: list[str], key: str) -> None:
    stray_fix, text_fix = FIXES[key]
    for column in columns:
        refuse_stray_text(frame, column, key, stray_fix)
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise DataError(f"{key}: column(s) [{listing(map(repr, bad))}] are not numeric; {text_fix}")


def _refuse_empty_columns(frame: pd.DataFrame, prep: TimeSeriesPreprocessor) -> None:
    """A column without a single value cannot be filled: say so before `data.fillna` is suggested."""
    for key, columns, fix in (("data.target_column", prep.target_columns, "pick another data.target_column"),
                              ("data.feature_columns", prep.feature_columns, "leave it out of data.feature_columns")):
        for column in columns:
            values = frame[column]
            if not (values.notna() & ~values.isin(INFINITE)).any():
                raise DataError(f"{key}: column {column!r} has no values (all {len(frame)} rows are missing "
                                f"or infinite); {fix}")


def _handle_missing(frame: pd.DataFrame, columns: list[str], entities: list[str], fillna: str | None) -> pd.DataFrame:
    """Refuse missing (or infinite) values unless a fill is configured; fills never reach across series.

    A forward fill cannot fill a series' leading gaps (nor a backward fill its trailing ones)
    without borrowing from the other direction, so those rows are dropped instead.
    """
    frame, infinite = infinite_as_missing(frame, columns)
    counts = frame[columns].isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return frame
    if fillna is None:
        raise DataError(f"data.fillna: missing values in {counts_listing(counts, infinite)}; set data.fillna=ffill "
                        f"(or bfill, interpolate, zero, drop)")
    if not infinite.empty:
        log.warning("data: infinite values in %s are treated as missing (data.fillna=%s)",
                    counts_listing(infinite), fillna)
    fills = {"ffill": pd.Series.ffill, "bfill": pd.Series.bfill, "zero": lambda s: s.fillna(0.0),
             "interpolate": lambda s: s.interpolate(limit_area="inside"), "drop": lambda s: s}
    fill = fills[fillna]
    if entities:
        frame[columns] = frame.groupby(entities, sort=False)[columns].transform(fill)
    else:
        frame[columns] = frame[columns].apply(fill)
    return frame.dropna(subset=columns).reset_index(drop=True)


def _entity_offsets(rows: pd.DataFrame, prep: TimeSeriesPreprocessor) -> np.ndarray:
    """Row offsets of each entity's block in the sorted frame (n_entities + 1 values)."""
    if not prep.entity_columns:
        return np.array([0, len(rows)])
    labels = prep.entity_labels(rows)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return np.concatenate([[0], change, [len(rows)]])


def _check_lengths(rows: pd.DataFrame, offsets: np.ndarray, prep: TimeSeriesPreprocessor) -> None:
    need = prep.sequence_length + prep.horizon
    labels = prep.entity_labels(rows)
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        if hi - lo < need:
            raise DataError(f"data.sequence_length: series {short(labels[lo])} has {hi - lo} rows but a window "
                            f"needs sequence_length + horizon = {need}; shorten data.sequence_length or "
                            f"drop that series")


def _split_bounds(series: pd.DataFrame, split: Any, time_col: str | None, horizon: int) -> tuple[int, int, int]:
    """(a, b, end): train targets are rows [0, a), val [a, b), test [b, end) of this series."""
    n = len(series)
    if split.val_start is not None:
        if not time_col:
            raise DataError("data.split.val_start: a date split needs data.timestamp_column")
        times = series[time_col]
        a = int((times < pd.Timestamp(split.val_start)).sum())
        b = int((times < pd.Timestamp(split.test_start)).sum())
        if not 0 < a < b < n:
            raise DataError(f"data.split: val_start={split.val_start} and test_start={split.test_start} must "
                            f"fall inside the series ({times.iloc[0]} .. {times.iloc[-1]}) in that order")
        return a, b, n
    if split.train_rows is not None:
        a, b, end = split.train_rows, split.train_rows + split.val_rows, \
            split.train_rows + split.val_rows + split.test_rows
        if end > n:
            raise DataError(f"data.split: train_rows + val_rows + test_rows = {end} but the series has {n} rows; "
                            f"lower the row counts")
        return a, b, end
    n_test = max(int(round(n * split.test_fraction)), horizon)
    n_val = max(int(round(n * split.val_fraction)), horizon)
    return n - n_val - n_test, n - n_test, n

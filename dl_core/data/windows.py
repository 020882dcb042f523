"""Windows are views: the rows of every series in shared tensors, a window named by its start row.

All rows of all entities live in one contiguous input tensor `x` (rows x features) and one target
tensor `y` (rows x targets); a split is just the array of its windows' start rows. A batch gathers
`x[start + arange(L)]` and `y[start + L + arange(H)]`, so memory is O(rows x features) however many
windows there are, and a window never crosses an entity because starts are only generated inside each
entity's row range (`window_starts`, the one place they are: for the training splits and for new rows
alike). Known-future and static covariates travel beside `x` as tensors of their own, gathered by the
same start index (dl_core/data/covariates.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from dl_core.data.covariates import Covariates
from dl_core.data.splits import SPLITS
from dl_core.data.timestep import TimeStep

if TYPE_CHECKING:
    from dl_core.data.timeseries import TimeSeriesPreprocessor
    from dl_core.task import ForecastTask

log = logging.getLogger(__name__)

SOURCE_ROW = "\0source_row"  # carried beside new rows through cleaning; no file's column is named so
POSITION = "\0position"  # a row's step on its series' time line, carried through missing-value handling


def entity_offsets(rows: pd.DataFrame, prep: TimeSeriesPreprocessor) -> np.ndarray:
    """Row offsets of each entity's block in the sorted frame (n_entities + 1 values)."""
    if not prep.entity_columns:
        return np.array([0, len(rows)])
    labels = prep.entity_labels(rows)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    return np.concatenate([[0], change, [len(rows)]])


def positions(labels: np.ndarray) -> np.ndarray:
    """Each row's step on its series' time line, counted from the series' first row: rows sorted by series, every
    step present (missing steps added, dl_core/data/missing.py), before `data.fillna=drop` drops any."""
    first = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    return np.arange(len(labels)) - np.repeat(first, np.diff(np.r_[first, len(labels)]))


def unbroken(starts: np.ndarray, position: np.ndarray, span: int) -> np.ndarray:
    """Which windows of `span` rows from `starts` lie on consecutive steps of their series' time line: none of
    their rows was dropped for missing values (a window never crosses a series, `window_starts`)."""
    return position[starts + span - 1] - position[starts] == span - 1


def warn_left_out(count: int, fillna: str | None) -> None:
    """One line for the windows `unbroken` leaves out, in the training splits or in new rows."""
    if count:
        log.warning("data: %d windows span rows dropped for missing values (data.fillna=%s) and are left out; "
                    "data.fillna=ffill, bfill, interpolate or zero fills those rows instead", count, fillna)


def window_starts(lo: int, first_target: int, stop: int, sequence_length: int, horizon: int) -> np.ndarray:
    """Start rows of the windows of one series, whose rows begin at row `lo`, with their targets wholly in the
    series' rows [first_target, stop) (counted from its first row). A window's inputs may look back before
    `first_target`, never before the series' first row."""
    first = max(first_target - sequence_length, 0)
    last = stop - sequence_length - horizon
    return np.arange(lo + first, lo + last + 1, dtype=np.int64)


def split_starts(offsets: np.ndarray, bounds: list[tuple[int, int, int]], sequence_length: int,
                 horizon: int) -> dict[str, np.ndarray]:
    """Start rows per split, each series' (a, b, end) bounds (dl_core.data.splits) splitting its targets: a
    window's targets lie wholly inside one split of one entity."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for lo, (a, b, end) in zip(offsets[:-1], bounds, strict=False):
        for name, (first_target, stop) in zip(SPLITS, [(0, a), (a, b), (b, end)], strict=True):
            out[name].append(window_starts(lo, first_target, stop, sequence_length, horizon))
    return {name: np.concatenate(parts) if parts else np.empty(0, np.int64) for name, parts in out.items()}


@dataclass(frozen=True)
class RowKeys:
    """What names each row in a predictions table: its timestamp (its position without a timestamp
    column) and its entity, where its entity's observed rows end (the index after the last row whose
    targets are known), where its rows end (after the future rows of known-future covariates), and the
    run's time step (None without a timestamp column: a step is a row). For new rows, `sources`: each
    row's position in the frame given to `new_rows` (-1: a horizon row extrapolated past the rows given),
    so that a prediction can be traced to the row it predicts."""

    times: np.ndarray
    entities: np.ndarray
    ends: np.ndarray
    limits: np.ndarray
    step: TimeStep | None = None
    sources: np.ndarray | None = None

    @classmethod
    def of(cls, rows: pd.DataFrame, prep: TimeSeriesPreprocessor, offsets: np.ndarray,
           ends: np.ndarray | None = None) -> RowKeys:
        """`ends`: each entity's end of observed rows, when rows without targets follow them."""
        times = rows[prep.timestamp_column].to_numpy() if prep.timestamp_column else np.arange(len(rows))
        counts = np.diff(offsets)
        limits = np.repeat(offsets[1:], counts)
        sources = rows[SOURCE_ROW].fillna(-1).to_numpy(np.int64) if SOURCE_ROW in rows else None
        return cls(times, prep.entity_labels(rows), limits if ends is None else np.repeat(ends, counts), limits,
                   prep.time_step, sources)

    def target_times(self, target_rows: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Timestamps of target rows; past an entity's last row (`ends`), its last timestamp stepped on k times
        by the run's time step (the dates the new-rows path gives the horizon's calendar features)."""
        ends = np.broadcast_to(ends, target_rows.shape)
        times = self.times[np.minimum(target_rows, ends - 1)].copy()
        beyond = target_rows - (ends - 1)
        for k in np.unique(beyond[beyond > 0]):  # at most `horizon` steps, each for all series at once
            at = beyond == k
            last = self.times[ends[at] - 1]
            if self.step is None:
                times[at] = last + k
            elif isinstance(self.step.step, str):
                times[at] = np.asarray(self.step.after(pd.DatetimeIndex(last), int(k)))
            else:
                times[at] = self.step.after(last, int(k))
        return times


class WindowSplit:
    """Windows over shared row tensors, identified by their start rows. With covariates, a window's inputs
    are its past rows, then its known-future covariates over look-back and horizon and its series' static
    numbers and categories (None for a kind the run has not)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, starts: torch.Tensor, sequence_length: int, horizon: int,
                 keys: RowKeys, covariates: Covariates | None = None):
        self.x, self.y, self.starts, self.keys, self.covariates = x, y, starts, keys, covariates
        self.sequence_length, self.horizon = sequence_length, horizon
        self.input_offsets = torch.arange(sequence_length, device=x.device)
        self.target_offsets = torch.arange(sequence_length, sequence_length + horizon, device=x.device)
        self.window_offsets = torch.arange(sequence_length + horizon, device=x.device)

    def __len__(self) -> int:
        return int(self.starts.numel())

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        starts = self.starts[idx]
        window = self.x[starts.unsqueeze(1) + self.input_offsets]
        if self.covariates is None:
            return (window,)
        return (window, *self.covariates.gather(starts, self.window_offsets))

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return self.inputs(idx), self.y[self.starts[idx].unsqueeze(1) + self.target_offsets]

    def to(self, device: torch.device) -> WindowSplit:
        covariates = None if self.covariates is None else self.covariates.to(device)
        return WindowSplit(self.x.to(device), self.y.to(device), self.starts.to(device),
                           self.sequence_length, self.horizon, self.keys, covariates)

    def targets(self) -> torch.Tensor:
        return self.y[self.starts.unsqueeze(1) + self.target_offsets]

    def complete(self) -> WindowSplit:
        """The windows whose targets all lie in their series' observed rows."""
        starts = self.starts.cpu().numpy()
        inside = starts + self.sequence_length + self.horizon <= self.keys.ends[starts]
        return WindowSplit(self.x, self.y, self.starts[torch.from_numpy(inside).to(self.starts.device)],
                           self.sequence_length, self.horizon, self.keys, self.covariates)

    def target_rows(self) -> np.ndarray:
        """Row index of every (window, step) target: shape (windows, horizon)."""
        return (self.starts.unsqueeze(1) + self.target_offsets).cpu().numpy()

    def window_series(self) -> np.ndarray:
        """The series label of each window."""
        return self.keys.entities[self.starts.cpu().numpy()]

    def series_values(self, task: ForecastTask) -> dict[str, np.ndarray]:
        """Each series' targets over the rows its windows span (their inputs and targets), in original units,
        (rows, targets): of the training split, each series' training part (what MASE scales by)."""
        starts = self.starts.cpu().numpy()
        labels = self.keys.entities[starts]
        out = {}
        for label in dict.fromkeys(labels):
            mine = starts[labels == label]
            rows = np.arange(mine.min(), mine.max() + self.sequence_length + self.horizon)
            out[label] = task.for_series(self.keys.entities[rows]).decode(self.y.cpu().numpy()[rows])
        return out

    def sources(self) -> np.ndarray:
        """For each row of `table` (of new rows): the position, in the frame given to `new_rows`, of the row
        whose target it predicts; -1 past a series' rows (the forecast beyond the rows given)."""
        starts, rows = self.starts.cpu().numpy(), self.target_rows()
        inside = rows < self.keys.limits[starts][:, None]
        sources = np.where(inside, self.keys.sources[np.where(inside, rows, 0)], -1)
        return np.repeat(sources.ravel(), self.y.shape[1])

    def table(self, task: ForecastTask, outputs: np.ndarray) -> pd.DataFrame:
        """The forecasts in original units, in the layout of `forecast_table`. A target beyond its series'
        last row (the forecast of new rows) has no `actual`, and a timestamp that many of the run's
        time steps after that row."""
        starts, rows = self.starts.cpu().numpy(), self.target_rows()
        task = task.for_series(self.keys.entities[starts])
        known = rows < self.keys.ends[starts][:, None]
        actual = task.decode(self.y.cpu().numpy()[np.where(known, rows, 0)])
        actual[~known] = np.nan
        times = self.keys.target_times(rows, self.keys.limits[starts][:, None])
        return forecast_table(times, self.keys.entities[starts], task.target_columns, actual,
                              task.prediction_columns(outputs))


def forecast_table(times: np.ndarray, entities: np.ndarray, targets: list[str], actual: np.ndarray,
                   forecasts: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (window, step, target): timestamp, entity, step, target, actual, then the forecast
    columns (`predicted`, and `q0.1`, ... for quantile forecasts).

    `times` is (windows, horizon), `entities` (windows,), `actual` and each forecast column (windows,
    horizon, targets). The same layout serves a run's predictions_test.csv, predict.py and the HTTP service.
    """
    n_windows, horizon, n_targets = actual.shape
    return pd.DataFrame({
        "timestamp": np.repeat(times.ravel(), n_targets),
        "entity": np.repeat(np.repeat(entities, horizon), n_targets),
        "step": np.repeat(np.tile(np.arange(1, horizon + 1), n_windows), n_targets),
        "target": np.tile(targets, n_windows * horizon),
        "actual": actual.ravel(),
        **{name: values.ravel() for name, values in forecasts.items()},
    })

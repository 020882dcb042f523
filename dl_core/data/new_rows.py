"""New rows for a trained time-series run (predict.py, the server, `load_run(...).predict`): the windows they give.

New rows are read through the run's fitted preprocessor (dl_core/data/timeseries.py) exactly as its training
rows were: ordered, put on the run's time line, missing values handled, inputs scaled by the preprocessor
and targets by the `Forecast` task. So a run's own training rows sent back give training's windows, and its
predictions. What is new here is the forecast past each series' last row, and the refusals that are the
request's fault (`InputError`) rather than the data's.

A forecast beyond a series' last row needs the known-future covariates of its horizon
(dl_core/data/covariates.py): new rows carry them as future rows (targets null, after the last observed
row); calendar features are derived from the timestamps (stepped on by the run's time step where no future
row was sent). A series sent without future rows (a run's own training file) still gets every complete
window; only its forecast past the last row is left out, with one warning line that says how to get it.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from dl_core.checks import check_in_range, listing, short
from dl_core.data.timestep import time_text
from dl_core.data.windows import (
    POSITION,
    SOURCE_ROW,
    RowKeys,
    WindowSplit,
    entity_offsets,
    unbroken,
    warn_left_out,
    window_starts,
)
from dl_core.errors import CheckpointError, DataError, InputError

if TYPE_CHECKING:
    from dl_core.data.timeseries import TimeSeriesPreprocessor
    from dl_core.task import Forecast

log = logging.getLogger(__name__)


def new_row_windows(prep: TimeSeriesPreprocessor, frame: pd.DataFrame, task: Forecast) -> WindowSplit:
    """Windows of validated new rows: every complete window of each series (its targets are known
    rows), then the window whose targets are the horizon after its last row: the forecast. With known-future
    covariates, each series' rows after its last observed one (targets null) carry the horizon's; a series
    sent without any gets no forecast past its last row (one warning says how to get it)."""
    if prep.timestamp_column and (prep.time_step is None or prep.timestamps is None):
        raise CheckpointError("this run saved no time step or timestamp kind (an earlier dl_core trained it), so "
                              "its timestamps cannot be read as in training; train it again to predict")
    try:
        rows = prep.on_time_line(prep.order(frame.assign(**{SOURCE_ROW: np.arange(len(frame))})), False)
        rows, ahead = _split_ahead(prep, rows) if prep.knows_future else (rows, rows.iloc[:0])
        rows = prep.fill(rows)
    except InputError:
        raise
    except DataError as err:
        raise InputError((), str(err)) from None  # e.g. duplicate timestamps: the request's fault
    _check_history(prep, rows, ahead)
    with np.errstate(over="ignore"):  # refused by column just below
        x, y = prep.transform(rows), task.encode(rows)
    check_in_range(x, prep.feature_columns)
    check_in_range(y, task.target_columns)
    observed = entity_offsets(rows, prep)
    forecast = np.ones(len(observed) - 1, bool)
    if prep.knows_future:
        rows, x, y, forecast = _with_horizon(prep, rows, ahead, x, y, observed)
    offsets = entity_offsets(rows, prep)
    ends = offsets[:-1] + np.diff(observed)
    position = rows[POSITION].to_numpy()
    past = np.concatenate([window_starts(lo, 0, end - lo, prep.sequence_length, prep.horizon)
                           for lo, end in zip(offsets[:-1], ends, strict=True)])
    ahead_starts = np.array([end - prep.sequence_length for end, known in zip(ends, forecast, strict=True)
                             if known], np.int64)
    _refuse_broken_forecast(prep, rows, ahead_starts, position)
    kept = unbroken(past, position, prep.sequence_length + prep.horizon)
    warn_left_out(int((~kept).sum()), prep.fillna)
    covariates = prep.covariates.tensors(rows, offsets) if prep.covariates else None
    starts = torch.from_numpy(np.sort(np.concatenate([past[kept], ahead_starts])))
    return WindowSplit(torch.from_numpy(x), torch.from_numpy(y), starts, prep.sequence_length, prep.horizon,
                       RowKeys.of(rows, prep, offsets, ends), covariates)


def labelled_windows(prep: TimeSeriesPreprocessor, frame: pd.DataFrame, task: Forecast) -> WindowSplit:
    """The complete windows of validated new rows: those whose targets are all rows given (not the forecast
    beyond a series' last row, which has nothing to be scored against)."""
    windows = new_row_windows(prep, frame, task).complete()
    if not len(windows):
        raise InputError((), f"no series has a complete window to score: that needs sequence_length + horizon = "
                             f"{prep.sequence_length + prep.horizon} rows of a series; send more rows")
    return windows


def _split_ahead(prep: TimeSeriesPreprocessor, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observed rows, future rows): a series' future rows are its last rows whose targets are all missing."""
    missing = rows[prep.target_columns].isna().all(axis=1).to_numpy()
    ahead = np.zeros(len(rows), bool)
    for lo, hi in itertools.pairwise(entity_offsets(rows, prep)):
        known = np.flatnonzero(~missing[lo:hi])
        ahead[lo + (known[-1] + 1 if known.size else 0):hi] = True
    return rows[~ahead].reset_index(drop=True), rows[ahead].reset_index(drop=True)


def _check_history(prep: TimeSeriesPreprocessor, rows: pd.DataFrame, ahead: pd.DataFrame) -> None:
    """Every series needs a full input window of observed rows; name the first that is too short (one sent with
    only its future rows has none)."""
    counts = pd.Series(prep.entity_labels(rows)).value_counts(sort=False)
    counts = counts.reindex(list(dict.fromkeys([*counts.index, *prep.entity_labels(ahead)])), fill_value=0)
    if counts.empty:
        counts = pd.Series({"all": 0})
    too_short = counts[counts < prep.sequence_length]
    if not too_short.empty:
        raise InputError((), f"series {short(too_short.index[0])} has {int(too_short.iloc[0])} row(s) after "
                             f"cleaning but the model needs sequence_length={prep.sequence_length} rows of "
                             f"history; send more rows")


def _with_horizon(prep: TimeSeriesPreprocessor, rows: pd.DataFrame, ahead: pd.DataFrame, x: np.ndarray,
                  y: np.ndarray, offsets: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Each series' observed rows followed by its `horizon` rows of known-future covariates (their
    inputs and targets zero: no window reads them), with `x` and `y` laid out alike; and which series have
    them. A series sent without future rows, in a run with known-future columns, has none: its forecast past
    the last row is left out, with one warning for all such series."""
    labels, ahead_labels = prep.entity_labels(rows), prep.entity_labels(ahead)
    blocks, observed, forecast, unknown = [], [], [], []
    for lo, hi in itertools.pairwise(offsets):
        series = rows.iloc[lo:hi]
        sent = ahead[ahead_labels == labels[lo]]
        known = not sent.empty or not prep.covariates.future_columns
        blocks += [series, _horizon_rows(prep, series, sent)] if known else [series]
        observed += [np.ones(hi - lo, bool), np.zeros(prep.horizon if known else 0, bool)]
        forecast.append(known)
        if not known:
            unknown.append(short(labels[lo]))
    if unknown:
        log.warning("rows: no future rows (targets null, after the last observed row) for series %s: the forecast "
                    "past %s last row needs %s over its %d steps and is left out; send those rows to get it",
                    listing(unknown, 5), "their" if len(unknown) > 1 else "its",
                    listing(map(repr, prep.covariates.future_columns)), prep.horizon)
    is_observed = np.concatenate(observed)
    out_x = np.zeros((len(is_observed), x.shape[1]), np.float32)
    out_y = np.zeros((len(is_observed), y.shape[1]), np.float32)
    out_x[is_observed], out_y[is_observed] = x, y
    combined = pd.concat(blocks, ignore_index=True)
    try:
        prep.covariates.check(combined, prep.entity_labels(combined))  # the future rows' static values too
    except DataError as err:
        raise InputError((), str(err)) from None
    return combined, out_x, out_y, np.array(forecast, bool)


def _horizon_rows(prep: TimeSeriesPreprocessor, series: pd.DataFrame, sent: pd.DataFrame) -> pd.DataFrame:
    """The `horizon` rows after a series' last observed row: the future rows sent, then (when only calendar
    features are known ahead) rows at the run's next time steps. A known-future
    column missing from any of them is refused naming the column and the timestamp."""
    label = short(prep.entity_labels(series.iloc[:1])[0])
    if len(sent) > prep.horizon:
        raise InputError((), f"series {label} has {len(sent)} future rows (targets null) but the forecast horizon "
                             f"is {prep.horizon}; send at most {prep.horizon}")
    time = prep.timestamp_column
    n_extra = prep.horizon - len(sent)
    extra = pd.DataFrame({c: [series[c].iloc[-1]] * n_extra
                          for c in [*prep.entity_columns, *prep.covariates.static_columns]})
    if time:
        last = (sent if len(sent) else series)[time].iloc[-1]
        extra[time] = pd.Series([prep.time_step.after(last, k) for k in range(1, n_extra + 1)],
                                dtype=series[time].dtype)
    ahead = pd.concat([sent, extra], ignore_index=True).reindex(columns=series.columns)
    where = ahead[time].map(time_text) if time else pd.Series(range(len(series), len(series) + prep.horizon))
    for column in prep.covariates.future_columns:
        missing = ahead[column].isna().to_numpy()
        if missing.any():
            at = f"{time} {where.iloc[missing.argmax()]}" if time else f"row {where.iloc[missing.argmax()]}"
            raise InputError((), f"future covariate {column!r} is missing for series {label} at {at}: the forecast "
                                 f"needs it for the {prep.horizon} rows of the horizon; send future rows (targets "
                                 f"null) after the last observed row with {column!r} set")
    return ahead


def _refuse_broken_forecast(prep: TimeSeriesPreprocessor, rows: pd.DataFrame, starts: np.ndarray,
                            position: np.ndarray) -> None:
    """The forecast past a series' last row reads its last `sequence_length` rows: they must lie on consecutive
    steps, which rows dropped for missing values (data.fillna=drop) may break."""
    broken = ~unbroken(starts, position, prep.sequence_length)
    if broken.any():
        label = short(prep.entity_labels(rows.iloc[starts[broken][:1]])[0])
        raise InputError((), f"series {label}: the forecast past its last row reads its last "
                             f"{prep.sequence_length} rows, but rows among them were dropped for missing values "
                             f"(data.fillna=drop), so they are not consecutive steps; send those rows' values")

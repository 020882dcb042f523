"""Missing (and infinite) values of a time series' value columns: refused, naming the columns and the fix, or
filled per series as `data.fillna` says. An infinity carries no more than a missing value, so it gets what a
missing value gets.

Missing steps of a series' time line (no row between two timestamps more than one step apart) are missing rows:
a window over them would take rows days apart for consecutive steps. They are refused naming the series and the
timestamps, or added as rows whose values are missing, for `data.fillna` to fill (or drop) like any other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dl_core.checks import INFINITE, counts_listing, infinite_as_missing, short
from dl_core.data.timestep import time_text
from dl_core.errors import DataError, InputError

if TYPE_CHECKING:
    from dl_core.data.timeseries import TimeSeriesPreprocessor

log = logging.getLogger(__name__)
# data.fillna fills missing steps, but not a gap no data set has: more filled rows than this many per row given
# (and at least MIN_FILLED) is a timestamp in another unit or a typo, refused before its rows are listed.
MAX_FILLED_PER_ROW, MIN_FILLED = 100, 1_000_000


def refuse_empty_columns(frame: pd.DataFrame, prep: TimeSeriesPreprocessor) -> None:
    """A column without a single value cannot be filled: say so before `data.fillna` is suggested."""
    future = prep.covariates.future_columns if prep.covariates else []
    for key, columns, fix in (("data.target_column", prep.target_columns, "pick another data.target_column"),
                              ("data.feature_columns", prep.feature_columns, "leave it out of data.feature_columns"),
                              ("data.future_covariates", future, "leave it out of data.future_covariates")):
        for column in columns:
            values = frame[column]
            if not (values.notna() & ~values.isin(INFINITE)).any():
                raise DataError(f"{key}: column {column!r} has no values (all {len(frame)} rows are missing "
                                f"or infinite); {fix}")


def handle_missing(frame: pd.DataFrame, columns: list[str], entities: list[str], fillna: str | None) -> pd.DataFrame:
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


def fill_gaps(rows: pd.DataFrame, prep: TimeSeriesPreprocessor, training: bool) -> pd.DataFrame:
    """Ordered rows on the run's time line, with a row at each missing step: its series' keys and static
    columns copied from the row before, its values missing. Without `data.fillna` missing steps are refused: in
    the training rows naming data.fillna, in new rows as the request's fault."""
    step, time = prep.time_step, prep.timestamp_column
    if step is None:
        return rows
    labels = prep.entity_labels(rows)
    after = np.flatnonzero(step.missing(rows[time], labels))
    if after.size == 0:
        return rows
    sizes = np.array([step.gap(rows[time].iloc[at - 1], rows[time].iloc[at]) for at in after])
    first = labels[after[0]]
    count = int(sizes[labels[after] == first].sum())
    shown = ", ".join(time_text(step.after(rows[time].iloc[after[0] - 1], k + 1)) for k in range(min(sizes[0], 2)))
    problem = (f"series {short(first)} misses {count} step{'s' if count != 1 else ''} of its time line ({step}), "
               f"first {shown}{', ...' if sizes[0] > 2 else ''} (after {time_text(rows[time].iloc[after[0] - 1])})")
    if prep.fillna is None:
        if training:
            raise DataError(f"data.fillna: {problem}; set data.fillna (ffill, bfill, interpolate, zero or drop) to "
                            f"fill those rows, or add them to data.path")
        raise InputError((), f"{problem}; send the rows of those steps (this run has no data.fillna to fill them)")
    if sizes.sum() > max(MAX_FILLED_PER_ROW * len(rows), MIN_FILLED):
        implausible = (f"{problem}: {int(sizes.sum())} missing steps in all, more than {MAX_FILLED_PER_ROW} per row "
                       f"given, which reads like a timestamp in another unit or a typo")
        if training:
            raise DataError(f"data.fillna: {implausible}; check data.path's timestamps")
        raise InputError((), f"{implausible}; check the timestamps sent")
    gaps = [step.line(rows[time].iloc[at - 1], rows[time].iloc[at])[1:-1] for at in after]
    kept = [*prep.entity_columns, *(prep.covariates.static_columns if prep.covariates else [])]
    added = pd.concat([pd.DataFrame({**{c: rows[c].iloc[at - 1] for c in kept}, time: gap}, index=range(len(gap)))
                       for at, gap in zip(after, gaps, strict=True)], ignore_index=True)
    keys = [*prep.entity_columns, time]
    added = added.reindex(columns=rows.columns).astype({c: rows[c].dtype for c in [*kept, time]})
    return pd.concat([rows, added], ignore_index=True).sort_values(keys, kind="stable").reset_index(drop=True)

"""Missing (and infinite) values of a time series' value columns: refused, naming the columns and the fix, or
filled per series as `data.fillna` says. An infinity carries no more than a missing value, so it gets what a
missing value gets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from dl_core.checks import INFINITE, counts_listing, infinite_as_missing
from dl_core.errors import DataError

if TYPE_CHECKING:
    from dl_core.data.timeseries import TimeSeriesPreprocessor

log = logging.getLogger(__name__)


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

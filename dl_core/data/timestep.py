"""What one row further means in time: a run's time step, fitted on its training rows.

A forecast beyond a series' last row is dated by this step, and the calendar features of its horizon
are derived from those dates, so the step is saved with the preprocessor: predict.py and the HTTP
service date a forecast as training does. A calendar frequency steps by the calendar (month starts
stay month starts: 2019-10-01, 2019-11-01, 2019-12-01), never by the last gap repeated (2019-10-02,
2019-11-02, 2019-12-03).

The rule, for date timestamps: `data.freq` when set (a pandas offset alias); else pandas' `infer_freq`
on each series' training timestamps, the series that have one agreeing; else (every series has a gap,
or fewer than three rows) the shortest step between training timestamps, when it is a fixed duration
that every step is a whole number of (a few missing hourly rows leave the hour clear), as business
days (B) when it is a day and no date falls on a weekend. Anything else (monthly rows with a missing
month, irregular events) is refused naming `data.freq`: the step is never guessed. Numeric timestamps
step by their shortest difference, when every difference is a whole number of it. Without a timestamp
column a step is a row and there is nothing to fit.

Every timestamp of a series then lies a whole number of steps after the one before it (a gap is missing
steps, as fillna=drop leaves them). A row off that time line is refused: at training naming `data.freq`,
in rows sent for prediction naming the timestamp. A forecast dated off the run's time line would be
silently wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from dl_core.checks import short
from dl_core.errors import DataError

DAY = pd.Timedelta(days=1)
EXAMPLES = "e.g. data.freq=MS for month starts (ME: month ends, W-SUN: weeks, B: business days, D, h, 15min)"


@dataclass(frozen=True)
class TimeStep:
    """A pandas offset alias for date timestamps (`h`, `15min`, `D`, `B`, `W-SUN`, `MS`), or a number for
    numeric ones; `given` when `data.freq` set it rather than the training rows (the errors say which)."""

    step: str | float
    given: bool = False

    def __str__(self) -> str:
        return self.step if isinstance(self.step, str) else f"{self.step:g}"

    @property
    def offset(self) -> Any:
        """What to add to a timestamp: a pandas offset, or the number."""
        return to_offset(self.step) if isinstance(self.step, str) else self.step

    def after(self, last: Any, steps: int) -> Any:
        """The timestamp `steps` steps after `last`."""
        return last + steps * self.offset

    def off_line(self, times: pd.Series, labels: np.ndarray) -> tuple[Any, Any, Any] | None:
        """(series, timestamp, the one before it or None) of the first timestamp that is not a whole number of
        steps after the one before it in its series; None when every one is. `times` is sorted within each
        series, with no duplicates, and `labels` names each row's series."""
        if isinstance(self.step, str) and _duration(self.offset) is None:
            return self._off_calendar(times, labels)
        values = _numbers(times)
        same = labels[1:] == labels[:-1]
        gaps = np.diff(values)
        unit = self.step if not isinstance(self.step, str) else _duration(self.offset).value
        bad = same & ~_whole(gaps, unit)
        if not bad.any():
            return None
        at = int(np.argmax(bad)) + 1
        return labels[at], times.iloc[at], times.iloc[at - 1]

    def _off_calendar(self, times: pd.Series, labels: np.ndarray) -> tuple[Any, Any, Any] | None:
        """Calendar steps (months, weeks, business days) are no fixed duration: each series' timestamps must
        lie on the dates its first one steps to, and the first on the offset itself."""
        for label in pd.unique(labels):
            series = times[labels == label].reset_index(drop=True)
            grid = pd.date_range(series.iloc[0], series.iloc[-1], freq=self.offset)
            on = series.isin(grid).to_numpy()
            if not on.all():
                at = int(np.argmax(~on))
                return label, series.iloc[at], series.iloc[at - 1] if at else None
        return None


def fit_time_step(times: pd.Series, labels: np.ndarray, freq: str | None) -> TimeStep:
    """The run's step from its training timestamps (sorted within each series, `labels` naming it), or `freq`."""
    dates = pd.api.types.is_datetime64_any_dtype(times)
    if freq is not None:
        if not dates:
            raise DataError(f"data.freq: {freq!r} is a calendar frequency, but the timestamp column holds numbers, "
                            f"which step by their smallest difference; leave data.freq unset (null)")
        return TimeStep(to_offset(freq).freqstr, given=True)
    series = [(short(label), part.reset_index(drop=True)) for label, part in times.groupby(labels, sort=False)]
    if dates:
        inferred = [(label, found) for label, part in series if (found := _infer_freq(part)) is not None]
        if inferred:
            label, step = inferred[0]
            other = next((item for item in inferred if item[1] != step), None)
            if other is not None:
                raise DataError(f"data.freq: series {label} steps by {step} but series {other[0]} by {other[1]} "
                                f"(inferred from their training rows); a run has one time step: set data.freq, or "
                                f"train them apart")
            return TimeStep(step)
    return _shortest_step(series, dates)


def check_freq(freq: str | None, key: str) -> str | None:
    """Why `freq` is not a pandas offset alias (for the schema's range check), or None."""
    if freq is None:
        return None
    try:
        to_offset(freq)
    except ValueError:
        return f"{freq!r} is not a pandas offset alias; {EXAMPLES.replace('data.freq', key)}"
    return None


def _infer_freq(times: pd.Series) -> str | None:
    """pandas' frequency of evenly spaced timestamps (three at least), or None."""
    if len(times) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset: either is read here
        warnings.simplefilter("ignore")
        found = pd.infer_freq(pd.DatetimeIndex(times))
    return None if found is None else to_offset(found).freqstr


def _shortest_step(series: list[tuple[str, pd.Series]], dates: bool) -> TimeStep:
    """The shortest step between consecutive timestamps when every step is a whole number of it (gaps of
    missing rows); refused otherwise."""
    gaps = [np.diff(_numbers(part)) for _, part in series]
    if not any(part.size for part in gaps):
        raise DataError("data.split: too few training rows to tell the time step of the series; give the training "
                        "split more rows" + (", or set data.freq" if dates else ""))
    unit = min(part.min() for part in gaps if part.size)
    for (label, part), steps in zip(series, gaps, strict=True):
        whole = _whole(steps, unit)
        if whole.all():
            continue
        at = int(np.argmax(~whole)) + 1
        seen = (f"series {label}: {part.iloc[at]} is {_text(steps[at - 1], dates)} after {part.iloc[at - 1]}, not a "
                f"whole number of the shortest step, {_text(unit, dates)}")
        if dates:
            raise DataError(f"data.freq: the training timestamps have no regular step ({seen}); set data.freq to "
                            f"their frequency, a pandas offset alias: {EXAMPLES}")
        raise DataError(f"data.timestamp_column: the numeric timestamps have no regular step ({seen}); make them "
                        f"evenly spaced, or set data.timestamp_column=null to number the rows in order")
    if not dates:
        return TimeStep(float(unit))
    step = pd.Timedelta(int(unit), "ns")
    if step == DAY and _business_days(pd.concat([part for _, part in series])):
        return TimeStep("B")
    alias = f"{step // DAY}D" if step % DAY == pd.Timedelta(0) else step
    return TimeStep(to_offset(alias).freqstr)


def _business_days(times: pd.Series) -> bool:
    """Days spanning a week or more, none on a weekend: trading days, whose holidays leave gaps."""
    return bool(times.max() - times.min() >= 7 * DAY and (times.dt.day_of_week < 5).all())


def _duration(offset: Any) -> pd.Timedelta | None:
    """The fixed length of an offset (hours, minutes, days), or None for a calendar one (months, weeks, B)."""
    try:
        return pd.Timedelta(offset)
    except ValueError:
        return None


def _numbers(times: pd.Series) -> np.ndarray:
    """Timestamps as numbers to subtract: nanoseconds for dates (UTC for zoned ones), else the values."""
    if pd.api.types.is_datetime64_any_dtype(times):
        return pd.DatetimeIndex(times).as_unit("ns").asi8
    return times.to_numpy(np.float64)


def _whole(gaps: np.ndarray, unit: float) -> np.ndarray:
    """Which gaps are a whole number (one or more) of `unit`; exact for nanoseconds, to rounding for numbers."""
    if np.issubdtype(np.asarray(gaps).dtype, np.integer) and float(unit).is_integer():
        return (gaps >= unit) & (gaps % int(unit) == 0)
    ratio = np.asarray(gaps, np.float64) / unit
    return (ratio >= 1 - 1e-9) & np.isclose(ratio, np.round(ratio), rtol=0, atol=1e-6)


def _text(step: float, dates: bool) -> str:
    """A step as a message shows it: a duration for dates (nanoseconds), else the number."""
    return str(pd.Timedelta(int(step), "ns")) if dates else f"{step:g}"

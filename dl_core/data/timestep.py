"""What one row further means in time: a run's time step, fitted on its training rows.

A forecast beyond a series' last row is dated by this step, and the calendar features of its horizon
are derived from those dates, so the step is saved with the preprocessor: predict.py and the HTTP
service date a forecast as training does. A calendar frequency steps by the calendar (month starts
stay month starts: 2019-10-01, 2019-11-01, 2019-12-01), never by the last gap repeated (2019-10-02,
2019-11-02, 2019-12-03).

The rule, for date timestamps: `data.freq` when set (a pandas offset alias); else, when every step of
every series is the same duration, that duration (h, 15min, D, 7D); else pandas' `infer_freq` on each
series' training timestamps (calendar steps: MS, ME, B, W-SUN, QS), the series that have one agreeing;
else (every series has a gap, or fewer than three rows) the shortest step between training timestamps,
when every step is a whole number of it (a few missing hourly rows leave the hour clear), as business
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
        """The timestamp `steps` steps after `last` (a timestamp or a DatetimeIndex, a number or an array)."""
        return last + steps * self.offset

    def off_line(self, times: pd.Series, labels: np.ndarray) -> tuple[Any, Any, Any] | None:
        """(series, timestamp, the one before it or None) of the first timestamp that is not a whole number of
        steps after the one before it in its series; None when every one is. `times` is sorted within each
        series, with no duplicates, and `labels` names each row's series."""
        duration = _duration(self.offset) if isinstance(self.step, str) else None
        if isinstance(self.step, str) and duration is None:
            return self._off_calendar(times, labels)
        at = _first_off(_numbers(times), labels, self.step if duration is None else duration.value)
        return None if at is None else (labels[at], times.iloc[at], times.iloc[at - 1])

    def _off_calendar(self, times: pd.Series, labels: np.ndarray) -> tuple[Any, Any, Any] | None:
        """Calendar steps (months, weeks, business days) are no fixed duration. One calendar step (MS, W-SUN, B,
        QS) lands on the offset's dates at the same time of day, so each timestamp must be on the offset and
        keep its series' time of day: checked once per distinct date, however many series share it. Several
        steps at once (2MS) or business hours: each series' timestamps must lie on the dates its first one
        steps to (a grid per span)."""
        offset = self.offset
        if offset.n != 1 or isinstance(offset, (pd.offsets.BusinessHour, pd.offsets.CustomBusinessHour)):
            return self._off_grid(times, labels)
        stamps = pd.DatetimeIndex(times)
        _, first, inverse = np.unique(stamps.as_unit("ns").asi8, return_index=True, return_inverse=True)
        on = np.array([offset.is_on_offset(stamp) for stamp in stamps[first]], bool)[inverse.reshape(-1)]
        wall = stamps.tz_localize(None) if stamps.tz is not None else stamps
        time_of_day = wall.as_unit("ns").asi8 % DAY.value
        moved = np.r_[False, (labels[1:] == labels[:-1]) & (time_of_day[1:] != time_of_day[:-1])]
        bad = ~on | moved
        if not bad.any():
            return None
        at = int(np.argmax(bad))
        before = times.iloc[at - 1] if at and labels[at - 1] == labels[at] else None
        return labels[at], times.iloc[at], before

    def _off_grid(self, times: pd.Series, labels: np.ndarray) -> tuple[Any, Any, Any] | None:
        grids: dict[tuple[Any, Any], pd.DatetimeIndex] = {}
        for label, series in times.groupby(labels, sort=False):
            span = (series.iloc[0], series.iloc[-1])
            if span not in grids:
                grids[span] = pd.date_range(*span, freq=self.offset)
            on = series.isin(grids[span]).to_numpy()
            if not on.all():
                at = int(np.argmax(~on))
                return label, series.iloc[at], series.iloc[at - 1] if at else None
        return None


def fit_time_step(times: pd.Series, labels: np.ndarray, freq: str | None) -> TimeStep:
    """The run's step from its training timestamps (sorted within each series, `labels` naming it), or `freq`.

    The step found here is then checked on every row of the run (`TimeStep.off_line`), so pandas is asked
    only once per distinct time line (first and last timestamp and length), and not at all when every
    step of every series is the same: thousands of series cost no more than one.
    """
    dates = pd.api.types.is_datetime64_any_dtype(times)
    if freq is not None:
        if not dates:
            raise DataError(f"data.freq: {freq!r} is a calendar frequency, but the timestamp column holds numbers, "
                            f"which step by their smallest difference; leave data.freq unset (null)")
        return TimeStep(to_offset(freq).freqstr, given=True)
    values = _numbers(times)
    gaps = np.diff(values)[labels[1:] == labels[:-1]]
    if gaps.size == 0:
        raise DataError("data.split: too few training rows to tell the time step of the series; give the training "
                        "split more rows" + (", or set data.freq" if dates else ""))
    if dates and (gaps != gaps[0]).any():
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        ends = np.r_[starts[1:], len(labels)]
        _, distinct = np.unique(np.stack([values[starts], values[ends - 1], ends - starts], axis=1), axis=0,
                                return_index=True)
        keep = np.sort(distinct)  # the first series of each time line, in the order of the rows
        inferred = [(short(labels[lo]), found) for lo, hi in zip(starts[keep], ends[keep], strict=True)
                    if (found := _infer_freq(times.iloc[lo:hi])) is not None]
        if inferred:
            label, step = inferred[0]
            other = next((item for item in inferred if item[1] != step), None)
            if other is not None:
                raise DataError(f"data.freq: series {label} steps by {step} but series {other[0]} by {other[1]} "
                                f"(inferred from their training rows); a run has one time step: set data.freq, or "
                                f"train them apart")
            return TimeStep(step)
    return _shortest_step(times, labels, gaps.min(), dates)


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


def _shortest_step(times: pd.Series, labels: np.ndarray, unit: Any, dates: bool) -> TimeStep:
    """The shortest step between consecutive timestamps (`unit`) when every step is a whole number of it: evenly
    spaced rows, or a few missing; refused otherwise."""
    values = _numbers(times)
    at = _first_off(values, labels, unit)
    if at is not None:
        seen = (f"series {short(labels[at])}: {times.iloc[at]} is {_text(values[at] - values[at - 1], dates)} after "
                f"{times.iloc[at - 1]}, not a whole number of the shortest step, {_text(unit, dates)}")
        if dates:
            raise DataError(f"data.freq: the training timestamps have no regular step ({seen}); set data.freq to "
                            f"their frequency, a pandas offset alias: {EXAMPLES}")
        raise DataError(f"data.timestamp_column: the numeric timestamps have no regular step ({seen}); make them "
                        f"evenly spaced, or set data.timestamp_column=null to number the rows in order")
    if not dates:
        return TimeStep(unit.item())
    step = pd.Timedelta(int(unit), "ns")
    if step == DAY and _business_days(times):
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
    return np.asarray(times)


def _first_off(values: np.ndarray, labels: np.ndarray, unit: float) -> int | None:
    """The first row that is not a whole number of `unit` after the row before it in its series, or None."""
    bad = (labels[1:] == labels[:-1]) & ~_whole(np.diff(values), unit)
    return int(np.argmax(bad)) + 1 if bad.any() else None


def _whole(gaps: np.ndarray, unit: float) -> np.ndarray:
    """Which gaps are a whole number (one or more) of `unit`; exact for nanoseconds, to rounding for numbers."""
    if np.issubdtype(np.asarray(gaps).dtype, np.integer) and float(unit).is_integer():
        return (gaps >= unit) & (gaps % int(unit) == 0)
    ratio = np.asarray(gaps, np.float64) / unit
    return (ratio >= 1 - 1e-9) & np.isclose(ratio, np.round(ratio), rtol=0, atol=1e-6)


def _text(step: float, dates: bool) -> str:
    """A step as a message shows it: a duration for dates (nanoseconds), else the number."""
    return str(pd.Timedelta(int(step), "ns")) if dates else f"{step:g}"

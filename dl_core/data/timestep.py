"""A run's time: what its timestamps are (numbers, or dates in a zone or without one), read exactly as in training,
and its time step, fitted on its training rows.

What the timestamps are (`Timestamps`) is told from the training file and saved with the run, so that rows sent
for prediction are read as the training rows were; the house rule is that a value the harness cannot read exactly
as in training is refused by name, never guessed:

- Numbers or dates: a run trained on numbers takes numbers, a run trained on dates takes dates (ISO 8601 text in
  a request); the other kind is refused naming the column. Whole numbers that all read as dates written yyyymmdd
  (20200131) are refused at training, naming `data.timestamp_format`: as numbers their step would be 1 inside a
  month and 70 across its end (a forecast after 20200229 dated 20200230); `data.timestamp_format=%Y%m%d` reads
  them as dates, in training and in new rows alike.
- Time zones: a run trained on timestamps without an offset (wall-clock times of a zone nobody wrote down) takes
  only such timestamps; one with an offset or a `Z` is refused, since which instant its naive rows meant is unknown.
  A run trained on timestamps with an offset (`2021-01-01T00:00:00+01:00`, `Z`, a zoned parquet column) keeps
  their zone, or `data.timezone` where set, and reads every timestamp sent with an offset as the instant it names,
  converted to that zone: the same instants written at +05:30 or in UTC give the same rows, the same calendar
  features (the run's zone's wall clock: its hour, its day) and forecasts stamped in the run's zone. A timestamp
  without an offset sent to such a run is refused: it names no instant. A column that mixes offsets (an export from
  a zone with daylight saving time: +01:00 in winter, +02:00 in summer) is refused at training unless
  `data.timezone` names the zone to read it in (Europe/Paris, or UTC); naive and offset timestamps mixed in one
  column are refused.
- Dates pandas cannot hold to the nanosecond (before 1677-09-22, after 2262-04-11) are refused naming the column.

The time step, for date timestamps: `data.freq` when set (a pandas offset alias); else, when every step of every
series is the same duration, that duration (h, 15min, D, 7D); else pandas' `infer_freq` on each series' training
timestamps (calendar steps: MS, ME, B, W-SUN, QS), the series that have one agreeing; else (every series has a
gap, or fewer than three rows) the shortest step between training timestamps, when every step is a whole number
of it (a few missing hourly rows leave the hour clear), as business days (B) when it is a day and no date falls on
a weekend. Anything else (monthly rows with a missing month, irregular events) is refused naming `data.freq`: the
step is never guessed. Numeric timestamps step by their shortest difference, when every difference is a whole
number of it. Without a timestamp column a step is a row and there is nothing to fit.

A forecast beyond a series' last row is dated by this step, and the calendar features of its horizon are derived
from those dates, so the step is saved with the preprocessor: predict.py and the HTTP service date a forecast as
training does. A calendar frequency steps by the calendar (month starts stay month starts: 2019-10-01, 2019-11-01,
2019-12-01), never by the last gap repeated (2019-10-02, 2019-11-02, 2019-12-03).

Every timestamp of a series then lies a whole number of steps after the one before it. A row off that time line is
refused: at training naming `data.freq`, in rows sent for prediction naming the timestamp. A forecast dated off
the run's time line would be silently wrong. A row more than one step after the one before it leaves missing steps
(`TimeStep.missing`): dl_core/data/missing.py refuses them or fills them per `data.fillna`. In a zone with clock
changes, steps of a day or more count on its wall clock (midnight to midnight is a day, 23 hours long when the
clocks go forward), shorter ones count elapsed time (an hour is an hour across the change).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.errors import OutOfBoundsDatetime
from pandas.tseries.frequencies import to_offset

from dl_core.checks import one_line, short
from dl_core.errors import DataError, InputError

DAY = pd.Timedelta(days=1)
CLOCK_CHANGE = pd.Timedelta(hours=1)  # a day is 23 hours when clocks go forward: still a day of steps
DATE_RANGE = ("1677-09-22", "2262-04-11")  # the whole days pandas holds to the nanosecond
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
        at = _first_off(_numbers(times, _by_calendar(duration)), labels,
                        self.step if duration is None else duration.value)
        return None if at is None else (labels[at], times.iloc[at], times.iloc[at - 1])

    def missing(self, times: pd.Series, labels: np.ndarray) -> np.ndarray:
        """Which rows come after missing steps: more than one step after the row before them in their series.
        `times` is sorted within each series and on the time line (`off_line` found nothing)."""
        duration = _duration(self.offset) if isinstance(self.step, str) else None
        values = _numbers(times, _by_calendar(duration))
        if not isinstance(self.step, str):
            jump = np.diff(values) / self.step > 1.5
        elif duration is not None:
            jump = np.diff(values) > duration.value
        else:
            stamps = pd.DatetimeIndex(times)
            with warnings.catch_warnings():  # some calendar offsets are added one timestamp at a time: a warning
                warnings.simplefilter("ignore")
                jump = np.asarray(stamps[1:] != stamps[:-1] + self.offset)
        return np.r_[False, (labels[1:] == labels[:-1]) & jump]

    def gap(self, first: Any, last: Any) -> int:
        """How many steps of the time line lie strictly between `first` and `last` (both on it), counted without
        listing them: one far-off timestamp (a unit slip: nanoseconds to a run on seconds) would otherwise ask
        for billions of rows. A calendar step lists them: pandas' dates span at most ~600 years of its steps."""
        duration = _duration(self.offset) if isinstance(self.step, str) else None
        if isinstance(self.step, str) and duration is None:
            return len(self.line(first, last)) - 2
        elapsed = (pd.Timestamp(last) - pd.Timestamp(first)) / duration if duration is not None else last - first
        return round(elapsed / (1 if duration is not None else self.step)) - 1

    def line(self, first: Any, last: Any) -> Any:
        """Every timestamp of the time line from `first` to `last`, both on it: a DatetimeIndex, or numbers."""
        if isinstance(self.step, str):
            return pd.date_range(first, last, freq=self.offset)
        count = round((last - first) / self.step)
        return first + self.step * np.arange(count + 1)

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


@dataclass(frozen=True)
class Timestamps:
    """What a run's timestamp column holds, told from the training file: numbers, or dates, without a zone
    (`zone` None) or in `zone` (UTC, Europe/Paris, UTC+05:30), written as ISO text or in `fmt`
    (`data.timestamp_format`). Saved with the run, it reads new rows' timestamps as the training rows were read."""

    dates: bool
    zone: str | None = None
    fmt: str | None = None

    @classmethod
    def of(cls, column: pd.Series, name: str, timezone: str | None, fmt: str | None) -> Timestamps:
        """The kind of the training rows' timestamps (present in every row); refused where it cannot be told exactly.
        `timezone` and `fmt` are `data.timezone` and `data.timestamp_format`."""
        if _is_number(column) and fmt is None:
            _refuse_yyyymmdd(column, name)
            if timezone is not None:
                raise DataError(f"data.timezone: column {name!r} holds numbers, not dates, so it has no time zone; "
                                f"leave data.timezone unset (null)")
            return cls(False)
        parsed, offsets = _parse_dates(column, name, fmt, training=True)
        if len(offsets) > 1 and timezone is None:
            shown = ", ".join(map(_offset_text, offsets))
            raise DataError(f"data.timezone: column {name!r} mixes UTC offsets ({shown}), as clocks that change for "
                            f"daylight saving time write them; set data.timezone to the zone they were written in "
                            f"(e.g. data.timezone=Europe/Paris), or data.timezone=UTC: each timestamp is then read as "
                            f"the instant it names")
        if parsed.dt.tz is None and timezone is not None:
            raise DataError(f"data.timezone: column {name!r} has timestamps without a UTC offset, local times of no "
                            f"zone written down, which no zone can be read from exactly; leave data.timezone unset "
                            f"(null), or write each timestamp with its offset")
        return cls(True, timezone if timezone is not None else None if parsed.dt.tz is None else str(parsed.dt.tz),
                   fmt)

    def read(self, column: pd.Series, name: str, training: bool) -> pd.Series:
        """The column as the run's timestamps: numbers as they are, or dates in the run's zone (converted exactly from
        any offset), in nanoseconds. What the run cannot read as in training is refused naming the column: at
        training as a `DataError` naming the data key, in new rows as an `InputError`."""
        if not self.dates:
            if not _is_number(column):
                what = "dates" if pd.api.types.is_datetime64_any_dtype(column) else "text"
                raise refusal(training, "data.timestamp_column",
                              f"column {name!r} holds {what}, but the run's timestamps are numbers; send numbers, as "
                              f"in training")
            return column
        if _is_number(column) and self.fmt is None:
            raise refusal(training, "data.timestamp_column",
                          f"column {name!r} holds numbers, but the run's timestamps are dates; send them as ISO 8601 "
                          f"text (e.g. 2021-01-01T00:00:00{'' if self.zone is None else '+00:00'}), as in training")
        parsed, _ = _parse_dates(column, name, self.fmt, training)
        if parsed.dt.tz is None and self.zone is not None:
            raise refusal(training, "data.timestamp_column",
                          f"column {name!r} has timestamps without a UTC offset, but the run's are in {self.zone}; "
                          f"write each with its offset (e.g. 2021-01-01T00:00:00+00:00 for UTC), as in training")
        if parsed.dt.tz is not None and self.zone is None:
            raise refusal(training, "data.timestamp_column",
                          f"column {name!r} has timestamps with a UTC offset, but the run's have none (local times of "
                          f"a zone its training file did not name); send them without the offset, as in training")
        if self.zone is not None:
            parsed = parsed.dt.tz_convert(self.zone)
        try:
            return parsed.dt.as_unit("ns")
        except OutOfBoundsDatetime:
            early, late = (pd.Timestamp(day, tz=parsed.dt.tz) for day in DATE_RANGE)
            outside = parsed[(parsed < early) | (parsed > late)].iloc[0]
            raise refusal(training, "data.timestamp_column",
                          f"column {name!r} holds {outside}, a date outside {' .. '.join(DATE_RANGE)}, the dates "
                          f"pandas holds to the nanosecond; fix that value") from None

    def metadata(self) -> dict[str, Any]:
        return {"timezone": self.zone, "timestamp_format": self.fmt}


def refusal(training: bool, key: str, problem: str) -> DataError:
    """A problem of the training rows names the data key that says how to read them; one of new rows is the
    request's fault (`InputError`, a 422 from the server)."""
    return DataError(f"{key}: {problem}") if training else InputError((), problem)


def time_text(value: Any) -> str:
    """A timestamp as a client wrote it: ISO for dates, the number otherwise."""
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def check_timezone(zone: str | None, key: str) -> str | None:
    """Why `zone` is not a time zone pandas knows (for the schema's range check), or None."""
    if zone is None:
        return None
    try:
        pd.Timestamp(0, tz=zone)
    except (KeyError, ValueError, TypeError) as exc:  # ZoneInfoNotFoundError is a KeyError
        return (f"{zone!r} is not a time zone ({one_line(exc)}); name one of the IANA database, e.g. "
                f"{key}=Europe/Paris, or {key}=UTC")
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
    calendar = bool(dates and gaps.size and _by_calendar(pd.Timedelta(int(gaps.min()), "ns") + CLOCK_CHANGE))
    if calendar:
        values = _numbers(times, calendar)
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
    return _shortest_step(times, labels, gaps.min(), dates, calendar)


def check_freq(freq: str | None, key: str) -> str | None:
    """Why `freq` is not a pandas offset alias (for the schema's range check), or None."""
    if freq is None:
        return None
    try:
        to_offset(freq)
    except ValueError:
        return f"{freq!r} is not a pandas offset alias; {EXAMPLES.replace('data.freq', key)}"
    return None


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


# Whole numbers that read as dates: (lowest, highest, format, how it is written, what reading them as numbers does).
DATES_AS_NUMBERS = (
    (10000101, 99991231, "%Y%m%d", "yyyymmdd", "20200131 to 20200201 would be a step of 70"),
    (100001, 999912, "%Y%m", "yyyymm", "202012 to 202101 would be a step of 89, and the month after 202012 202013"),
)


def _refuse_yyyymmdd(column: pd.Series, name: str) -> None:
    """Whole numbers that every one reads as a date written yyyymmdd (or a month written yyyymm) are dates, not a
    count: refused with the fix."""
    values = pd.Series(np.asarray(column, np.float64))
    if not (values % 1 == 0).all():
        return
    text = values.astype(np.int64).astype(str)
    for low, high, fmt, written, as_numbers in DATES_AS_NUMBERS:
        if not ((values >= low) & (values <= high)).all():
            continue
        if pd.to_datetime(text, format=fmt, errors="coerce").isna().any():
            continue
        raise DataError(f"data.timestamp_format: column {name!r} holds numbers that read as dates written {written} "
                        f"({', '.join(text.iloc[:2])}, ...); set data.timestamp_format={fmt} to read them as dates, "
                        f"or write them as ISO dates (2020-01-31): as numbers, {as_numbers}")


def _parse_dates(column: pd.Series, name: str, fmt: str | None,
                 training: bool) -> tuple[pd.Series, list[pd.Timedelta]]:
    """(dates, the distinct UTC offsets they were written with where they mix several, else []). Mixed offsets are
    read as the instants they name, in UTC; timestamps with an offset and without one mixed are refused."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column, []
    text = _digits(column) if _is_number(column) else column
    try:
        return pd.to_datetime(text, format=fmt), []
    except (ValueError, TypeError) as exc:
        problem: Any = exc
    offsets = _offsets(text)
    if None in offsets and len(offsets) > 1:
        problem = "some are written with a UTC offset and some without one"
    elif len(offsets) > 1:
        try:
            return pd.to_datetime(text, format=fmt, utc=True), sorted(offsets)
        except (ValueError, TypeError) as exc:
            problem = exc
    fix = ("fix the values, or set data.timestamp_format to the format they are written in (e.g. %d/%m/%Y %H:%M)"
           if training else "send ISO 8601 text (e.g. 2021-01-01T00:00:00), as in training")
    raise refusal(training, "data.timestamp_column",
                  f"column {name!r} cannot be read as dates ({one_line(problem)}); {fix}") from None


def _digits(column: pd.Series) -> pd.Series:
    """Whole numbers as the digits they are written with (20200131), for `data.timestamp_format` to read."""
    values = np.asarray(column)
    whole = np.issubdtype(values.dtype, np.integer) or bool((values % 1 == 0).all())
    return pd.Series(values.astype(np.int64) if whole else values, index=column.index).astype(str)


def _offsets(text: pd.Series) -> set[pd.Timedelta | None]:
    """The UTC offsets distinct timestamps are written with (None: no offset); empty where one cannot be read."""
    found = set()
    for value in text.drop_duplicates():
        try:
            found.add(pd.Timestamp(value).utcoffset())
        except (ValueError, TypeError):
            return set()
    return found


def _offset_text(offset: pd.Timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _infer_freq(times: pd.Series) -> str | None:
    """pandas' frequency of evenly spaced timestamps (three at least), or None."""
    if len(times) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset: either is read here
        warnings.simplefilter("ignore")
        found = pd.infer_freq(pd.DatetimeIndex(times))
    return None if found is None else to_offset(found).freqstr


def _shortest_step(times: pd.Series, labels: np.ndarray, unit: Any, dates: bool, calendar: bool) -> TimeStep:
    """The shortest step between consecutive timestamps (`unit`) when every step is a whole number of it: evenly
    spaced rows, or a few missing; refused otherwise."""
    values = _numbers(times, calendar)
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


def _numbers(times: pd.Series, calendar: bool = False) -> np.ndarray:
    """Timestamps as numbers to subtract: nanoseconds for dates (elapsed, UTC, for zoned ones; read off their zone's
    wall clock with `calendar`), else the values."""
    if pd.api.types.is_datetime64_any_dtype(times):
        stamps = pd.DatetimeIndex(times)
        return (stamps.tz_localize(None) if calendar and stamps.tz is not None else stamps).as_unit("ns").asi8
    return np.asarray(times)


def _by_calendar(duration: pd.Timedelta | None) -> bool:
    """Whether steps of `duration` count on the zone's wall clock: a day or more, as pandas steps them (midnight
    to midnight is a day, 23 hours when the clocks go forward); shorter steps count elapsed time (an hour is an
    hour across the change)."""
    return duration is not None and duration >= DAY


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

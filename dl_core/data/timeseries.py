"""Time-series data, the training bundle: clean, split chronologically per entity (dl_core/data/splits.py),
scale on train, index windows (dl_core/data/windows.py); the fitted preprocessor the run keeps.

Cleaning reads the timestamps as the run's (numbers, or dates in its zone: dl_core/data/timestep.py), sorts
each series by them, puts every row on the run's time line (missing steps refused or filled:
dl_core/data/missing.py) and handles missing values. The targets are scaled by the `Forecast` task, the
inputs by the preprocessor. New rows sent to the trained run become windows through the same preprocessor
(dl_core/data/new_rows.py), so a run's own training rows sent back give training's windows, and its
predictions.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from dl_core.checks import is_boolean, listing, refuse_stray_text, row_name, short, unique_per_row
from dl_core.data.bundle import DataBundle
from dl_core.data.covariates import CovariateEncoder
from dl_core.data.inputs import BOOLEAN, DATE, DATE_TEXT, LABEL, NUMBER, TIME, InputSchema, Unseen
from dl_core.data.loading import DataConfig, require_columns
from dl_core.data.missing import fill_gaps, handle_missing, refuse_empty_columns
from dl_core.data.new_rows import labelled_windows, new_row_windows
from dl_core.data.seasonality import resolve_seasonality
from dl_core.data.splits import SPLITS, SplitConfig, chronological_bounds
from dl_core.data.synthetic import GeneratorConfig
from dl_core.data.timestep import Timestamps, TimeStep, check_freq, check_timezone, fit_time_step, refusal, time_text
from dl_core.data.windows import (
    POSITION,
    RowKeys,
    WindowSplit,
    entity_offsets,
    positions,
    split_starts,
    unbroken,
    warn_left_out,
)
from dl_core.errors import DataError, InputError, require, require_once
from dl_core.task import Forecast
from dl_core.task.scaling import SeriesScaler, series_labels

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)

FIXES = {  # key -> (the fix for a few stray text cells, the fix for a text column)
    "data.target_column": ("fix or blank those cells (then set data.fillna)", "name a numeric column"),
    "data.feature_columns": (("fix or blank those cells (then set data.fillna), or leave the column out of "
                             "data.feature_columns"), "leave them out of data.feature_columns or convert them"),
    "data.future_covariates": ("fix or blank those cells (then set data.fillna)",
                               "leave them out of data.future_covariates or convert them"),
}


@dataclass
class TimeSeriesPreprocessor:
    """The fitted, picklable recipe that turns a raw frame into scaled input arrays (the `Forecast` task
    scales the targets); what the run's timestamps are (numbers, or dates in a zone or without one), told
    from the training file, and its time step (`data.freq`, or fitted on the training rows), which dates
    forecasts beyond a series' last row."""

    timestamp_column: str | None
    entity_columns: list[str]
    feature_columns: list[str]
    target_columns: list[str]
    fillna: str | None
    sequence_length: int
    horizon: int
    feature_scaler: StandardScaler | SeriesScaler | None = None
    covariates: CovariateEncoder | None = None
    # Columns of true/false values, read as 1/0 like a 0/1 column; new rows must send true or false there.
    boolean_columns: frozenset[str] = frozenset()
    freq: str | None = None
    time_step: TimeStep | None = None
    timestamps: Timestamps | None = None
    scaler: str = "global"  # data.scaler: `per_series` scales the inputs (and the task the targets) per series
    seasonality: int | None = None  # data.seasonality, resolved by `fit` (dl_core/data/seasonality.py)

    def clean(self, frame: pd.DataFrame, training: bool = False) -> pd.DataFrame:
        """Sorted by entity then time, on the run's time line, missing values handled, every used column numeric."""
        return self.fill(self.on_time_line(self.order(frame, training), training))

    def order(self, frame: pd.DataFrame, training: bool = False) -> pd.DataFrame:
        """Sorted by entity then time, every used column present and numeric, the timestamps read as the run's;
        missing values left as they are. What cannot be read is refused: in the training rows (`training`)
        naming the data key, in new rows as the request's fault."""
        keys = [c for c in [*self.entity_columns, self.timestamp_column] if c]
        require_columns(frame, keys, "data.timestamp_column/entity_columns")
        _refuse_missing_keys(frame, self.entity_columns, self.timestamp_column, training)
        _refuse_mixed_names(frame, self.entity_columns, training)
        require_columns(frame, self.target_columns, "data.target_column")
        require_columns(frame, self.feature_columns, "data.feature_columns")
        future = self.covariates.future_columns if self.covariates else []
        require_columns(frame, future, "data.future_covariates")
        require_columns(frame, self.covariates.static_columns if self.covariates else [], "data.static_columns")
        frame = frame.assign(**{c: frame[c].astype(np.float64) for c in self.boolean_columns})
        _check_numeric(frame, self.target_columns, "data.target_column")  # before sorting, so that rows
        _check_numeric(frame, self.feature_columns, "data.feature_columns")  # are named as in the file
        _check_numeric(frame, future, "data.future_covariates")
        if self.timestamp_column:
            time = self.timestamp_column
            frame[time] = self.timestamps.read(frame[time], time, training)
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True) if keys else frame
        _check_duplicate_times(frame, self.timestamp_column, self.entity_columns)
        return frame

    def on_time_line(self, rows: pd.DataFrame, training: bool) -> pd.DataFrame:
        """Ordered rows on the run's time line: a row off it is refused, missing steps refused or added as rows
        whose values `fill` fills (dl_core/data/missing.py)."""
        self.check_time_line(rows, training)
        return fill_gaps(rows, self, training)

    def fill(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Missing values filled (or refused) per `fillna`; the covariates checked on what is left. Each row keeps
        its position on its series' time line (`POSITION`), so that no window spans the rows `drop` leaves out."""
        rows = rows.assign(**{POSITION: positions(self.entity_labels(rows))})
        rows = handle_missing(rows, self._value_columns(), self.entity_columns, self.fillna)
        if self.covariates is not None:
            self.covariates.check(rows, self.entity_labels(rows))
        return rows

    def fit_time(self, rows: pd.DataFrame, split: Any) -> None:
        """The time step, from the ordered `rows` whose targets fall in the training split (before missing values
        are handled: dropped rows would leave gaps)."""
        time = self.timestamp_column
        if not time:
            return
        offsets = entity_offsets(rows, self)
        train = np.zeros(len(rows), bool)
        for lo, hi in itertools.pairwise(offsets):
            train[lo:lo + chronological_bounds(rows.iloc[lo:hi], split, time, self.horizon)[0]] = True
        self.time_step = fit_time_step(rows[time][train], self.entity_labels(rows)[train], self.freq)

    def fit(self, train_rows: pd.DataFrame) -> TimeSeriesPreprocessor:
        from sklearn.preprocessing import StandardScaler

        if self.scaler == "per_series":
            self.feature_scaler = SeriesScaler(self.entity_columns).fit(train_rows, self.feature_columns)
        else:
            self.feature_scaler = StandardScaler().fit(train_rows[self.feature_columns].to_numpy(np.float64))
        self.seasonality = resolve_seasonality(self.seasonality, self.time_step)  # the step: `fit_time`, first
        if self.covariates is not None:
            self.covariates.fit(train_rows, self.entity_labels(train_rows))
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Scaled float32 inputs, (rows, features)."""
        if isinstance(self.feature_scaler, SeriesScaler):
            return self.feature_scaler.transform(frame, self.feature_columns)
        return self.feature_scaler.transform(frame[self.feature_columns].to_numpy(np.float64)).astype(np.float32)

    def input_schema(self) -> InputSchema:
        """Keys, timestamp and every value column; values may be missing where `fillna` fills them. With
        known-future covariates the targets and past inputs may be missing too (a future row has none), as
        may the covariates (a missing one is refused naming its column and timestamp)."""
        values = self._value_columns()
        covariates = self.covariates.input_columns() if self.covariates else {}
        columns = {**dict.fromkeys(self.entity_columns, LABEL),
                   **({self.timestamp_column: self._time_kind()} if self.timestamp_column else {}),
                   **dict.fromkeys(values, NUMBER), **covariates}
        columns |= dict.fromkeys(self.boolean_columns, BOOLEAN)
        nullable = set(values) if self.fillna or self.knows_future else set()
        if self.knows_future:
            nullable |= set(self.covariates.future_columns)
        return InputSchema(columns, frozenset(nullable), self.timestamp_column,
                           self.timestamps.fmt if self.timestamps else None)

    def _time_kind(self) -> str:
        """The timestamp's type in a request: what training saw (numbers, or dates as ISO text or in its format)."""
        if not self.timestamps.dates:
            return TIME
        return DATE if self.timestamps.fmt is None else DATE_TEXT

    def unseen_categories(self, frame: pd.DataFrame) -> list[Unseen]:
        """The static categories of new rows that no training series had."""
        return self.covariates.unseen(frame) if self.covariates else []

    @property
    def knows_future(self) -> bool:
        return self.covariates is not None and self.covariates.has_future

    def new_rows(self, frame: pd.DataFrame, task: Forecast) -> WindowSplit:
        """Windows of validated new rows, the forecast past each series' last row among them
        (dl_core/data/new_rows.py)."""
        return new_row_windows(self, frame, task)

    def labelled_rows(self, frame: pd.DataFrame, task: Forecast) -> WindowSplit:
        """The complete windows of validated new rows, to score the run on: dl_core/data/new_rows.py."""
        return labelled_windows(self, frame, task)

    def check_time_line(self, rows: pd.DataFrame, training: bool) -> None:
        """Every timestamp a whole number of the run's time steps after the one before it in its series (gaps
        are missing steps). The first that is not is refused: in the training rows naming data.freq, in new
        rows as the request's fault."""
        if self.time_step is None:
            return
        off = self.time_step.off_line(rows[self.timestamp_column], self.entity_labels(rows))
        if off is None:
            return
        series, at, before = off
        where = f"after {time_text(before)}, the row before" if before is not None else "its first row"
        source = "data.freq" if self.time_step.given else "inferred from the training rows"
        problem = (f"series {short(series)} has timestamp {time_text(at)} ({where}), off the run's time line of "
                   f"{self.time_step} steps ({source})")
        if training:
            raise DataError(f"data.freq: {problem}; fix that timestamp, or set data.freq to the rows' frequency")
        raise InputError((), f"{problem}; send rows whose timestamps are whole {self.time_step} steps apart")

    def metadata(self) -> dict[str, Any]:
        return {"sequence_length": self.sequence_length, "horizon": self.horizon, "targets": self.target_columns,
                "timestamp_column": self.timestamp_column, "entity_columns": self.entity_columns,
                "freq": None if self.time_step is None else str(self.time_step),
                **(self.timestamps.metadata() if self.timestamps else {"timezone": None, "timestamp_format": None}),
                **(self.covariates.metadata() if self.covariates else {})}

    def entity_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return series_labels(frame, self.entity_columns)

    def _value_columns(self) -> list[str]:
        future = self.covariates.future_columns if self.covariates else []
        return list(dict.fromkeys([*self.feature_columns, *self.target_columns, *future]))


def build_timeseries_bundle(cfg: Any, frame: pd.DataFrame) -> DataBundle:
    """Frame -> ordered rows -> the run's timestamps and time step -> rows on its time line, missing values handled
    -> chronological split per entity -> train-fit scalers -> window index."""
    prep = _preprocessor_from_config(cfg, frame)
    refuse_empty_columns(frame, prep)
    if prep.timestamp_column:
        require_columns(frame, [prep.timestamp_column], "data.timestamp_column")
        _refuse_missing_keys(frame, [], prep.timestamp_column, training=True)
        prep.timestamps = Timestamps.of(frame[prep.timestamp_column], prep.timestamp_column, cfg.timezone,
                                        cfg.timestamp_format)
    rows = prep.order(frame, training=True)
    prep.fit_time(rows, cfg.split)
    rows = prep.fill(prep.on_time_line(rows, training=True))
    if rows.empty:
        raise DataError(f"data.fillna: no rows left once rows with missing values are dropped "
                        f"(data.fillna={prep.fillna}); use ffill, interpolate or zero, or fix the gaps in data.path")
    offsets = entity_offsets(rows, prep)
    _check_lengths(rows, offsets, prep)
    bounds = [chronological_bounds(rows.iloc[lo:hi], cfg.split, prep.timestamp_column, cfg.horizon)
              for lo, hi in itertools.pairwise(offsets)]
    train_mask = np.zeros(len(rows), dtype=bool)
    for lo, (a, _, _) in zip(offsets[:-1], bounds, strict=False):
        train_mask[lo:lo + a] = True
    prep.fit(rows[train_mask])
    series_scaler = SeriesScaler(prep.entity_columns) if prep.scaler == "per_series" else None
    task = Forecast(prep.target_columns, series_scaler).fit(rows[train_mask])
    x, y = torch.from_numpy(prep.transform(rows)), torch.from_numpy(task.encode(rows))
    starts = _unbroken_starts(split_starts(offsets, bounds, prep.sequence_length, prep.horizon), rows, prep)
    for name in SPLITS:
        if starts[name].size == 0:
            raise DataError(f"data.split: the {name} split has no complete window "
                            f"(sequence_length={prep.sequence_length}, horizon={prep.horizon}); "
                            f"give it more rows (data.split.{name}_fraction) or shorten the window")
    keys = RowKeys.of(rows, prep, offsets)
    covariates = prep.covariates.tensors(rows, offsets) if prep.covariates else None
    splits = {name: WindowSplit(x, y, torch.from_numpy(starts[name]), prep.sequence_length, prep.horizon, keys,
                                covariates)
              for name in SPLITS}
    spec = {"n_features": len(prep.feature_columns), "n_targets": len(prep.target_columns),
            "horizon": prep.horizon, "sequence_length": prep.sequence_length, "seasonality": prep.seasonality,
            "target_index": target_index(prep), "n_future": 0, "n_static": 0, "static_cardinalities": [],
            **(prep.covariates.spec() if prep.covariates else {})}
    return DataBundle(task, splits, spec, prep)


def target_index(prep: TimeSeriesPreprocessor) -> list[int] | None:
    """Where each target sits among the input features, for models that forecast from the target's
    own history (naive, DLinear); None when a target is not an input."""
    if not set(prep.target_columns) <= set(prep.feature_columns):
        return None
    return [prep.feature_columns.index(t) for t in prep.target_columns]


def _preprocessor_from_config(cfg: Any, frame: pd.DataFrame) -> TimeSeriesPreprocessor:
    targets = [cfg.target_column] if isinstance(cfg.target_column, str) else list(cfg.target_column)
    require_columns(frame, targets, "data.target_column")
    entities = list(cfg.entity_columns or [])
    covariates = _covariates_from_config(cfg)
    keys = {cfg.timestamp_column, *entities}
    if covariates is not None:
        keys |= {*covariates.future_columns, *covariates.static_columns}
    drop = list(cfg.get("drop_columns") or [])
    require_columns(frame, drop, "data.drop_columns")
    if cfg.feature_columns is None:
        candidates = [c for c in frame.columns if c not in keys and c not in targets and c not in drop]
        for column in candidates:  # a column of numbers with a typo is refused, not silently left out
            refuse_stray_text(frame, column, "data.feature_columns", FIXES["data.feature_columns"][0])
        features = [c for c in candidates if pd.api.types.is_numeric_dtype(frame[c]) or is_boolean(frame[c])]
        for column in unique_per_row(frame, features):
            log.warning("data: column %r has a distinct value in every row and is an input; if it numbers or "
                        "names the rows, list it in data.drop_columns", column)
    else:
        features = list(cfg.feature_columns)
        listed = [c for c in targets if c in features]
        require(not listed, "data.feature_columns",
                f"lists the target {listing(map(repr, listed))}; a target's past is an input by "
                f"data.include_target_in_inputs (now {str(cfg.include_target_in_inputs).lower()}), not by this "
                f"list: leave it out")
        require_columns(frame, features, "data.feature_columns")
    if cfg.include_target_in_inputs:
        features = [*features, *targets]
    if not features:
        raise DataError("data.feature_columns: no input columns left; list some numeric columns or set "
                        "data.include_target_in_inputs=true")
    used = [*features, *targets, *(covariates.future_columns + covariates.static_columns if covariates else [])]
    boolean = frozenset(c for c in used if c in frame.columns and is_boolean(frame[c]))
    return TimeSeriesPreprocessor(cfg.timestamp_column, entities, features, targets, cfg.fillna,
                                  cfg.sequence_length, cfg.horizon, covariates=covariates, boolean_columns=boolean,
                                  freq=cfg.freq, scaler=cfg.get("scaler", "global"),
                                  seasonality=cfg.get("seasonality"))


def _unbroken_starts(starts: dict[str, np.ndarray], rows: pd.DataFrame,
                     prep: TimeSeriesPreprocessor) -> dict[str, np.ndarray]:
    """Each split's windows less those that span rows dropped for missing values (data.fillna=drop)."""
    position = rows[POSITION].to_numpy()
    kept = {name: unbroken(part, position, prep.sequence_length + prep.horizon) for name, part in starts.items()}
    warn_left_out(sum(int((~keep).sum()) for keep in kept.values()), prep.fillna)
    return {name: starts[name][keep] for name, keep in kept.items()}


def _covariates_from_config(cfg: Any) -> CovariateEncoder | None:
    future, calendar, static = (list(cfg.get(key) or []) for key in
                                ("future_covariates", "calendar_features", "static_columns"))
    if not (future or calendar or static):
        return None
    return CovariateEncoder(future, calendar, static, cfg.timestamp_column)


def _refuse_missing_keys(frame: pd.DataFrame, entities: list[str], time: str | None, training: bool) -> None:
    """A row without its series or its timestamp belongs nowhere: refused naming the column and the first row."""
    for key, column in [*(("data.entity_columns", c) for c in entities), ("data.timestamp_column", time)]:
        missing = frame[column].isna() if column else None
        if missing is not None and missing.any():
            n = int(missing.sum())
            raise refusal(training, key, f"column {column!r} is missing in {n} row{'s' if n != 1 else ''} (first: "
                                         f"{row_name(frame, missing.idxmax())}); fill those cells or drop those rows")


def _refuse_mixed_names(frame: pd.DataFrame, columns: list[str], training: bool) -> None:
    """A series named 1 in one row and "1" in another is one series to a CSV file, two to pandas' sort: refused."""
    for column in columns:
        values = frame[column]
        if values.dtype != object:
            continue
        text = values.map(lambda value: isinstance(value, str)).to_numpy(bool)
        if text.any() and not text.all():
            words, others = values[text].unique(), values[~text].unique()
            clash = next((v for v in others if str(v) in set(words)), others[0])
            word = str(clash) if str(clash) in set(words) else words[0]
            raise refusal(training, "data.entity_columns",
                          f"column {column!r} names series by numbers and by text ({clash!r} and {word!r}); name each "
                          f"series one way, as in training")


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


def _check_lengths(rows: pd.DataFrame, offsets: np.ndarray, prep: TimeSeriesPreprocessor) -> None:
    need = prep.sequence_length + prep.horizon
    labels = prep.entity_labels(rows)
    for lo, hi in itertools.pairwise(offsets):
        if hi - lo < need:
            raise DataError(f"data.sequence_length: series {short(labels[lo])} has {hi - lo} rows but a window "
                            f"needs sequence_length + horizon = {need}; shorten data.sequence_length or "
                            f"drop that series")


@dataclass
class TimeSeriesDataConfig(DataConfig):
    """Forecasting data: sliding windows of `sequence_length` past rows predict `horizon` rows.

    Attributes:
        timestamp_column: column to sort by and report; null uses row order. It holds numbers or dates, and
            rows sent for prediction must hold the same kind. Whole numbers that all read as dates written
            yyyymmdd (20200131) are refused: set `timestamp_format`. A missing timestamp is refused.
        timezone: the time zone of date timestamps written with a UTC offset (an IANA name: Europe/Paris, UTC):
            they are read as the instants they name, in this zone, whose wall clock the calendar features read;
            needed when offsets change within the column (daylight saving time). Null keeps the offset the
            timestamps are written with. Timestamps without an offset are read as written, and then rows sent
            for prediction may carry no offset either (and rows sent to a zoned run must carry one).
        timestamp_format: how dates are written when not as ISO 8601, a strftime format (`%Y%m%d` for 20200131,
            `%d/%m/%Y %H:%M`); rows sent for prediction are read with it too. Null: ISO 8601 or what pandas infers.
        freq: the time step of date timestamps, a pandas offset alias (h, 15min, D, B, W-SUN, MS, ME, QS, YS);
            null infers it from the training rows (refused where they have no regular step). Forecasts past
            a series' last row are dated by it, calendar-aware (month starts stay month starts), and every
            timestamp must lie a whole number of steps after the one before it (missing steps: see `fillna`).
        target_column: the column to forecast, or a list of columns (one output per column); not the
            timestamp or an entity column.
        feature_columns: input columns; null takes every numeric or true/false column (read as 1/0; new rows
            send true or false there) except keys, targets and `drop_columns`. A mostly numeric column (at
            least 90 % of its non-missing cells are numbers, but not all), or one of numbers with thousands
            separators (`"1,234"`), is refused, naming the cells and their file lines, rather than left out.
        drop_columns: columns that are not inputs although `feature_columns: null` would take them (row
            numbers, ids, a leak of the future); a listed column that is not in the data is refused. An
            integer column with a distinct value in every row is warned about.
        entity_columns: columns that tell series apart; windows never cross them.
        include_target_in_inputs: feed the target's own past to the model as an input.
        sequence_length: past rows in each input window.
        horizon: future rows predicted at once from each window.
        fillna: null refuses missing values; ffill, bfill, interpolate, zero or drop fills them per series.
            An infinite value counts as missing; a column with no value at all is refused. Missing steps of a
            regular time line (rows absent between two timestamps) are missing rows: refused naming the series
            and the timestamps, or added and filled alike; `drop` drops them, and no window spans a dropped row.
        future_covariates: columns whose values are known for the forecast horizon too (planned events,
            a weather forecast); the model sees them over the look-back and the horizon. New rows carry
            the horizon's values as future rows (targets null) after each series' last row.
        calendar_features: features derived from the timestamp and known for any horizon, each as the
            sine and cosine of its cycle: minute, hour, dayofweek, dayofmonth, dayofyear, month.
        static_columns: per-series constants (numbers, or categories that the model embeds); refused if
            a value varies within a series.
        scaler: `global` standardizes each input and target column on the training rows of all series
            together; `per_series` on each series' own training rows (neither scale then dominates the other:
            a panel of series of very different sizes), saved with the run, so predict.py and the server
            scale alike and refuse a series that training never saw.
        seasonality: the seasonal period m, in time steps, of the seasonal naive forecast
            (model=seasonal_naive) and of MASE; null infers it from the time step: hourly 24, daily 7,
            weekly 52, monthly 12, quarterly 4, any other step (or no timestamp column) 1.
        split: how each series is split in time (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: Literal["timeseries"] = "timeseries"
    timestamp_column: str | None = None
    timezone: str | None = None
    timestamp_format: str | None = None
    freq: str | None = None
    target_column: Any = None
    feature_columns: list[str] | None = None
    drop_columns: list[str] = field(default_factory=list)
    entity_columns: list[str] = field(default_factory=list)
    include_target_in_inputs: bool = True
    sequence_length: int = 30
    horizon: int = 1
    fillna: Literal["ffill", "bfill", "interpolate", "zero", "drop"] | None = None
    future_covariates: list[str] = field(default_factory=list)
    calendar_features: list[Literal["minute", "hour", "dayofweek", "dayofmonth", "dayofyear", "month"]] = \
        field(default_factory=list)
    static_columns: list[str] = field(default_factory=list)
    scaler: Literal["global", "per_series"] = "global"
    seasonality: int | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    generator: GeneratorConfig | None = None

    def validate(self, prefix: str) -> None:
        require(self.sequence_length >= 1, f"{prefix}.sequence_length",
                f"must be >= 1 (got {self.sequence_length}), e.g. {prefix}.sequence_length=30")
        require(self.horizon >= 1, f"{prefix}.horizon", f"must be >= 1 (got {self.horizon}), e.g. {prefix}.horizon=1")
        require(self.seasonality is None or self.seasonality >= 1, f"{prefix}.seasonality",
                f"must be >= 1 time steps or null to infer it (got {self.seasonality}), e.g. {prefix}.seasonality=24")
        targets = [self.target_column] if isinstance(self.target_column, str) else self.target_column
        require(bool(targets) and all(isinstance(t, str) and t for t in targets), f"{prefix}.target_column",
                f"must name a column (or a list of columns) to forecast, e.g. {prefix}.target_column=OT")
        for key, names in (("target_column", targets), ("feature_columns", self.feature_columns),
                           ("entity_columns", self.entity_columns), ("future_covariates", self.future_covariates),
                           ("calendar_features", self.calendar_features), ("static_columns", self.static_columns),
                           ("drop_columns", self.drop_columns)):
            require_once(names, f"{prefix}.{key}")
        self._validate_covariates(prefix, targets)
        require(self.freq is None or self.timestamp_column is not None, f"{prefix}.freq",
                f"is the step of the timestamps, so set {prefix}.timestamp_column (a column of dates) or leave it null")
        problem = check_freq(self.freq, f"{prefix}.freq")
        require(problem is None, f"{prefix}.freq", str(problem))
        self._validate_time(prefix)
        for target in targets:
            require(target != self.timestamp_column, f"{prefix}.target_column",
                    f"{target!r} is the timestamp column ({prefix}.timestamp_column), not a value to forecast; "
                    f"name a numeric column")
            require(target not in self.entity_columns, f"{prefix}.target_column",
                    f"{target!r} is an entity column ({prefix}.entity_columns), a key that tells series apart; "
                    f"name a numeric column")
        super().validate(prefix)

    def _validate_time(self, prefix: str) -> None:
        """How the timestamps are read: a zone pandas knows, a format with a directive, both only with dates."""
        for key, value in (("timezone", self.timezone), ("timestamp_format", self.timestamp_format)):
            require(value is None or self.timestamp_column is not None, f"{prefix}.{key}",
                    f"says how to read the timestamps, so set {prefix}.timestamp_column (a column of dates) or leave "
                    f"it null")
        problem = check_timezone(self.timezone, f"{prefix}.timezone")
        require(problem is None, f"{prefix}.timezone", str(problem))
        require(self.timestamp_format is None or "%" in self.timestamp_format, f"{prefix}.timestamp_format",
                f"{self.timestamp_format!r} has no strftime directive; e.g. {prefix}.timestamp_format=%Y%m%d")

    def _validate_covariates(self, prefix: str, targets: list[str]) -> None:
        """A column plays one part: target, key, past input, known-future or static covariate, or none (dropped)."""
        roles = {"data.target_column": targets, "data.entity_columns": self.entity_columns,
                 "data.timestamp_column": [self.timestamp_column] if self.timestamp_column else [],
                 "data.feature_columns": self.feature_columns or []}
        for key, names in (("future_covariates", self.future_covariates), ("static_columns", self.static_columns),
                           ("drop_columns", self.drop_columns)):
            for name in names:
                for other, columns in roles.items():
                    require(name not in columns, f"{prefix}.{key}",
                            f"{name!r} is also in {other}; a column plays one part, list it once")
            roles[f"{prefix}.{key}"] = names
        require(not self.calendar_features or self.timestamp_column is not None, f"{prefix}.calendar_features",
                f"derive from dates, so set {prefix}.timestamp_column (a column of dates) or leave it empty")
        require(not self.static_columns or bool(self.entity_columns), f"{prefix}.static_columns",
                f"are constants of each series, which {prefix}.entity_columns tells apart; set it, or leave "
                f"{prefix}.static_columns empty")

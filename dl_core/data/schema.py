"""Schemas of `conf/data/`: what a data option may set, its types and choices, and each key's default.

The field defaults here are the one source of every default; a YAML option states only what it
changes. Types and choices (`Literal`) are checked by Hydra when the config is composed; ranges and
combinations by each `validate(prefix)`, which `dl_core.runs.config.validate` calls before any work, for
each section and each section nested in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dl_core.data.timestep import check_freq
from dl_core.errors import require, require_at_least
from dl_core.task import TABLE_TASKS


def _require_fractions(val_fraction: float, test_fraction: float, prefix: str) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        require(0.0 < value < 1.0, f"{prefix}.{name}", f"must be in (0, 1) (got {value}), e.g. 0.15")
    total = val_fraction + test_fraction
    require(total < 1.0, f"{prefix}.val_fraction + test_fraction",
            f"must leave rows for training (sum is {total:.2f}); lower one of them")


def _require_fold(folds: int, fold: int, prefix: str) -> None:
    require(folds >= 1, f"{prefix}.folds", f"must be >= 1 (got {folds}); 1 is the single split")
    require(0 <= fold < folds, f"{prefix}.fold", f"must be in 0..{folds - 1} for {prefix}.folds={folds} (got {fold})")


def _require_once(names: list[str] | None, key: str) -> None:
    names = list(names or [])
    for i, name in enumerate(names):
        require(name not in names[:i], key, f"lists {name!r} twice; name each column once")


@dataclass
class SplitConfig:
    """Chronological split of each series' target rows: train, then validation, then test.

    Attributes:
        val_fraction: share of each series' rows whose targets form the validation split.
        test_fraction: share of each series' last rows whose targets form the test split.
        val_start: first timestamp of the validation split (a date split; set test_start too).
        test_start: first timestamp of the test split.
        train_rows: rows of each series whose targets form the training split (a row split, as the
            fixed borders of benchmark protocols such as ETT's; set val_rows and test_rows too).
        val_rows: rows after the training rows whose targets form the validation split.
        test_rows: rows after the validation rows whose targets form the test split; later rows are unused.
        folds: rolling-origin backtest: the split above is the last of `folds` folds, and fold k's
            validation and test periods lie (folds - 1 - k) test periods earlier, trained on every row
            before them (`-m data.split.fold=0,1,2 data.split.folds=3`); 1: the single split.
        fold: which fold this run trains and evaluates, 0 (earliest) .. folds - 1 (the single split's).
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    val_start: str | None = None
    test_start: str | None = None
    train_rows: int | None = None
    val_rows: int | None = None
    test_rows: int | None = None
    folds: int = 1
    fold: int = 0

    def validate(self, prefix: str) -> None:
        _require_fractions(self.val_fraction, self.test_fraction, prefix)
        _require_fold(self.folds, self.fold, prefix)
        require((self.val_start is None) == (self.test_start is None), f"{prefix}.val_start/test_start",
                "set both timestamps for a date split, or neither for a fraction split")
        rows = {name: getattr(self, name) for name in ("train_rows", "val_rows", "test_rows")}
        given = [v is not None for v in rows.values()]
        require(all(given) or not any(given), f"{prefix}.train_rows/val_rows/test_rows",
                "set all three row counts for a row split (e.g. 8640/2880/2880 for ETTh), or none")
        if all(given):
            require(self.val_start is None, f"{prefix}.val_start",
                    "must be null when row counts are set; pick a date split or a row split")
            for name, value in rows.items():
                require(value >= 1, f"{prefix}.{name}", f"must be >= 1 (got {value})")


@dataclass
class SyntheticConfig:
    """What the settings of the built-in generators share.

    Attributes:
        noise: scale of the noise on the target.
        seed: generator seed; fixed by default so every training seed sees the same data.
    """

    noise: float = 0.3
    seed: int = 0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, noise=0)


@dataclass
class GeneratorConfig(SyntheticConfig):
    """Parameters of the built-in synthetic time-series generator (data=synthetic).

    Attributes:
        noise: scale of the AR(1) noise added to the target.
        n_series: number of independent series (entities, column `series_id`).
        length: hourly rows per series.
        n_drivers: exogenous driver columns whose lagged values move the target.
        calendar_effect: shift of the target on Saturdays and Sundays (known from the timestamp: see
            `data.calendar_features`); 0 leaves it out.
        event_effect: shift of the target while a planned event is on: adds the 0/1 column `event`, on
            for 3-8 hours at a time, about every other day (known in advance: see `data.future_covariates`); 0
            leaves it out.
        static_effect: level offset of each series' region (-1, 0 or +1 times this): adds the per-series
            column `region` (see `data.static_columns`); 0 leaves it out.
    """

    n_series: int = 2
    length: int = 2000
    n_drivers: int = 2
    calendar_effect: float = 0.0
    event_effect: float = 0.0
    static_effect: float = 0.0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_series=1, length=10, n_drivers=0)
        super().validate(prefix)


@dataclass
class DataConfig:
    """What every data option says: its kind and where its rows come from.

    Attributes:
        kind: `timeseries` or `tabular`, fixed by the schema; tells models and data apart (checked
            against the model's data kind).
        source: where rows come from: `synthetic` (built in) or `csv` (a CSV or parquet file).
        name: a readable name of the data set, used in run names.
        path: the file to read for `source: csv` (relative to the current directory).
    """

    kind: Literal["timeseries", "tabular"] = "timeseries"
    source: Literal["synthetic", "csv"] = "csv"
    name: str = "csv"
    path: str | None = None

    def validate(self, prefix: str) -> None:
        require(self.source != "csv" or bool(self.path), f"{prefix}.path",
                f"is required for a CSV data source: pass {prefix}.path=/path/to/file.csv")


@dataclass
class TimeSeriesDataConfig(DataConfig):
    """Forecasting data: sliding windows of `sequence_length` past rows predict `horizon` rows.

    Attributes:
        timestamp_column: column to sort by and report; null uses row order.
        freq: the time step of date timestamps, a pandas offset alias (h, 15min, D, B, W-SUN, MS, ME, QS, YS);
            null infers it from the training rows (refused where they have no regular step). Forecasts past
            a series' last row are dated by it, calendar-aware (month starts stay month starts), and every
            timestamp must lie a whole number of steps after the one before it (gaps are missing steps).
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
            An infinite value counts as missing; a column with no value at all is refused.
        future_covariates: columns whose values are known for the forecast horizon too (planned events,
            a weather forecast); the model sees them over the look-back and the horizon. New rows carry
            the horizon's values as future rows (targets null) after each series' last row.
        calendar_features: features derived from the timestamp and known for any horizon, each as the
            sine and cosine of its cycle: minute, hour, dayofweek, dayofmonth, dayofyear, month.
        static_columns: per-series constants (numbers, or categories that the model embeds); refused if
            a value varies within a series.
        split: how each series is split in time (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: Literal["timeseries"] = "timeseries"
    timestamp_column: str | None = None
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
    split: SplitConfig = field(default_factory=SplitConfig)
    generator: GeneratorConfig | None = None

    def validate(self, prefix: str) -> None:
        require(self.sequence_length >= 1, f"{prefix}.sequence_length",
                f"must be >= 1 (got {self.sequence_length}), e.g. {prefix}.sequence_length=30")
        require(self.horizon >= 1, f"{prefix}.horizon", f"must be >= 1 (got {self.horizon}), e.g. {prefix}.horizon=1")
        targets = [self.target_column] if isinstance(self.target_column, str) else self.target_column
        require(bool(targets) and all(isinstance(t, str) and t for t in targets), f"{prefix}.target_column",
                f"must name a column (or a list of columns) to forecast, e.g. {prefix}.target_column=OT")
        for key, names in (("target_column", targets), ("feature_columns", self.feature_columns),
                           ("entity_columns", self.entity_columns), ("future_covariates", self.future_covariates),
                           ("calendar_features", self.calendar_features), ("static_columns", self.static_columns),
                           ("drop_columns", self.drop_columns)):
            _require_once(names, f"{prefix}.{key}")
        self._validate_covariates(prefix, targets)
        require(self.freq is None or self.timestamp_column is not None, f"{prefix}.freq",
                f"is the step of the timestamps, so set {prefix}.timestamp_column (a column of dates) or leave it null")
        problem = check_freq(self.freq, f"{prefix}.freq")
        require(problem is None, f"{prefix}.freq", str(problem))
        for target in targets:
            require(target != self.timestamp_column, f"{prefix}.target_column",
                    f"{target!r} is the timestamp column ({prefix}.timestamp_column), not a value to forecast; "
                    f"name a numeric column")
            require(target not in self.entity_columns, f"{prefix}.target_column",
                    f"{target!r} is an entity column ({prefix}.entity_columns), a key that tells series apart; "
                    f"name a numeric column")
        super().validate(prefix)

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


@dataclass
class ETTDataConfig(TimeSeriesDataConfig):
    """The ETT benchmark: `features` picks the literature's mode (M: all channels in and out,
    S: `target_column` only, MS: all channels in, `target_column` out); without `path` the file
    is downloaded into `cache_dir` and checked against its SHA-256.

    Attributes:
        source: `ett`: the file is read (or downloaded) by the ETT loader.
        name: ETTh1, ETTh2 (hourly) or ETTm1, ETTm2 (15 minutes).
        features: M (all 7 channels in and out), S (`target_column` only) or MS (all in, target out).
        cache_dir: where a downloaded file is kept (used when `path` is null).
        sha256: expected checksum of the file; null uses the pinned one for ETTh1/ETTh2.
    """

    source: Literal["ett"] = "ett"
    name: Literal["ETTh1", "ETTh2", "ETTm1", "ETTm2"] = "ETTh1"
    timestamp_column: str | None = "date"
    target_column: Any = "OT"
    features: Literal["M", "S", "MS"] = "M"
    cache_dir: str | None = None
    sha256: str | None = None

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        require(self.path is not None or self.cache_dir is not None, f"{prefix}.cache_dir",
                f"is needed to download {self.name} when {prefix}.path is null")


@dataclass
class TabularSplitConfig:
    """Random split of rows, seeded; stratified by class for classification.

    Attributes:
        val_fraction: share of rows in the validation split.
        test_fraction: share of rows in the test split.
        seed: split seed, separate from the training seed so every training seed sees the same split.
        stratify: keep class ratios equal across splits (classification only).
        folds: K-fold cross-validation: the rows are cut into `folds` (stratified) folds, fold k is the
            test split and val_fraction of all rows, drawn from the others, the validation split
            (test_fraction is then 1 / folds); 1: the single random split.
        fold: which fold is the test split, 0 .. folds - 1 (`-m data.split.fold=0,1,2,3,4 data.split.folds=5`).
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    stratify: bool = True
    folds: int = 1
    fold: int = 0

    def validate(self, prefix: str) -> None:
        _require_fractions(self.val_fraction, self.test_fraction, prefix)
        _require_fold(self.folds, self.fold, prefix)
        require(self.folds == 1 or self.val_fraction < 1 - 1 / self.folds, f"{prefix}.val_fraction",
                f"must leave training rows besides the test fold (1/{self.folds} of the rows); lower it")


@dataclass
class TabularGeneratorConfig(SyntheticConfig):
    """Parameters of the built-in synthetic table (data=synthetic_tabular).

    Attributes:
        n_rows: number of rows.
        n_numeric: numeric feature columns (`num_*`, a few values missing).
        n_categorical: categorical feature columns (`cat_*`).
        n_categories: distinct values per categorical column.
        n_classes: classes of the target when `data.task=classification`.
    """

    noise: float = 0.1
    n_rows: int = 3000
    n_numeric: int = 6
    n_categorical: int = 2
    n_categories: int = 5
    n_classes: int = 3

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_rows=50, n_numeric=1, n_categorical=0, n_categories=2, n_classes=2)
        super().validate(prefix)


@dataclass
class TabularDataConfig(DataConfig):
    """One row per sample: predict `target_column` from the other columns (regression or classification).

    Attributes:
        target_column: the column to predict; rows whose target is missing (or infinite) are dropped.
        task: `regression` or `classification` (binary or multiclass); required.
        feature_columns: input columns; null takes every column but the target and `drop_columns`.
        drop_columns: columns that are not inputs although `feature_columns: null` would take them (row
            numbers, ids, a leak of the target); a listed column that is not in the data is refused. An
            integer or text column with a distinct value in every row is warned about.
        derived_columns: new numeric columns, each a pandas `DataFrame.eval` expression over the others (e.g.
            `rooms_per_household: total_rooms / households`), computed before the features are chosen, for
            training rows and for rows sent to predict or serve alike; a division by zero counts as missing.
        categorical_columns: columns encoded as categories; null takes the non-numeric ones (true/false
            columns among them: new rows must then send true or false). A mostly numeric column (at least
            90 % of its non-missing cells are numbers, but not all), or one of numbers with thousands
            separators (`"1,234"`), is refused, naming the cells and their file lines, unless it is listed
            here. Labels that differ only in case or surrounding spaces are warned about.
        numeric_transform: `quantile` (quantile-normal, as in the rtdl paper) or `standard` scaling, fit on train;
            `raw` passes numbers as they are, missing ones as NaN (no imputation), for models that read them
            so: gradient-boosted trees set it themselves (their class's `data_options`), other models refuse it.
        quantile_noise: Gaussian noise, in units of each feature's training std, added to the training
            rows only while the quantile transform is fit (seeded by `data.split.seed`), as the rtdl
            paper does: without it a feature with repeated values maps to extreme quantiles (a 0/1
            feature to about -5.2/+5.2); 0 fits on the values unchanged.
        impute: statistic of the training rows that fills missing (or infinite) numbers: `median` or `mean`
            (not used with `numeric_transform: raw`, which keeps them missing).
        target_unit: divide a regression target by this before training and reporting (e.g. 100000).
        split: the random split (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: Literal["tabular"] = "tabular"
    target_column: str | None = None
    task: Literal["regression", "classification"] | None = None
    feature_columns: list[str] | None = None
    drop_columns: list[str] = field(default_factory=list)
    derived_columns: dict[str, str] = field(default_factory=dict)
    categorical_columns: list[str] | None = None
    numeric_transform: Literal["quantile", "standard", "raw"] = "quantile"
    quantile_noise: float = 1.0e-3
    impute: Literal["median", "mean"] = "median"
    target_unit: float = 1.0
    split: TabularSplitConfig = field(default_factory=TabularSplitConfig)
    generator: TabularGeneratorConfig | None = None

    def validate(self, prefix: str) -> None:
        require(self.task is not None, f"{prefix}.task",
                f"must be one of {', '.join(TABLE_TASKS)} (got None), e.g. {prefix}.task=regression")
        require(bool(self.target_column), f"{prefix}.target_column",
                f"must name the column to predict, e.g. {prefix}.target_column=price")
        _require_once(self.feature_columns, f"{prefix}.feature_columns")
        _require_once(self.categorical_columns, f"{prefix}.categorical_columns")
        _require_once(self.drop_columns, f"{prefix}.drop_columns")
        require(self.target_column not in (self.categorical_columns or []), f"{prefix}.categorical_columns",
                f"lists the target {self.target_column!r}, which would make it an input; leave it out")
        for name in self.drop_columns:
            for key, names in (("target_column", [self.target_column]), ("feature_columns", self.feature_columns),
                               ("categorical_columns", self.categorical_columns)):
                require(name not in (names or []), f"{prefix}.drop_columns",
                        f"{name!r} is also in {prefix}.{key}; a column plays one part, list it once")
        require(self.quantile_noise >= 0, f"{prefix}.quantile_noise", f"must be >= 0 (got {self.quantile_noise})")
        require(self.target_unit > 0, f"{prefix}.target_unit",
                f"must be > 0 (got {self.target_unit}), e.g. {prefix}.target_unit=100000 to report in $100k")
        super().validate(prefix)


SCHEMAS = {"data/timeseries_schema": TimeSeriesDataConfig, "data/ett_schema": ETTDataConfig,
           "data/tabular_schema": TabularDataConfig}

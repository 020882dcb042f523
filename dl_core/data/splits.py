"""How a data set is split into train, validation and test (`SPLITS`), and into the folds of a backtest or a
cross-validation.

A time series splits its *target* rows by time, per entity (`chronological_bounds`): train, then
validation, then test. A validation or test window may look back into earlier rows for its inputs, as
the standard ETT protocol does, but its targets never overlap another split's targets. A table splits
its rows at random, seeded and stratified by class (`random_split`). With `folds` > 1, fold k of a
rolling-origin backtest (series) or of a K-fold cross-validation (tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dl_core.checks import one_line
from dl_core.errors import ConfigError, DataError, require
from dl_core.task.table import quantity_hint

if TYPE_CHECKING:
    from dl_core.task import TableTask

SPLITS = ("train", "val", "test")
MAX_SPLIT_SEED = 2**32 - 1  # scikit-learn's random_state range


@dataclass
class SplitConfig:
    """Chronological split of each series' target rows: train, then validation, then test.

    Attributes:
        val_fraction: share of each series' rows whose targets form the validation split.
        test_fraction: share of each series' last rows whose targets form the test split.
        val_start: first timestamp of the validation split (a date split; set test_start too); without a UTC
            offset, a date of the run's time zone where its timestamps have one.
        test_start: first timestamp of the test split.
        train_rows: rows of each series whose targets form the training split (a row split, as the
            fixed borders of benchmark protocols such as ETT's; set val_rows and test_rows too).
        val_rows: rows after the training rows whose targets form the validation split.
        test_rows: rows after the validation rows whose targets form the test split; later rows are unused.
        folds: rolling-origin backtest: the split above is the last of `folds` folds, and fold k's
            validation and test periods lie (folds - 1 - k) steps earlier, trained on every row before
            them (an expanding window; `-m data.split.fold=0,1,2 data.split.folds=3`); 1: the single split.
        fold: which fold this run trains and evaluates, 0 (earliest) .. folds - 1 (the single split's).
        fold_step: rows of each series from one fold's origin to the next (neuralforecast's `step_size`):
            fewer than a test period makes the folds' test periods overlap, more leaves rows between
            them untested; null: one test period, so the test periods tile the end of each series.
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
    fold_step: int | None = None

    def validate(self, prefix: str) -> None:
        _require_fractions(self.val_fraction, self.test_fraction, prefix)
        _require_fold(self.folds, self.fold, prefix)
        if self.fold_step is not None:
            require(self.fold_step >= 1, f"{prefix}.fold_step",
                    f"must be >= 1 row (got {self.fold_step}), or null for one test period")
        require((self.val_start is None) == (self.test_start is None), f"{prefix}.val_start/test_start",
                "set both timestamps for a date split, or neither for a fraction split")
        for name in ("val_start", "test_start"):
            _require_timestamp(getattr(self, name), f"{prefix}.{name}")
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
        require(0 <= self.seed <= MAX_SPLIT_SEED, f"{prefix}.seed",
                f"must be in [0, {MAX_SPLIT_SEED}] (got {self.seed})")
        require(self.folds == 1 or self.val_fraction < 1 - 1 / self.folds, f"{prefix}.val_fraction",
                f"must leave training rows besides the test fold (1/{self.folds} of the rows); lower it")


def _require_timestamp(value: str | None, key: str) -> None:
    """A split's border is read as the split reads it (`pd.Timestamp`), so that a date it cannot read is refused
    before any work rather than halfway through building the data."""
    if value is None:
        return
    example = "write it as e.g. 2021-06-01 or 2021-06-01 12:00"
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: cannot read {value!r} as a timestamp ({one_line(err)}); {example}") from None
    require(stamp is not pd.NaT, key, f"{value!r} is no timestamp; {example}")


def _require_fractions(val_fraction: float, test_fraction: float, prefix: str) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        require(0.0 < value < 1.0, f"{prefix}.{name}", f"must be in (0, 1) (got {value}), e.g. 0.15")
    total = val_fraction + test_fraction
    require(total < 1.0, f"{prefix}.val_fraction + test_fraction",
            f"must leave rows for training (sum is {total:.2f}); lower one of them")


def _require_fold(folds: int, fold: int, prefix: str) -> None:
    require(folds >= 1, f"{prefix}.folds", f"must be >= 1 (got {folds}); 1 is the single split")
    require(0 <= fold < folds, f"{prefix}.fold", f"must be in 0..{folds - 1} for {prefix}.folds={folds} (got {fold})")


def chronological_bounds(series: pd.DataFrame, split: Any, time_col: str | None,
                         horizon: int) -> tuple[int, int, int]:
    """(a, b, end): train targets are rows [0, a), val [a, b), test [b, end) of this series.

    With `split.folds` > 1 these are the bounds of fold `split.fold` of a rolling-origin backtest: the
    single split's, moved (folds - 1 - fold) steps (`split.fold_step` rows, one test period by default)
    earlier, so the last fold is the single split.
    """
    a, b, end = _single_split_bounds(series, split, time_col, horizon)
    step = end - b if split.fold_step is None else split.fold_step
    shift = (split.folds - 1 - split.fold) * step
    if a - shift <= 0:
        raise DataError(f"data.split.folds: {split.folds} folds {step} rows apart leave fold {split.fold} no "
                        f"training rows in a series of {len(series)} rows; lower data.split.folds or "
                        f"data.split.fold_step, or shorten the test period")
    return a - shift, b - shift, end - shift


def _in_zone(date: str, times: pd.Series) -> pd.Timestamp:
    """A split date as a timestamp of the run's: one written without an offset is a date of the run's time zone (its
    wall clock), as the zoned timestamps' calendar features are."""
    stamp = pd.Timestamp(date)
    zone = times.dt.tz if pd.api.types.is_datetime64_any_dtype(times) else None
    return stamp.tz_localize(zone) if zone is not None and stamp.tz is None else stamp


def _single_split_bounds(series: pd.DataFrame, split: Any, time_col: str | None,
                         horizon: int) -> tuple[int, int, int]:
    n = len(series)
    if split.val_start is not None:
        if not time_col:
            raise DataError("data.split.val_start: a date split needs data.timestamp_column")
        times = series[time_col]
        a = int((times < _in_zone(split.val_start, times)).sum())
        b = int((times < _in_zone(split.test_start, times)).sum())
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
    n_test = max(round(n * split.test_fraction), horizon)
    n_val = max(round(n * split.val_fraction), horizon)
    return n - n_val - n_test, n - n_test, n


def random_split(frame: pd.DataFrame, task: TableTask, target: str, split: Any) -> dict[str, np.ndarray]:
    """Seeded random split of the frame's index labels, or fold `split.fold` of a K-fold split; stratified by the
    task's labels (classes) if it has any."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    rows = frame.index.to_numpy()
    labels = task.stratify_labels(frame[target]) if split.stratify else None
    n_hold = split.val_fraction + split.test_fraction
    try:
        if split.folds > 1:
            # Fold `split.fold` of a seeded (stratified) K-fold is the test split; validation comes from the rest.
            kfold = (KFold if labels is None else StratifiedKFold)(split.folds, shuffle=True, random_state=split.seed)
            rest, test_positions = list(kfold.split(rows, labels))[split.fold]
            rest_labels = None if labels is None else task.stratify_labels(frame.loc[rows[rest], target])
            train, val = train_test_split(rows[rest], test_size=round(split.val_fraction * len(rows)),
                                          random_state=split.seed, stratify=rest_labels)
            return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(rows[test_positions])}
        train, hold = train_test_split(rows, test_size=n_hold, random_state=split.seed, stratify=labels)
        hold_labels = None if labels is None else task.stratify_labels(frame.loc[hold, target])
        val, test = train_test_split(hold, test_size=split.test_fraction / n_hold, random_state=split.seed,
                                     stratify=hold_labels)
    except ValueError as exc:
        hint = quantity_hint(frame[target]) if labels is not None else ""
        raise DataError(f"data.split: cannot split {len(rows)} rows ({one_line(exc)}); {hint}use more rows, larger "
                        f"data.split fractions, or data.split.stratify=false") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}

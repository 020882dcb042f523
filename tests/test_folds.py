"""Folds: `data.split.folds` / `data.split.fold` on real composed configs and real data bundles.

Time series: a rolling-origin backtest whose last fold is the single split and whose earlier folds move
the validation and test periods back one test period at a time. Tables: a seeded, stratified K-fold.
"""

from __future__ import annotations

import numpy as np
import pytest

from dl_core.data import build_bundle
from dl_core.errors import ConfigError, DataError
from dl_core.runs.config import validate

SERIES = ["data.generator.length=400", "data.sequence_length=12", "data.horizon=3"]
TABLE = ["data=synthetic_tabular", "model=ft_transformer", "data.task=classification", "data.generator.n_rows=600"]


def target_rows(bundle, split: str) -> np.ndarray:
    return np.unique(bundle.splits[split].target_rows())


def test_rolling_origin_folds_step_back_one_test_period_and_the_last_is_the_single_split(make_cfg) -> None:
    single = build_bundle(make_cfg(*SERIES).data)
    folds = [build_bundle(make_cfg(*SERIES, "data.split.folds=3", f"data.split.fold={k}").data) for k in range(3)]
    for split in ("train", "val", "test"):
        assert np.array_equal(folds[2].splits[split].starts, single.splits[split].starts)

    first_series = lambda rows: rows[rows < 400]  # noqa: E731  (the two series' rows are 0..399 and 400..799)
    tests = [first_series(target_rows(fold, "test")) for fold in folds]
    period = len(tests[2])
    assert period == 60  # 15 % of 400 rows
    for k in range(2):
        assert tests[k].max() + 1 == tests[k + 1].min() and len(tests[k]) == period  # successive periods
    for fold in folds:  # training on everything before each validation period, validation right before test
        train, val, test = (first_series(target_rows(fold, split)) for split in ("train", "val", "test"))
        assert train.min() == 12 and train.max() + 1 == val.min() and val.max() + 1 == test.min()
    # The scaler is fit on each fold's own training rows.
    assert not np.allclose(folds[0].preprocessor.feature_scaler.mean_, folds[2].preprocessor.feature_scaler.mean_)


def test_a_fold_out_of_range_and_too_many_folds_are_refused_naming_the_key(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"^data\.split\.fold: must be in 0\.\.2 for data\.split\.folds=3 \(got 3\)$"):
        validate(make_cfg(*SERIES, "data.split.folds=3", "data.split.fold=3"))
    with pytest.raises(DataError, match=r"^data\.split\.folds: 6 folds 60 rows apart leave fold 0 no training"):
        build_bundle(make_cfg(*SERIES, "data.split.folds=6", "data.split.fold=0").data)
    with pytest.raises(ConfigError, match=r"^data\.split\.fold_step: must be >= 1 row \(got 0\)"):
        validate(make_cfg(*SERIES, "data.split.folds=3", "data.split.fold_step=0"))


def test_a_fold_step_moves_each_origin_by_that_many_rows_and_keeps_the_last_fold_the_single_split(make_cfg) -> None:
    """neuralforecast's `step_size`: 20 rows apart, the 60-row test periods of successive folds overlap by 40
    rows, and each fold still trains on every row before its validation period (an expanding window)."""
    step = ["data.split.folds=3", "data.split.fold_step=20"]
    folds = [build_bundle(make_cfg(*SERIES, *step, f"data.split.fold={k}").data) for k in range(3)]
    single = build_bundle(make_cfg(*SERIES).data)
    assert np.array_equal(folds[2].splits["test"].starts, single.splits["test"].starts)
    first_series = lambda rows: rows[rows < 400]  # noqa: E731  (the two series' rows are 0..399 and 400..799)
    tests = [first_series(target_rows(fold, "test")) for fold in folds]
    trains = [first_series(target_rows(fold, "train")) for fold in folds]
    for k in range(2):
        assert tests[k + 1].min() - tests[k].min() == 20 and len(tests[k]) == len(tests[2]) == 60
        assert trains[k + 1].max() - trains[k].max() == 20 and trains[k].min() == trains[k + 1].min() == 12


def test_table_folds_are_a_stratified_k_fold_with_validation_from_the_other_folds(make_cfg) -> None:
    bundles = [build_bundle(make_cfg(*TABLE, "data.split.folds=4", f"data.split.fold={k}").data) for k in range(4)]
    n_rows = 600
    tests = [set(bundle.splits["test"].rows) for bundle in bundles]
    assert set().union(*tests) == set(range(n_rows)) and sum(map(len, tests)) == n_rows  # a partition
    everyone = np.concatenate([bundle.splits["test"].targets().numpy() for bundle in bundles])
    for bundle in bundles:
        rows = {split: set(bundle.splits[split].rows) for split in ("train", "val", "test")}
        assert not (rows["train"] & rows["val"] or rows["train"] & rows["test"] or rows["val"] & rows["test"])
        assert len(rows["val"]) == round(0.15 * n_rows) and len(rows["test"]) == n_rows // 4
        labels = bundle.splits["test"].targets().numpy()
        for cls in np.unique(everyone):  # stratified: each class in each test fold at its overall share
            assert abs((labels == cls).sum() - (everyone == cls).sum() / 4) <= 1

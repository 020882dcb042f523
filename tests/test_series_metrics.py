"""MASE (Hyndman & Koehler 2006) and sMAPE (M4) against values computed by hand on tiny series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dl_core.task.series_metrics import mase_scale, per_series, smape, summary


def test_mase_scale_is_the_in_sample_seasonal_naive_mean_absolute_error():
    train = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    # lag 2: |2-1|, |5-3|, |4-2| -> 5/3; lag 1: 2, 1, 3, 1 -> 7/4
    assert mase_scale(train, 2) == pytest.approx(5 / 3)
    assert mase_scale(train, 1) == pytest.approx(7 / 4)


def test_a_training_part_without_seasonal_naive_error_has_no_scale():
    assert np.isnan(mase_scale(np.array([1.0, 2.0, 1.0, 2.0]), 2))  # repeats exactly with period 2
    assert np.isnan(mase_scale(np.array([1.0, 2.0]), 2))  # not longer than m


def test_smape_is_m4s_and_counts_a_zero_denominator_as_zero():
    actual, predicted = np.array([1.0, 2.0, 0.0, -4.0]), np.array([3.0, 2.0, 0.0, 4.0])
    # |1-3|/(1+3) = 0.5, 0, 0/0 -> 0, |-4-4|/(4+4) = 1 -> 200/4 * 1.5
    assert smape(actual, predicted) == pytest.approx(75.0)


def test_per_series_rows_and_their_means_by_hand():
    table = pd.DataFrame({"entity": ["a", "a", "b", "b"], "target": "y", "actual": [4.0, 6.0, 10.0, 10.0],
                          "predicted": [5.0, 6.0, 12.0, 8.0]})
    train = {"a": np.array([[1.0], [2.0], [4.0]]), "b": np.array([[10.0], [14.0], [12.0]])}  # lag 1: 1.5 and 3
    series = per_series(table, train, ["y"], 1)
    assert series["entity"].tolist() == ["a", "b"] and series["n"].tolist() == [2, 2]
    np.testing.assert_allclose(series["mse"], [0.5, 4.0])
    np.testing.assert_allclose(series["mae"], [0.5, 2.0])
    np.testing.assert_allclose(series["mase"], [0.5 / 1.5, 2.0 / 3.0])
    np.testing.assert_allclose(series["smape"], [100 * (1 / 9), 100 * (2 / 22 + 2 / 18)])
    metrics = summary(series, "test", 1)
    assert metrics["test_mase"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert metrics["test_mase_max"] == pytest.approx(2 / 3) and metrics["test_n_series"] == 2
    assert metrics["test_smape"] == pytest.approx(series["smape"].mean())


def test_a_series_without_mase_is_left_out_of_the_mean_and_logged(caplog):
    table = pd.DataFrame({"entity": ["a", "b"], "target": "y", "actual": [2.0, 2.0], "predicted": [1.0, 1.0]})
    train = {"a": np.array([[1.0], [3.0]]), "b": np.array([[5.0], [5.0]])}
    series = per_series(table, train, ["y"], 1)
    assert np.isnan(series["mase"].iloc[1])
    assert summary(series, "test", 1)["test_mase"] == pytest.approx(0.5)
    assert "left out of test_mase: b" in caplog.text

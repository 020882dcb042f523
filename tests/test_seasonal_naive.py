"""The seasonal naive baseline: the last cycle repeated, exact on a periodic series (MASE 0), refused by name
where the window holds less than a cycle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dl_core.errors import ConfigError
from dl_core.models.seasonal_naive import SeasonalNaiveForecaster
from dl_core.runs.config import validate
from dl_core.runs.pipeline import train

M, L, H = 6, 8, 9


def test_each_step_repeats_its_season_of_the_last_cycle():
    model = SeasonalNaiveForecaster(horizon=H, sequence_length=L, seasonality=M, target_index=[0])
    x = torch.arange(L, dtype=torch.float32).reshape(1, L, 1)  # input row i holds i; the last is t = L - 1
    steps = np.arange(1, H + 1)
    expected = (L - 1) + steps - M * np.ceil(steps / M)  # y[t+h-m*ceil(h/m)]
    np.testing.assert_array_equal(model(x)[0, :, 0].numpy(), expected)


def periodic_panel(path) -> None:
    """Two hourly series, each random in its first cycle of M steps and periodic (period M) after it."""
    rng = np.random.default_rng(0)
    frames = []
    for series, level in (("a", 10.0), ("b", 500.0)):
        cycle = level + rng.normal(0, 3, M)
        values = np.concatenate([level + rng.normal(0, 3, M), np.tile(cycle, 39)])
        frames.append(pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=len(values), freq="h"),
                                    "id": series, "y": values}))
    pd.concat(frames).to_csv(path, index=False)


def test_exact_on_a_periodic_series_so_its_mase_is_zero(make_cfg, tmp_path):
    periodic_panel(tmp_path / "panel.csv")
    train(make_cfg("data=csv_timeseries", f"data.path={tmp_path / 'panel.csv'}", "data.target_column=y",
                   "data.timestamp_column=timestamp", "data.entity_columns=[id]", f"data.seasonality={M}",
                   f"data.sequence_length={L}", f"data.horizon={H}", "model=seasonal_naive", "hardware=cpu1"))
    run_dir = tmp_path / "run"
    table = pd.read_csv(run_dir / "predictions_test.csv")
    # float32 scaling and back: equal to rounding of values up to 500
    np.testing.assert_allclose(table["predicted"], table["actual"], rtol=0, atol=1e-3)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_seasonality"] == M and metrics["test_mase"] == pytest.approx(0, abs=1e-4)
    series = pd.read_csv(run_dir / "series_metrics_test.csv")
    assert series["entity"].tolist() == ["a", "b"] and (series["mase"] < 1e-4).all()


def test_a_window_shorter_than_a_cycle_is_refused_by_name(make_cfg):
    with pytest.raises(ConfigError, match=r"model=seasonal_naive repeats the last cycle of data.seasonality=24 "
                                          r"steps, but data.sequence_length=12 holds less"):
        train(make_cfg("model=seasonal_naive", "data.generator.length=400", "data.sequence_length=12",
                       "hardware=cpu1"))


def test_a_seasonality_below_one_is_refused_by_name(make_cfg):
    with pytest.raises(ConfigError, match=r"^data.seasonality: must be >= 1"):
        validate(make_cfg("model=seasonal_naive", "data.seasonality=0"))

"""A forecast's metrics per series: one row per series of the panel in series_metrics_test.csv, MASE scaled by
each series' own training part, and their means in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dl_core.data.synthetic import generate_series
from dl_core.runs.pipeline import train
from helpers import TINY

SPLIT = ["data.split.train_rows=280", "data.split.val_rows=60", "data.split.test_rows=60"]


def test_one_row_per_series_with_mase_scaled_by_its_own_training_part(make_cfg, tmp_path):
    train(make_cfg(*TINY, "data.generator.n_series=3", *SPLIT))
    run_dir = tmp_path / "run"
    series = pd.read_csv(run_dir / "series_metrics_test.csv")
    assert series.columns.tolist() == ["entity", "target", "n", "mse", "mae", "mase", "smape"]
    assert series["entity"].tolist() == ["s0", "s1", "s2"] and (series["n"] == 60).all()

    frame = generate_series(3, 400, 2, 0.3, 0)  # the data=synthetic panel of TINY
    table = pd.read_csv(run_dir / "predictions_test.csv")
    for row in series.itertuples():
        mine = table[table["entity"] == row.entity]
        mae = (mine["predicted"] - mine["actual"]).abs().mean()
        y = frame.loc[frame["series_id"] == row.entity, "target"].to_numpy()[:280]
        scale = np.abs(y[24:] - y[:-24]).mean()  # hourly: m = 24, on the training rows only
        assert row.mae == pytest.approx(mae, rel=1e-6) and row.mase == pytest.approx(mae / scale, rel=1e-5)

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_n_series"] == 3 and metrics["test_seasonality"] == 24
    assert metrics["test_mase"] == pytest.approx(series["mase"].mean(), rel=1e-9)
    assert metrics["test_smape"] == pytest.approx(series["smape"].mean(), rel=1e-9)
    assert metrics["test_mae"] == pytest.approx(series["mae"].mean(), rel=1e-5)  # equal n: the pooled MAE

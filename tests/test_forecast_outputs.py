"""The forecast task with quantile or distribution outputs: metrics in both units, one predictions column per
quantile, the plot's bands, and whole runs of DLinear and the LSTM through the shared head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dl_core.models.outputs import NormalOutput, QuantileOutput
from dl_core.runs.pipeline import train
from dl_core.serving.load import TARGETS
from dl_core.task import Forecast
from dl_core.tracking.plots import forecast_figure
from helpers import TINY


def fitted_task(kind) -> Forecast:
    task = Forecast(["load"]).fit(pd.DataFrame({"load": [10.0, 14.0, 12.0, 16.0]}))  # mean 13, std sqrt(5)
    return task.with_outputs(kind)


def test_quantile_outputs_are_reported_in_original_units_and_on_the_scaled_target():
    task = fitted_task(QuantileOutput((0.1, 0.5, 0.9)))
    std = task.target_scaler.scale_[0]
    outputs = np.array([[[[-1.0, 0.0, 1.0]], [[-0.5, 0.2, 0.4]]]], np.float32)  # 1 window, 2 steps, 1 target
    actual = np.array([[[0.5], [0.6]]], np.float32)
    metrics = task.metrics(outputs, actual)
    assert metrics["mse_scaled"] == pytest.approx(np.mean([0.5**2, 0.4**2]))  # of the median
    assert metrics["mse"] == pytest.approx(metrics["mse_scaled"] * std**2)
    assert metrics["coverage_80"] == pytest.approx(0.5)  # the second step lies above its 0.9 quantile
    assert metrics["width_80"] == pytest.approx(metrics["width_80_scaled"] * std) and \
        metrics["width_80_scaled"] == pytest.approx(np.mean([2.0, 0.9]))
    assert metrics["crps"] == pytest.approx(2 * metrics["pinball"]) and metrics["pinball"] == \
        pytest.approx(metrics["pinball_scaled"] * std)

    columns = task.prediction_columns(outputs)
    assert list(columns) == ["predicted", "q0.1", "q0.5", "q0.9"]
    np.testing.assert_allclose(columns["q0.1"].ravel(), 13 + std * np.array([-1.0, -0.5]), rtol=1e-6)
    np.testing.assert_array_equal(columns["predicted"], columns["q0.5"])


def test_distribution_outputs_report_their_derived_quantiles():
    task = fitted_task(NormalOutput((0.1, 0.5, 0.9)))
    outputs = np.array([[[[0.0, 1.0]]]], np.float32)  # N(0, 1) on the scaled target
    columns = task.prediction_columns(outputs)
    std = task.target_scaler.scale_[0]
    np.testing.assert_allclose([columns[c].item() for c in ("q0.1", "q0.5", "q0.9")],
                               13 + std * np.array([-1.2815516, 0.0, 1.2815516]), rtol=1e-6)
    assert TARGETS[type(task)](task) == {"quantiles": [0.1, 0.5, 0.9]}


def test_the_forecast_plot_draws_each_central_interval_as_a_band():
    table = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=4, freq="h"), "entity": "a", "step": 1,
                          "target": "y", "actual": [1.0, 2.0, 3.0, 4.0], "predicted": [1.0, 2.0, 3.0, 4.0],
                          "q0.05": 0.0, "q0.25": 0.5, "q0.5": 1.0, "q0.75": 1.5, "q0.95": 2.0})
    ax = forecast_figure(table, (0.05, 0.25, 0.5, 0.75, 0.95)).axes[0]
    assert len(ax.collections) == 2
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[:2] == ["90% interval", "50% interval"]
    point = table.drop(columns=[c for c in table if c.startswith("q")])
    assert len(forecast_figure(point, ()).axes[0].collections) == 0


@pytest.mark.parametrize("model", [
    ["model=dlinear", "model.distribution=student_t", "model.kernel_size=5"],
    [*[o for o in TINY if o.startswith("model.")], "model.quantiles=[0.05,0.25,0.5,0.75,0.95]",
     "model.instance_norm=true"],
])
def test_a_probabilistic_run_writes_its_quantiles_and_their_metrics(make_cfg, model):
    data = [o for o in TINY if not o.startswith("model.")]
    cfg = make_cfg(*data, "data.horizon=2", "trainer.max_epochs=2", *model)
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    table = pd.read_csv(run_dir / "predictions_test.csv")
    levels = [c for c in table.columns if c.startswith("q")]
    expected = ["q0.1", "q0.5", "q0.9"] if "student_t" in model[1] else ["q0.05", "q0.25", "q0.5", "q0.75", "q0.95"]
    assert levels == expected
    for split in ("val", "test"):
        for key in ("mse", "mae", "pinball", "crps", "coverage_80" if len(levels) == 3 else "coverage_90",
                    "width_80_scaled" if len(levels) == 3 else "width_50_scaled"):
            assert np.isfinite(metrics[f"{split}_{key}"])
    assert (table["predicted"] == table["q0.5"]).all()
    assert metrics["test_mae"] == pytest.approx((table["actual"] - table["predicted"]).abs().mean(), rel=1e-6)


def test_a_point_run_reports_no_quantile_metrics(make_cfg):
    cfg = make_cfg(*TINY, "trainer.max_epochs=1")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "test_mse" in metrics and not any("pinball" in key or "coverage" in key for key in metrics)
    assert list(pd.read_csv(run_dir / "predictions_test.csv").columns)[-1] == "predicted"

"""train.py end to end: the documented commands work and every artifact is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from helpers import DATA, TINY, TINY_TABULAR, run_entry

METRIC_KEYS = {"best_epoch", "epochs", "n_train_samples", "train_time_s"} | {
    f"{split}_{metric}{scale}" for split in ("val", "test") for metric in ("mse", "mae", "rmse")
    for scale in ("", "_scaled")}


@pytest.mark.slow
def test_csv_timeseries_on_etth1_writes_all_artifacts(tmp_path):
    run = tmp_path / "etth1"
    proc = run_entry("train.py", "data=csv_timeseries", f"data.path={DATA / 'ETTh1.csv'}",
                     "data.timestamp_column=date", "data.target_column=OT", "model.hidden_dim=8", "model.num_layers=1",
                     "trainer.max_epochs=1", "trainer.batch_size=256", "hardware=cpu1", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["n_train_samples"] == round(17420 * 0.7) - 30  # 70% of rows, minus the first window
    predictions = pd.read_csv(run / "predictions_test.csv")
    assert list(predictions.columns) == ["timestamp", "entity", "step", "target", "actual", "predicted"]
    assert len(predictions) == round(17420 * 0.15)  # one 1-step window per test row
    assert predictions["timestamp"].min() > "2018-01"  # the test split is the last 15% of the time line
    for name in ("metrics.csv", "learning_curve.png", "forecast.png", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", ".hydra/config.yaml"):
        assert (run / name).stat().st_size > 0, name


def test_lstm_with_a_longer_window_as_in_the_readme(make_cfg, tmp_path):
    cfg = make_cfg("model=lstm", "data.sequence_length=60", "data.generator.length=300", "trainer.max_epochs=1",
                   "model.hidden_dim=8", "hardware=cpu1")
    assert cfg.data.sequence_length == 60
    val_loss = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_loss"] == pytest.approx(val_loss)
    assert metrics["n_train_samples"] == 2 * (300 - 45 - 45 - 60)


@pytest.mark.parametrize(("overrides", "metric", "listed"), [
    (TINY, "val_nope", "val_rmse"),
    (TINY, "val_accuracy", "test_mae_scaled"),
    # A regression preset's objective on a classification table.
    ([*TINY_TABULAR, "data.task=classification"], "val_rmse", "val_accuracy"),
])
def test_an_objective_the_run_does_not_report_is_refused_before_training(make_cfg, tmp_path, overrides, metric,
                                                                         listed):
    """It was refused only once the whole run had trained."""
    with pytest.raises(ConfigError, match=rf"^objective\.metric: '{metric}' is not a run metric; pick one of .*"
                                          rf"\b{listed}\b"):
        train(make_cfg(*overrides, f"objective.metric={metric}"))
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.parametrize("overrides", [
    pytest.param(TINY, id="forecast"),
    pytest.param([*TINY, "model.quantiles=[0.1,0.5,0.9]"], id="forecast-quantiles"),
    pytest.param([*TINY, "model.distribution=normal"], id="forecast-distribution"),
    pytest.param(TINY_TABULAR, id="regression"),
    pytest.param([*TINY_TABULAR, "data.task=classification", "data.generator.n_classes=2"], id="binary"),
    pytest.param([*TINY_TABULAR, "data.task=classification"], id="multiclass"),
])
def test_the_objectives_accepted_before_training_are_the_numbers_in_metrics_json(make_cfg, tmp_path, overrides):
    """The early check lists every name objective.metric may take: each is a number of the run's metrics.json, and
    each number there is one of them."""
    with pytest.raises(ConfigError) as refused:
        train(make_cfg(*overrides, "trainer.max_epochs=2", "objective.metric=nope", run="refused"))
    accepted = set(str(refused.value).split("pick one of ")[1].split(", "))
    train(make_cfg(*overrides, "trainer.max_epochs=2"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    numbers = {name for name, value in metrics.items() if type(value) in (int, float)}  # bool is no number here
    assert numbers == accepted


def test_same_seed_gives_the_same_metrics(make_cfg, tmp_path):
    first = train(make_cfg(*TINY, run="a"))
    second = train(make_cfg(*TINY, run="b"))
    assert first == second
    a = pd.read_csv(tmp_path / "a" / "predictions_test.csv")
    b = pd.read_csv(tmp_path / "b" / "predictions_test.csv")
    pd.testing.assert_frame_equal(a, b)

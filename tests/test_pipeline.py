"""train.py end to end: the documented commands work and every artifact is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dl_core.errors import ConfigError
from dl_core.pipeline import train
from helpers import DATA, TINY, run_entry

METRIC_KEYS = {"best_epoch", "epochs", "n_train_samples", "train_time_s"} | {
    f"{split}_{metric}{scale}" for split in ("val", "test") for metric in ("mse", "mae", "rmse")
    for scale in ("", "_scaled")}


@pytest.mark.slow
def test_csv_timeseries_on_etth1_writes_all_artifacts(tmp_path):
    run = tmp_path / "etth1"
    proc = run_entry("train.py", "data=csv_timeseries", f"data.path={DATA / 'ETTh1.csv'}",
                     "data.timestamp_column=date", "data.target_column=OT", "model.hidden_dim=8", "model.num_layers=1",
                     "trainer.max_epochs=1", "trainer.batch_size=256", "hardware.threads=1", f"hydra.run.dir={run}")
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
                   "model.hidden_dim=8", "hardware.threads=1")
    assert cfg.data.sequence_length == 60
    val_loss = train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val_loss"] == pytest.approx(val_loss)
    assert metrics["n_train_samples"] == 2 * (300 - 45 - 45 - 60)


def test_objective_must_be_a_run_metric(make_cfg):
    with pytest.raises(ConfigError, match=r"objective\.metric: 'val_accuracy' is not a run metric"):
        train(make_cfg(*TINY, "trainer.max_epochs=1", "objective.metric=val_accuracy"))


def test_same_seed_gives_the_same_metrics(make_cfg, tmp_path):
    first = train(make_cfg(*TINY, run="a"))
    second = train(make_cfg(*TINY, run="b"))
    assert first == second
    a = pd.read_csv(tmp_path / "a" / "predictions_test.csv")
    b = pd.read_csv(tmp_path / "b" / "predictions_test.csv")
    pd.testing.assert_frame_equal(a, b)

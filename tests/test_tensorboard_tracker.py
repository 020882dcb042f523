"""TensorBoard tracking, read back with TensorBoard's own reader: per-epoch curves, final metrics, plots,
config, HParams; boosting rounds; a resumed run without duplicated epochs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.runs.pipeline import train
from dl_core.tracking.tensorboard_tracker import EVENTS_DIR
from helpers import TINY

# Ten times the tiny LSTM's rate, without RevIN (the LSTM's default, which steadies it): losses jump, and the best
# epoch is not the last.
NOISY = ("trainer.lr=1", "model.instance_norm=false")


def read_events(run_dir: Path):
    """TensorBoard's EventAccumulator over the run's event files, every event kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / EVENTS_DIR), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    return events.Reload()


def series(events, tag: str) -> tuple[list[int], list[float]]:
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], [s.value for s in scalars]


def test_a_run_holds_its_curves_final_metrics_plots_and_config(make_cfg):
    """lr=1 makes the best epoch not the last: `best_val_loss` is the best epoch's, beside the whole curve."""
    cfg = make_cfg(*TINY, "trainer.max_epochs=4", *NOISY, "logger=tensorboard", "tags=[tiny]")
    objective = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["best_epoch"] < metrics["epochs"] == 4

    events = read_events(run_dir)
    for curve in ("train_loss", "val_loss", "lr"):
        steps, values = series(events, curve)
        assert steps == [1, 2, 3, 4]
        np.testing.assert_allclose(values, epochs[curve], rtol=1e-6)  # TensorBoard stores float32
    assert series(events, "best_val_loss")[1] == [pytest.approx(objective, rel=1e-6)]
    for name in ("test_mse", "test_mae_scaled", "val_rmse", "best_epoch"):
        assert series(events, name) == ([4], [pytest.approx(metrics[name], rel=1e-6)]), name

    images = {tag: events.Images(tag) for tag in events.Tags()["images"]}
    assert set(images) == {"learning_curve", "forecast", "forecast_series"}
    assert all(len(image) == 1 and image[0].width > 100 and image[0].step == 4 for image in images.values())

    texts = {tag: events.Tensors(tag)[0].tensor_proto.string_val[0].decode() for tag in events.Tags()["tensors"]
             if tag.endswith("/text_summary")}
    assert "hidden_dim: 16" in texts["config/text_summary"] and "- tags: ['tiny']" in texts["run/text_summary"]
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"model.hidden_dim" in hparams["_hparams_/session_start_info"]


def test_a_tree_model_logs_every_boosting_round(tmp_path):
    run_dir = tmp_path / "run"
    train(dl_core.compose("model=xgboost", "model.n_estimators=30", "model.early_stopping_rounds=5",
                          "data=synthetic_tabular", "data.generator.n_rows=300", "hardware=cpu1",
                          "logger=tensorboard", run_dir=run_dir))
    rounds = pd.read_csv(run_dir / "metrics.csv")
    steps, values = series(read_events(run_dir), "val_loss")
    assert len(rounds) > 5 and steps == list(rounds["epoch"])
    np.testing.assert_allclose(values, rounds["val_loss"], rtol=1e-6)


def test_a_resumed_run_continues_its_curves_without_repeating_epochs(make_cfg):
    """A run resumed from an epoch before the last one it logged (its best checkpoint copied over `last`, as
    after a kill with trainer.checkpoint_every > 1) trains those epochs again: the event files hold each
    epoch once, the resumed process's."""
    overrides = [*TINY, "trainer.max_epochs=4", *NOISY, "logger=tensorboard"]
    first = make_cfg(*overrides, run="r")
    train(first)
    run_dir = Path(first.paths.output_dir)
    best_epoch = json.loads((run_dir / "metrics.json").read_text())["best_epoch"]
    assert best_epoch < 4
    shutil.copyfile(run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt")
    train(make_cfg(*overrides, "trainer.resume=true", run="r"))

    steps, values = series(read_events(run_dir), "val_loss")
    assert steps == [1, 2, 3, 4]
    np.testing.assert_allclose(values, pd.read_csv(run_dir / "metrics.csv")["val_loss"], rtol=1e-6)
    assert series(read_events(run_dir), "best_val_loss")[0] == [4]

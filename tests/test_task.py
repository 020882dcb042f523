"""The task objects: loss, metrics, outputs -> predictions, target encoding; stored in the checkpoint; and no
other module compares task names."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from dl_core.engine.checkpoint import FORMAT_VERSION, atomic_save, load_checkpoint
from dl_core.errors import CheckpointError, ConfigError
from dl_core.models.outputs import QuantileOutput
from dl_core.runs.pipeline import train
from dl_core.task import Classification, Forecast, Regression
from helpers import ROOT, TINY_TABULAR


def classifier(labels: list[str]) -> Classification:
    return Classification().fit(pd.Series(labels))


def test_classification_knows_its_outputs_and_loss_from_its_classes():
    binary, three = classifier(["no", "yes", "no"]), classifier(["b", "a", "c", "a"])
    assert (binary.d_out, three.d_out) == (1, 3) and three.classes == ["a", "b", "c"]
    torch.manual_seed(0)
    logit, logits = torch.randn(5, 1), torch.randn(5, 3)
    labels = torch.tensor([0, 1, 1, 0, 1])
    assert torch.equal(binary.loss()(logit, labels), F.binary_cross_entropy_with_logits(logit[:, 0], labels.float()))
    assert torch.equal(three.loss()(logits, labels), F.cross_entropy(logits, labels))
    np.testing.assert_array_equal(three.encode(pd.Series(["c", "a", "b"])), [2, 0, 1])


def test_classification_outputs_become_labels_and_probabilities_that_sum_to_one():
    task = classifier(["a", "b", "c"])
    table = task.predictions(np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]], np.float32))
    assert list(table.columns) == ["predicted", "prob_a", "prob_b", "prob_c"]
    assert list(table["predicted"]) == ["b", "a"]
    np.testing.assert_allclose(table.filter(like="prob_").sum(axis=1), 1.0, rtol=1e-6)
    binary = classifier(["no", "yes"]).predictions(np.array([[0.0], [2.0]], np.float32))
    assert list(binary["predicted"]) == ["no", "yes"] and binary["prob_yes"].iloc[0] == pytest.approx(0.5)


def test_regression_reports_in_target_units_what_it_trains_on_standardized():
    target = pd.Series([100_000.0, 300_000.0, 200_000.0])
    task = Regression(target_unit=100_000.0).fit(target)
    encoded = task.encode(target)
    assert encoded.dtype == np.float32 and encoded.mean() == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(task.decode(encoded).ravel(), [1.0, 3.0, 2.0], rtol=1e-6)
    metrics = task.metrics(encoded + 1.0, encoded)  # one standard deviation too high everywhere
    assert metrics["mae"] == pytest.approx(np.std([1.0, 3.0, 2.0]), rel=1e-6) and task.loss() is F.mse_loss


def test_forecast_metrics_are_in_original_units_and_on_the_scaled_axis():
    rows = pd.DataFrame({"load": [10.0, 20.0, 30.0], "temp": [0.0, 1.0, 2.0]})
    task = Forecast(["load", "temp"]).fit(rows)
    actual = task.encode(rows)[None]  # one window of three steps
    metrics = task.metrics(actual + 0.5, actual)
    assert metrics["mae_scaled"] == pytest.approx(0.5)
    assert metrics["mae"] == pytest.approx(0.5 * np.mean(task.target_scaler.scale_))


def test_a_model_output_the_task_has_no_loss_for_is_refused_by_name():
    kind = QuantileOutput((0.1, 0.5, 0.9))
    with pytest.raises(ConfigError, match=r"model\.quantiles: the classification task has no loss for 'quantiles' "
                                          r"outputs \(quantiles are for a regression or a forecast\)"):
        classifier(["a", "b"]).with_outputs(kind)
    regression = Regression().with_outputs(kind)
    output, target = torch.randn(8, 1, 3), torch.randn(8, 1)
    assert torch.equal(regression.loss()(output, target), kind.loss(output, target))  # the pinball loss


def test_classification_with_quantiles_is_refused_before_training(make_cfg):
    cfg = make_cfg(*TINY_TABULAR, "data.task=classification", "model.quantiles=[0.1,0.5,0.9]")
    with pytest.raises(ConfigError, match=r"model\.quantiles: the classification task has no loss"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_a_regression_reads_quantiles_as_their_median_and_a_column_per_level():
    """Quantile outputs (rows, 1, levels) on the standardized scale: `predicted` and the point metrics are the
    median's, each level has its column, the interval metrics are in target units; calibrated, the columns move
    by the offset in target units (times the scale) and the model's own stay beside them as `raw_q<level>`."""
    target = pd.Series([100.0, 300.0, 200.0, 400.0])
    task = Regression(target_unit=100.0).fit(target).with_outputs(QuantileOutput((0.1, 0.5, 0.9)))
    scale, actual = task.target_scaler.scale_[0], task.encode(target)
    outputs = np.stack([actual - 0.5, actual + 0.1, actual + 0.5], axis=-1).astype(np.float32)
    outputs[0, 0] = [0.4, 0.0, -0.4]  # crossing quantiles are read in order (monotone rearrangement)
    table = task.predictions(outputs)
    assert list(table.columns) == ["predicted", "q0.1", "q0.5", "q0.9"]
    assert table.loc[0, "q0.1"] == pytest.approx(task.decode(np.float32(-0.4)))
    np.testing.assert_array_equal(table["predicted"], table["q0.5"])
    metrics = task.metrics(outputs, actual)
    assert sorted(metrics) == sorted(task.metric_names(actual))
    point = Regression(target_unit=100.0).fit(target).metrics(np.sort(outputs, axis=-1)[..., 1], actual)
    assert {name: metrics[name] for name in point} == pytest.approx(point)  # the median's RMSE, MAE, MSE, R²
    # Rows 1-3 lie inside their [-0.5, +0.5] interval; row 0's target (-1.34 standardized) is below its [-0.4, 0.4].
    assert metrics["coverage_80"] == 0.75 and metrics["coverage_80"] == metrics["coverage_80_raw"]
    assert metrics["width_80"] == pytest.approx(np.mean(np.ptp(np.sort(outputs, axis=-1)[..., [0, 2]], -1)) * scale)

    calibrated = task.calibrated(outputs, actual)
    offset = calibrated.calibration.offsets.item()
    assert calibrated.calibration.offsets.shape == (1, 1) and calibrated.calibration.n == 4
    moved = calibrated.predictions(outputs)
    assert list(moved.columns) == ["predicted", "q0.1", "q0.5", "q0.9", "raw_q0.1", "raw_q0.9"]
    pd.testing.assert_frame_equal(moved[["predicted", "raw_q0.1", "raw_q0.9"]].set_axis(["predicted", "q0.1", "q0.9"],
                                                                                         axis=1),
                                  table[["predicted", "q0.1", "q0.9"]])
    # CQR may narrow an interval that covers too much, never past the median (float64 arithmetic: 1e-12).
    np.testing.assert_allclose(moved["q0.9"], np.maximum(table["q0.9"] + offset * scale, table["predicted"]),
                               rtol=1e-12)
    assert calibrated.metrics(outputs, actual)["coverage_80_raw"] == metrics["coverage_80"]


def test_the_checkpoint_stores_the_fitted_task_and_refuses_an_older_format(make_cfg, tmp_path):
    cfg = make_cfg(*TINY_TABULAR, "data.task=classification", "trainer.max_epochs=1")
    train(cfg)
    best = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    state = load_checkpoint(best)
    task = state["task"]
    assert isinstance(task, Classification) and task.classes == ["class_0", "class_1", "class_2"]
    outputs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(task)).predictions(outputs), task.predictions(outputs))
    old = tmp_path / "old.ckpt"
    atomic_save({**state, "format_version": FORMAT_VERSION - 1, "task": "classification"}, old)
    with pytest.raises(CheckpointError, match=rf"old.ckpt: checkpoint format {FORMAT_VERSION - 1} is not supported "
                                              rf"\(expected {FORMAT_VERSION}\); it was written by another version"):
        load_checkpoint(old)


def test_no_module_but_the_tasks_names_a_task():
    """The task names appear as the task classes' names and as the choices of `data.task`, nowhere else."""
    found = {}
    for path in sorted((ROOT / "dl_core").rglob("*.py")):
        lines = [line.strip() for line in path.read_text().splitlines()
                 if re.search(r'"(forecast|regression|classification)"', line)]
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {
        "dl_core/data/tabular.py": ['task: Literal["regression", "classification"] | None = None'],
        "dl_core/task/forecast.py": ['name: ClassVar[str] = "forecast"'],
        "dl_core/task/table.py": ['name: ClassVar[str] = "regression"', 'name: ClassVar[str] = "classification"'],
    }

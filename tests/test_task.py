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
    with pytest.raises(ConfigError, match="its outputs are 'quantiles', for which the regression task has no loss"):
        Regression().with_outputs(QuantileOutput((0.1, 0.5, 0.9)))


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

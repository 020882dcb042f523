"""The ResNet over table rows: regression, binary and multiclass classification."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.runs.pipeline import train

TINY_RESNET = ["model=resnet", "model.n_blocks=1", "model.d_block=32", "data=synthetic_tabular",
               "data.generator.n_rows=600", "trainer=tiny", "trainer.max_epochs=4",
               "trainer.batch_size=64", "trainer.lr=3e-3", "hardware=cpu1"]


@pytest.mark.parametrize("n_classes", [None, 2, 3])
def test_regression_and_classification(n_classes: int | None, tmp_path: Path) -> None:
    task = [] if n_classes is None else ["data.task=classification", f"data.generator.n_classes={n_classes}"]
    train(dl_core.compose(*TINY_RESNET, *task, run_dir=tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    if n_classes is None:
        assert metrics["test_r2"] > 0.3
        return
    table = pd.read_csv(tmp_path / "run" / "predictions_test.csv")
    np.testing.assert_allclose(table[[f"prob_class_{k}" for k in range(n_classes)]].sum(axis=1), 1.0, rtol=1e-5)
    assert metrics["test_accuracy"] > 1.2 / n_classes

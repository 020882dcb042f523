"""The notebook API composes like the CLI and runs the same training."""

from __future__ import annotations

import numpy as np
import pandas as pd

import dl_core
import dl_core.data
from helpers import TINY


def test_compose_and_run_match_the_cli_pipeline(tmp_path):
    cfg = dl_core.compose(*TINY, "trainer.max_epochs=2", run_dir=tmp_path / "api")
    assert cfg.data.name == "synthetic" and cfg.model.hidden_dim == 16
    result = dl_core.run(cfg)
    assert result.run_dir == tmp_path / "api"
    assert result.metrics["epochs"] == 2 and result.objective == result.metrics["val_loss"]
    assert (result.run_dir / "checkpoints" / "best.ckpt").is_file()


def test_load_run_predicts_what_the_run_predicted(tmp_path):
    result = dl_core.run(dl_core.compose(*TINY, "trainer.max_epochs=1", run_dir=tmp_path / "api"))
    cfg = dl_core.compose(*TINY)
    frame = dl_core.data.load_frame(cfg.data)
    predicted = dl_core.load_run(result.run_dir).predict(frame)
    test = pd.read_csv(result.run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    merged = test.merge(predicted, on=["timestamp", "entity", "step", "target"], suffixes=("", "_reloaded"))
    assert len(merged) == len(test)
    np.testing.assert_allclose(merged["predicted_reloaded"], merged["predicted"], rtol=1e-6)

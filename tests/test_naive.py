"""The naive baseline: no training, the same artifacts, metrics equal to a direct numpy computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dl_core.runs.pipeline import train
from helpers import DATA

L, H, TRAIN, VAL, TEST = 48, 24, 8640, 2880, 2880


def test_naive_metrics_match_numpy_on_etth1(make_cfg, tmp_path):
    cfg = make_cfg("experiment=ett_naive", f"data.path={DATA / 'ETTh1.csv'}", "data.features=S",
                   f"data.sequence_length={L}", f"data.horizon={H}", "hardware=cpu1")
    train(cfg)
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())

    ot = pd.read_csv(DATA / "ETTh1.csv")["OT"].to_numpy()
    std = ot[:TRAIN].std()
    first_target = np.arange(TRAIN + VAL, TRAIN + VAL + TEST - H + 1)
    actual = ot[first_target[:, None] + np.arange(H)]
    predicted = np.repeat(ot[first_target - 1][:, None], H, axis=1)
    assert np.isclose(metrics["test_mse"], np.mean((predicted - actual) ** 2), rtol=1e-5)
    assert np.isclose(metrics["test_mae"], np.mean(np.abs(predicted - actual)), rtol=1e-5)
    assert np.isclose(metrics["test_mse_scaled"], np.mean(((predicted - actual) / std) ** 2), rtol=1e-5)
    assert np.isclose(metrics["test_mae_scaled"], np.mean(np.abs(predicted - actual) / std), rtol=1e-5)
    assert metrics["epochs"] == 0 and metrics["n_parameters"] == 0
    assert np.isclose(metrics["val_loss"], metrics["val_mse_scaled"], rtol=1e-5)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "predictions_test.csv").is_file()

"""The built-in series with effects only covariates foretell: one seed of experiments/covariates_synthetic.py,
where the quantile LSTM's 80 % interval is calibrated and the known-future and static covariates lower its error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dl_core.runs.pipeline import train

STUDY = ["experiment=covariates_lstm", "seed=0", "hardware=cpu1"]
WITHOUT = ["data.future_covariates=[]", "data.calendar_features=[]", "data.static_columns=[]"]


@pytest.mark.slow
def test_the_quantile_lstm_covers_80_percent_and_beats_itself_without_covariates(make_cfg):
    with_covariates, without = make_cfg(*STUDY, run="with"), make_cfg(*STUDY, *WITHOUT, run="without")
    train(with_covariates)
    train(without)
    ours, base = (json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
                  for cfg in (with_covariates, without))
    assert 0.75 <= ours["test_coverage_80"] <= 0.85, ours["test_coverage_80"]
    assert ours["test_mse"] < base["test_mse"], (ours["test_mse"], base["test_mse"])

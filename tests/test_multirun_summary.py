"""The multirun summary (hydra.callbacks.summary, conf/hydra/default.yaml) of real `train.py -m` subprocesses,
checked number by number against the runs' own metrics.json files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dl_core.tracking.multirun_summary import Job, markdown, spread, summarize
from helpers import ROOT, TINY, entry_env


def multirun(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *TINY,
                           *overrides], cwd=sweep_dir.parent, env=entry_env(), capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def run_metrics(sweep_dir: Path) -> list[dict]:
    """Jobs 0, 1, 2 (their folders: the job number, then the model and data, as `0_lstm_synthetic`)."""
    return [json.loads(next(sweep_dir.glob(f"{job}_*/metrics.json")).read_text()) for job in range(3)]


def assert_row_matches(row: pd.Series, runs: list[dict]) -> None:
    """mean, sample std and n of every numeric metric, from the runs themselves."""
    numeric = [key for key, value in runs[0].items() if isinstance(value, (int, float))]
    assert "test_mse" in numeric and "val_loss" in numeric and "epochs" in numeric
    for key in numeric:
        values = pd.Series([float(run[key]) for run in runs])
        assert row[f"{key}_mean"] == pytest.approx(values.mean()), key
        assert row[f"{key}_std"] == pytest.approx(values.std(), nan_ok=True), key
        assert row[f"{key}_n"] == 3, key


@pytest.mark.slow
def test_seeds_are_summarised_into_one_row_with_mean_std_and_n(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "seeds"
    done = multirun(sweep_dir, "seed=0,1,2")
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["runs"] == 3 and row["seed"] == "0 1 2" and row["model.hidden_dim"] == 16
    runs = run_metrics(sweep_dir)
    assert len({run["test_mse"] for run in runs}) == 3  # three seeds, three results
    assert_row_matches(row, runs)
    text = (sweep_dir / "summary.md").read_text()
    assert f"{spread(run['test_mse'] for run in runs):.4g}" in text
    assert text in done.stdout + done.stderr  # and printed


@pytest.mark.slow
def test_a_rolling_origin_backtest_is_summarised_over_its_folds(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "folds"
    multirun(sweep_dir, "data.split.folds=3", "data.split.fold=0,1,2")
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert len(table) == 1 and table.iloc[0]["data.split.fold"] == "0 1 2"
    runs = run_metrics(sweep_dir)
    # Each fold trains on everything before its validation period: one test period more than the fold before.
    train = [run["n_train_samples"] for run in runs]
    assert train[0] < train[1] < train[2] and train[2] - train[1] == train[1] - train[0]
    assert_row_matches(table.iloc[0], runs)


def test_configurations_are_rows_and_the_table_shows_what_tells_them_apart() -> None:
    jobs = [Job({"model.hidden_dim": h, "seed": s, "trainer.lr": "0.01"}, {"val_loss": v, "test_mse": v * 2})
            for h, s, v in [("16", "0", 1.0), ("16", "1", 3.0), ("32", "0", 0.5)]]
    table = summarize(jobs)
    assert list(table["model.hidden_dim"]) == ["16", "32"] and list(table["runs"]) == [2, 1]
    assert list(table["val_loss_mean"]) == [2.0, 0.5] and table["val_loss_std"][0] == pytest.approx(math.sqrt(2))
    assert math.isnan(table["val_loss_std"][1])
    lines = markdown(table, "val_loss").splitlines()
    assert lines[0] == "| model.hidden_dim | runs | seed | val_loss | test_mse |"  # trainer.lr is the same in both
    assert lines[2] == "| 16 | 2 | 0 1 | 2 ± 1.414 | 4 ± 2.828 |" and lines[3] == "| 32 | 1 | 0 | 0.5 | 1 |"

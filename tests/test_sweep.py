"""Optuna sweeps as real subprocesses: the SQLite study persists across launches, failed trials are
recorded and the sweep goes on, and the summary (trials.csv, best_params.yaml, plots) is written."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from dl_core.tracking.sweep_summary import EXIT_TRIALS_FAILED
from helpers import TINY
from wandb_reader import offline_runs, read_run_record, read_summary

ROOT = Path(__file__).resolve().parents[1]
SWEEP_TINY = [*TINY, "trainer.max_epochs=1", "trainer.progress_bar=false"]


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """`train.py -m hparams_search=lstm_optuna` on tiny data; `overrides` replace TINY's for the same keys."""
    keys = {override.split("=")[0] for override in overrides}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROJECT_ROOT": str(ROOT), "WANDB_MODE": "offline",
           "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=lstm_optuna",
                           f"hydra.sweep.dir={sweep_dir}",
                           *(o for o in SWEEP_TINY if o.split("=")[0] not in keys), *overrides],
                          cwd=sweep_dir.parent, env=env, capture_output=True, text=True, timeout=300)


def trial_states(sweep_dir: Path) -> list[str]:
    import optuna

    study = optuna.load_study(study_name="lstm_optuna", storage=f"sqlite:///{sweep_dir}/optuna.db")
    return [trial.state.name for trial in study.trials]


def test_running_the_same_sweep_again_adds_trials_to_the_study(tmp_path):
    sweep_dir = tmp_path / "sweep"
    for launch in (1, 2):
        done = sweep(sweep_dir, "hydra.sweeper.n_trials=1")
        assert done.returncode == 0, done.stderr[-3000:]
        assert trial_states(sweep_dir) == ["COMPLETE"] * launch
    assert "Sampler: TrialSeededTPESampler" in done.stdout + done.stderr

    trials = pd.read_csv(sweep_dir / "trials.csv")
    assert list(trials["number"]) == [0, 1]
    assert trials["params_trainer.lr"].nunique() == 2  # the second launch does not replay the first's suggestion
    assert {"state", "val_loss", "duration_s", "params_trainer.lr", "params_model.dropout"} <= set(trials.columns)
    # Each trial's worker as host:pid: two launches, two processes.
    assert trials["worker"].str.fullmatch(rf"{re.escape(socket.gethostname())}:\d+").all()
    assert trials["worker"].nunique() == 2
    assert trials["val_loss"].notna().all()
    best = OmegaConf.load(sweep_dir / "best_params.yaml")
    assert best.trials == 2 and best.trials_this_launch == 1 and best.failed == 0
    assert best.best_value == pytest.approx(trials["val_loss"].min())
    assert set(best.best_params) == {"model.dropout", "trainer.lr", "model.bidirectional"}  # TINY fixes the sizes
    for plot in ("optimization_history", "slice", "param_importances"):
        assert (sweep_dir / f"{plot}.png").stat().st_size > 1000
    assert len([path for path in sweep_dir.iterdir() if (path / "metrics.json").exists()]) == 2

    # The same seed on an empty study: the same trials, in one launch as in two (each trial is seeded by
    # its number, not each launch by the trials it finds).
    again = tmp_path / "again"
    assert sweep(again, "hydra.sweeper.n_trials=2").returncode == 0
    both = pd.read_csv(again / "trials.csv").filter(like="params_")
    assert both.to_dict("records") == trials.filter(like="params_").to_dict("records")


def test_a_failing_trial_is_recorded_and_the_other_trials_complete(tmp_path):
    """lr=1e30 makes the loss non-finite (TrainingError in the job); grid sampling runs both choices, each
    with its W&B offline run. The seeded grid order puts the failing trial first: hydra-optuna-sweeper
    1.4.0rc3 crashes when the *last* grid point fails (GridSampler stops the study inside `tell`)."""
    sweep_dir = tmp_path / "sweep"
    # Grid sampling needs every searched key discrete, so the others are one-value choices.
    done = sweep(sweep_dir, "hydra/sweeper/sampler=grid", "trainer.lr=choice(1e-3,1e30)", "model.dropout=choice(0.0)",
                 "model.bidirectional=choice(false)", "model.num_layers=choice(1)", "model.hidden_dim=choice(16)",
                 "logger=wandb")
    assert done.returncode == EXIT_TRIALS_FAILED, done.stderr[-3000:]
    assert "1 of 2 trials of this sweep failed" in done.stdout + done.stderr
    assert "hydra.sweeper.sampler: GridSampler is seeded once per process" in done.stdout + done.stderr
    assert sorted(trial_states(sweep_dir)) == ["COMPLETE", "FAIL"]

    trials = pd.read_csv(sweep_dir / "trials.csv").set_index("state")
    assert trials.loc["FAIL", "params_trainer.lr"] == pytest.approx(1e30)
    assert trials.loc["COMPLETE", "params_trainer.lr"] == pytest.approx(1e-3)
    best = OmegaConf.load(sweep_dir / "best_params.yaml")
    assert best.failed == 1 and best.failed_this_launch == 1 and best.complete == 1

    runs = {read_summary(path)["state"]: path for job in sweep_dir.iterdir() if job.is_dir()
            for path in offline_runs(job)}
    assert set(runs) == {"finished", "failed"}
    assert {read_run_record(path).get("run_group") for path in runs.values()} == {"lstm_optuna"}


def test_parallel_trials_under_the_joblib_launcher_complete(tmp_path):
    """joblib sends the sweep's callbacks to its job processes: they must pickle (the heartbeat stays home)."""
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_trials=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert trial_states(sweep_dir) == ["COMPLETE", "COMPLETE"]
    assert pd.read_csv(sweep_dir / "trials.csv")["params_trainer.lr"].nunique() == 2

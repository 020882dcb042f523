"""The sweep summary (dl_core/sweep/summary.py) of a study read back from its storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
from omegaconf import OmegaConf

from dl_core.sweep.summary import write_summary


def test_a_study_without_trials_gets_an_empty_summary(tmp_path: Path) -> None:
    """A study created for workers (`optuna create-study`) whose first launch was refused has no trial: its
    summary raised KeyError('duration'), which Hydra shows as a warning only."""
    study = optuna.create_study(study_name="empty", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    counts = write_summary(study, tmp_path, "val_loss", first_trial=0)
    assert counts["trials"] == 0 and counts["trials_this_launch"] == 0
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert trials.empty and {"number", "state", "val_loss", "duration_s", "epochs", "worker"} <= set(trials.columns)
    best = OmegaConf.load(tmp_path / "best_params.yaml")
    assert best.trials == 0 and "best_trial" not in best

"""experiments/common.py aggregates seeds as a multirun's summary does, and the scripts of the research
workflow (pruned sweeps, short trials) import (real tiny runs through the dl_core API under tmp_path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import ROOT, TINY, entry_env

sys.path.insert(0, str(ROOT / "experiments"))  # experiments/ is a folder of scripts, not a package
import common


def test_a_script_folds_its_seeds_into_the_rows_a_multirun_summary_writes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(common.RUNS_ENV, str(tmp_path / "runs"))
    runs = [common.Run("study", (*TINY, "trainer.max_epochs=1", f"seed={seed}"))
            for seed in (0, 1)]
    metrics = common.launch_all(runs)
    [row] = common.summary(runs).to_dict("records")
    assert row["runs"] == 2 and row["seed"] == "0 1" and row["model.hidden_dim"] == "16"
    values = pd.Series([m["test_mae"] for m in metrics])
    assert row["test_mae_mean"] == pytest.approx(values.mean()) and row["test_mae_std"] == pytest.approx(values.std())
    assert f"{common.spread(values):.4f}" == f"{values.mean():.4f} ± {values.std():.4f}"


def test_the_research_workflow_scripts_import() -> None:
    subprocess.run([sys.executable, "-c", "import pruned_sweep, short_trials"], cwd=ROOT / "experiments", check=True,
                   env=entry_env())

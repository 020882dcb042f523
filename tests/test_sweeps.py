"""Sweeps across machines: Optuna sweeper processes sharing one study in an RDB storage (SQLite here).

What was checked with Optuna 5.0 / SQLAlchemy 2 (see the report): workers that all start on a
*fresh* database race in `RDBStorage.__init__` (`table studies already exists`, `UNIQUE constraint
failed: alembic_version.version_num`) and all but one crash. So the study is created once first
(`optuna create-study ... --skip-if-exists`, here its Python twin), then the workers start at once.
Once the schema exists, 8 processes x 20 trials on one SQLite file lost nothing and never hit
`database is locked`; `?timeout=60` in the URL (sqlite3's busy timeout, 5 s by default) still
guards slow disks. A networked file system needs PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from conftest import ROOT, TINY
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

TRIALS_EACH = 2


def sweep(tmp_path: Path, url: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROJECT_ROOT": str(ROOT)}
    command = [sys.executable, str(ROOT / "train.py"), "-m", "hydra/sweeper=optuna",
               f"hydra.sweeper.storage='{url}'", "hydra.sweeper.study_name=shared",
               f"hydra.sweeper.n_trials={TRIALS_EACH}", "model.hidden_dim=choice(8,16)", *TINY,
               "trainer.max_epochs=1", "trainer.progress_bar=false", f"hydra.sweep.dir={tmp_path / name}"]
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def test_two_sweeps_started_at_once_add_all_their_trials_to_one_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}?timeout=60"
    optuna.create_study(study_name="shared", storage=url, direction="minimize")
    workers = [sweep(tmp_path, url, name) for name in ("worker_a", "worker_b")]
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]

    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert len(trials) == 2 * TRIALS_EACH
    assert sorted(t.number for t in trials) == list(range(2 * TRIALS_EACH))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for name in ("worker_a", "worker_b"):
        assert (tmp_path / name / "optimization_results.yaml").is_file()


def test_slurm_launcher_preset_composes_with_its_common_settings() -> None:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(ROOT / "conf")):
            cfg = compose("train", overrides=["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                                              "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=720",
                                              "hydra.launcher.array_parallelism=8"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.array_parallelism) == (
        "gpu", 4, 720, 8)

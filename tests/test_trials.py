"""Pruned sweeps as real `train.py -m hparams_search=lstm_optuna` subprocesses on an SQLite study.

The grid of two learning rates makes one trial hopeless (1e-7: its validation loss stays at ~1.17) and
one good (1e-2: ~0.7 after one epoch, ~0.3 after two); a ThresholdPruner at 0.9 after a warm-up of
`WARMUP` epochs therefore prunes the first at epoch `WARMUP` of 4, whatever order the grid runs them in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from dl_core.engine.distributed import SINGLE
from dl_core.sweep.sweeper import record_pruner, trial_overrides
from dl_core.sweep.trials import PRUNED_ATTR, PRUNER_ATTR, RunPruned, trial_reporters
from helpers import ROOT, TINY, entry_env

MAX_EPOCHS = 4
WARMUP = 2
THRESHOLD = {"_target_": "optuna.pruners.ThresholdPruner", "upper": 0.9, "n_warmup_steps": WARMUP}
# Grid sampling needs every searched key discrete; the learning rate is the only one that varies.
GRID = ["hydra/sweeper/sampler=grid", "trainer.lr=choice(1e-2,1e-7)", "model.dropout=choice(0.0)",
        "model.bidirectional=choice(false)", "model.num_layers=choice(1)", "model.hidden_dim=choice(16)"]
PRUNING = [*GRID, f"hydra.sweeper.pruner={{_target_:optuna.pruners.ThresholdPruner,upper:0.9,n_warmup_steps:{WARMUP}}}"]
BAD_LR = 1e-7  # untrained: without RevIN (set below) its validation loss stays far above the pruner's threshold


def sweep_command(sweep_dir: Path, *overrides: str) -> list[str]:
    tiny = [o for o in TINY if not o.startswith("trainer.max_epochs")]
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=lstm_optuna", f"hydra.sweep.dir={sweep_dir}",
            *tiny, f"trainer.max_epochs={MAX_EPOCHS}", "model.instance_norm=false", *overrides]


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sweep_command(sweep_dir, *overrides), cwd=sweep_dir.parent, env=entry_env(),
                          capture_output=True, text=True, timeout=600, check=False)


def study(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="lstm_optuna", storage=f"sqlite:///{sweep_dir}/optuna.db")


def assert_pruned_as_designed(sweep_dir: Path) -> None:
    """The hopeless trial PRUNED after WARMUP < MAX_EPOCHS epochs, the other COMPLETE after all of them,
    read back from the SQLite study, trials.csv and the trials' own files."""
    trials = {trial.params["trainer.lr"]: trial for trial in study(sweep_dir).trials}
    pruned, complete = trials[BAD_LR], trials[1e-2]
    assert pruned.state == TrialState.PRUNED and complete.state == TrialState.COMPLETE
    assert sorted(pruned.intermediate_values) == list(range(1, WARMUP + 1))
    assert sorted(complete.intermediate_values) == list(range(1, MAX_EPOCHS + 1))
    assert pruned.user_attrs[PRUNED_ATTR] == WARMUP
    assert pruned.value == pytest.approx(pruned.intermediate_values[WARMUP])  # Optuna's value of a pruned trial
    assert study(sweep_dir).user_attrs[PRUNER_ATTR] == THRESHOLD

    table = pd.read_csv(sweep_dir / "trials.csv").set_index("state")
    assert table.loc["PRUNED", "epochs"] == WARMUP and table.loc["COMPLETE", "epochs"] == MAX_EPOCHS
    runs = {json.loads((job / "metrics.json").read_text())["pruned"]: job
            for job in sweep_dir.iterdir() if (job / "metrics.json").is_file()}
    pruned_run = runs[True]
    summary = json.loads((pruned_run / "metrics.json").read_text())
    assert summary["epochs"] == WARMUP
    assert summary["val_loss"] == pytest.approx(min(pruned.intermediate_values.values()))
    assert len(pd.read_csv(pruned_run / "metrics.csv")) == WARMUP
    assert (pruned_run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_a_pruned_trial_is_stored_pruned_with_its_epochs_and_the_best_trial_is_rerun_over_seeds(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, *PRUNING, "hydra.sweeper.best_of=2")
    assert done.returncode == 0, done.stderr[-3000:]  # a pruned trial is no failure
    assert_pruned_as_designed(sweep_dir)
    best = OmegaConf.load(sweep_dir / "best_params.yaml")
    assert (best.complete, best.pruned, best.failed, best.pruned_this_launch) == (1, 1, 0, 1)
    assert best.best_params["trainer.lr"] == pytest.approx(1e-2)
    assert (sweep_dir / "intermediate_values.png").stat().st_size > 1000

    # best_of: the best trial's parameters with seeds 0 and 1, summarised against their own metrics.json.
    folder = sweep_dir / "best_of" / f"trial_{best.best_trial}"
    seeds = [json.loads((folder / f"seed_{seed}" / "metrics.json").read_text()) for seed in (0, 1)]
    assert [OmegaConf.load(folder / f"seed_{s}" / ".hydra" / "config.yaml").seed for s in (0, 1)] == [0, 1]
    row = pd.read_csv(folder / "summary.csv").iloc[0]
    assert row["runs"] == 2 and row["seed"] == "0 1" and row["trainer.lr"] == pytest.approx(1e-2)
    values = pd.Series([m["test_mse"] for m in seeds])
    assert row["test_mse_mean"] == pytest.approx(values.mean()) and row["test_mse_std"] == pytest.approx(values.std())
    assert "best trial" in done.stdout + done.stderr and "test_mse" in (folder / "summary.md").read_text()


@pytest.mark.slow
def test_pruning_works_with_parallel_trials_under_joblib(tmp_path: Path) -> None:
    """Both trials run at once in joblib's worker processes: each reaches its trial through the storage, and
    the sweep's callbacks, sent there with the jobs, pickle (the heartbeat stays home)."""
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, *PRUNING, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_pruned_as_designed(sweep_dir)
    starts = sorted(trial.datetime_start for trial in study(sweep_dir).trials)
    ends = sorted(trial.datetime_complete for trial in study(sweep_dir).trials)
    assert starts[1] < ends[0]  # one batch of two: they overlapped


@pytest.mark.slow
def test_sweep_processes_on_one_study_prune_alike_and_a_different_pruner_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}?timeout=60"
    shared = [f"hydra.sweeper.storage='{url}'", "hydra.sweeper.n_trials=1", "hydra/sweeper/sampler=random_workers",
              "trainer.lr=choice(1e-2,1e-7)", "model.dropout=0.0", "model.bidirectional=false"]
    pruning = [*shared, PRUNING[-1]]
    optuna.create_study(study_name="lstm_optuna", storage=url)
    workers = [subprocess.Popen(sweep_command(tmp_path / f"w{i}", *pruning), cwd=tmp_path, env=entry_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    for worker in workers:
        output = worker.communicate(timeout=600)[0]
        assert worker.returncode == 0, output[-3000:]
    trials = optuna.load_study(study_name="lstm_optuna", storage=url).trials
    assert len(trials) == 2 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in trials:
        bad = trial.params["trainer.lr"] == BAD_LR
        assert (trial.state == TrialState.PRUNED) == bad
        assert len(trial.intermediate_values) == (WARMUP if bad else MAX_EPOCHS)

    refused = subprocess.run(sweep_command(tmp_path / "w2", *shared, "hydra/sweeper/pruner=median"), cwd=tmp_path,
                             env=entry_env(), capture_output=True, text=True, timeout=300, check=False)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    expected = "error: hydra.sweeper.pruner: study lstm_optuna prunes with {_target_:optuna.pruners.ThresholdPruner,"
    assert len(errors) == 1 and errors[0].startswith(expected)
    assert len(optuna.load_study(study_name="lstm_optuna", storage=url).trials) == 2  # no trial was asked


@pytest.mark.slow
def test_a_pruner_without_a_storage_is_refused_in_one_line(tmp_path: Path) -> None:
    done = sweep(tmp_path / "sweep", "hydra.sweeper.storage=null", "hydra/sweeper/pruner=median")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert errors == [("error: hydra.sweeper.pruner: jobs reach their trial through the study's storage; set "
                       "hydra.sweeper.storage (e.g. sqlite:///optuna.db) or hydra.sweeper.pruner=null")]


def test_the_epoch_hook_prunes_any_estimator_that_reports_its_rounds(tmp_path: Path, make_cfg) -> None:
    """No nn.Module here: an estimator that trains in rounds (boosted trees) calls its trackers with its
    history after each round, and stops when the reporter raises."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    created = optuna.create_study(study_name="rounds", storage=url)
    record_pruner(created, THRESHOLD)
    created.ask()
    cfg = make_cfg(f"trial.storage='{url}'", "trial.study_name=rounds", "trial.number=0")
    [reporter] = trial_reporters(cfg.trial, SINGLE)
    history = [{"epoch": 1, "val_loss": 2.0, "time_s": 0.1}]
    reporter.log_epoch(history)  # warming up: not pruned
    history.append({"epoch": 2, "val_loss": 1.0, "time_s": 0.2})
    with pytest.raises(RunPruned) as pruned:
        reporter.log_epoch(history)
    assert pruned.value.history[-1]["epoch"] == WARMUP
    trial = optuna.load_study(study_name="rounds", storage=url).trials[0]
    assert trial.intermediate_values == {1: 2.0, 2: 1.0} and trial.user_attrs[PRUNED_ATTR] == WARMUP


@pytest.mark.slow
def test_under_ddp_rank_0_reports_and_both_ranks_stop_at_the_pruned_epoch(tmp_path: Path) -> None:
    """torchrun, 2 CPU ranks (gloo): a rank that went on alone would wait forever in DDP's gradient all-reduce."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    created = optuna.create_study(study_name="ddp", storage=url)
    record_pruner(created, {**THRESHOLD, "upper": 0.0})  # every epoch's loss is above 0: pruned once warm
    created.ask()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "train.py"), *TINY, f"trainer.max_epochs={MAX_EPOCHS}", "hardware=ddp",
               "hardware.device=cpu", "hardware.precision=32", "hardware.threads=1",
               f"paths.log_dir={tmp_path / 'logs'}", f"trial.storage='{url}'", "trial.study_name=ddp", "trial.number=0"]
    done = subprocess.run(command, env=entry_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [run] = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["epochs"] == WARMUP
    assert len(pd.read_csv(run / "metrics.csv")) == WARMUP
    assert f"trial 0 pruned after epoch {WARMUP}" in (run / "ranks" / "rank1" / "train.log").read_text()
    trial = optuna.load_study(study_name="ddp", storage=url).trials[0]
    assert sorted(trial.intermediate_values) == [1, 2] and trial.user_attrs[PRUNED_ATTR] == WARMUP


@pytest.mark.parametrize("url", ["sqlite:////tmp/a b/optuna.db?timeout=60", "postgresql+psycopg://u:p'w@db:5432/optuna",
                                 "sqlite:///C:\\runs\\optuna.db", "ends\\", "a\\'b"])
def test_a_jobs_trial_overrides_carry_any_storage_url_through_hydras_grammar(url: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(trial_overrides(url, "it's", 7)))
    assert [override.value() for override in parsed] == [url, "it's", 7]

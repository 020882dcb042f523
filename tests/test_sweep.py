"""Optuna sweeps (the sweep wing, dl_core/sweep/) as real `train.py -m hparams_search=lstm_optuna`
subprocesses on tiny data.

One process: the SQLite study persists across launches, failed trials are recorded and the sweep goes
on, and the summary (trials.csv, best_params.yaml, plots) is written. A study holds trials of one config:
a launch of another config (other data, the same preset and study name) is refused before any trial, and
so is a search space Optuna cannot sample.

Several processes ("workers") sharing one study in an RDB storage, SQLite and a real PostgreSQL server.
What was checked with Optuna 5.0 / SQLAlchemy 2 (experiments/README.md): workers that all start on a
*fresh* database race in `RDBStorage.__init__` and all but one crash, so the study is created once
first (`optuna create-study ... --skip-if-exists`, the README's recipe), then the workers start at once,
all with the same command. The sampler is seeded per trial (dl_core.sweep.samplers), so workers that
start together with one seed do not replay each other's trials, as they did when each process seeded
its sampler once. A worker killed mid-trial leaves a RUNNING trial; the next launch fails it (at once
on the same machine, after the heartbeat's grace period for a worker elsewhere) and never a live
worker's trial.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

import dl_core
from dl_core.sweep.samplers import TrialSeededRandomSampler, TrialSeededTPESampler
from dl_core.sweep.summary import EXIT_TRIALS_FAILED
from dl_core.sweep.sweeper import STUDY_CONFIG_ATTR, config_differences, study_config
from dl_core.sweep.workers import OWNER_ATTR, owner_name
from helpers import TINY, run_entry, start_entry
from postgres_server import throwaway_postgres, unavailable
from unprivileged import require_unprivileged, run_unprivileged
from wandb_reader import offline_runs, read_run_record, read_summary

SWEEP_TINY = [*TINY, "trainer.max_epochs=1"]
STUDY = "shared"
# A trial that runs until its worker is killed (tests/hold_job.py).
HELD_TRIAL = ["+hydra.callbacks.hold_job._target_=hold_job.HoldJob"]


def sweep_command(*overrides: str) -> list[str]:
    """`-m hparams_search=lstm_optuna` on SWEEP_TINY, whose settings `overrides` replace key by key."""
    keys = {override.split("=")[0] for override in overrides}
    return ["-m", "hparams_search=lstm_optuna", *(o for o in SWEEP_TINY if o.split("=")[0] not in keys), *overrides]


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    """One sweep process on the study in `sweep_dir`/optuna.db, run to its end."""
    return run_entry("train.py", *sweep_command(f"hydra.sweep.dir={sweep_dir}", *overrides), cwd=sweep_dir.parent)


def trials(url: str, study: str = STUDY) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=url).trials


def trial_states(sweep_dir: Path) -> list[str]:
    """The states of a one-process sweep's trials (the preset's study, in the sweep dir)."""
    return [trial.state.name for trial in trials(f"sqlite:///{sweep_dir}/optuna.db", "lstm_optuna")]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_sweep_whose_trials_all_failed_ends_with_its_summary_and_no_traceback(tmp_path: Path) -> None:
    """The one ValueError the sweeper expects from the plugin's sweep: Optuna's, asked for the best trial of a
    study that has no COMPLETE trial."""
    sweep_dir = tmp_path / "sweep"
    done = sweep(sweep_dir, "hydra.sweeper.n_trials=1", "trainer.lr=1e30")
    assert done.returncode == EXIT_TRIALS_FAILED and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "no trial of study lstm_optuna is COMPLETE: no best trial" in done.stdout + done.stderr
    assert trial_states(sweep_dir) == ["FAIL"]
    assert OmegaConf.load(sweep_dir / "best_params.yaml").failed_this_launch == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty RDB storage URL: an SQLite file in tmp_path, or a throwaway PostgreSQL 15 server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}?timeout=60"
        return
    why = unavailable()
    if why:
        pytest.skip(why)
    with throwaway_postgres() as url:
        yield url


def create_study(url: str) -> None:
    """The README's one-time step, with the real command."""
    optuna_cli = Path(sys.executable).with_name("optuna")
    subprocess.run([str(optuna_cli), "create-study", "--storage", url, "--study-name", STUDY, "--direction",
                    "minimize", "--skip-if-exists"], check=True, capture_output=True, timeout=120)


def worker(tmp_path: Path, url: str, name: str, *overrides: str) -> subprocess.Popen[str]:
    """One sweep process on the shared study, started and left running."""
    return start_entry("train.py", *sweep_command(f"hydra.sweeper.storage='{url}'", f"hydra.sweeper.study_name={STUDY}",
                                                  f"hydra.sweep.dir={tmp_path / name}", *overrides),
                       cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def finish_refused(process: subprocess.Popen) -> list[str]:
    """The `error:` lines of a sweep that must exit with status 2 and no traceback."""
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2 and "Traceback" not in output, output[-3000:]
    return [line for line in output.splitlines() if line.startswith("error:")]


def wait_for_running_trial(url: str, process: subprocess.Popen) -> optuna.trial.FrozenTrial:
    """The first trial `process` runs, once the worker has claimed it."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        running = [trial for trial in trials(url)
                   if trial.state == TrialState.RUNNING and OWNER_ATTR in trial.user_attrs]
        if running:
            return running[0]
        time.sleep(0.5)
    raise TimeoutError("no trial started")


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)


@pytest.mark.slow
def test_four_workers_started_at_once_share_one_study_without_replaying_each_other(
        tmp_path: Path, storage: str) -> None:
    """The issue's command, 4 times at once with nothing to tell the workers apart: 4 x 3 trials -> 12
    trials, all COMPLETE, 12 distinct parameter sets (workers seeded alike would replay from their first
    trial on). The workers build their samplers and ask their first trials at the same moment
    (StartTogether), the worst case. The space searched (TINY fixes the sizes) has two continuous
    parameters, so equal sets mean a replay."""
    create_study(storage)
    together = ["+hydra.callbacks.start_together._target_=start_together.StartTogether",
                f"+hydra.callbacks.start_together.folder={tmp_path / 'arrived'}",
                "+hydra.callbacks.start_together.count=4"]
    workers = [worker(tmp_path, storage, f"w{index}", "hydra.sweeper.n_trials=3", *together) for index in range(4)]
    for process in workers:
        finish(process)

    done = trials(storage)
    assert sorted(trial.number for trial in done) == list(range(12))
    assert all(trial.state == TrialState.COMPLETE for trial in done)
    assert len({tuple(sorted(trial.params.items())) for trial in done}) == 12
    owners = [owner_name(trial.user_attrs[OWNER_ATTR]) for trial in done]
    assert sorted(owners.count(owner) for owner in set(owners)) == [3, 3, 3, 3]
    for index in range(4):
        best = OmegaConf.load(tmp_path / f"w{index}" / "best_params.yaml")
        # Its own trials, not the others' (a worker's summary is the study as that worker ended).
        assert best.trials_this_launch == 3 and best.failed_this_launch == 0


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_trial_the_next_launch_fails_and_counts(
        tmp_path: Path, storage: str) -> None:
    create_study(storage)
    doomed = worker(tmp_path, storage, "killed", "hydra.sweeper.n_trials=3", *HELD_TRIAL)
    orphan = wait_for_running_trial(storage, doomed)
    kill(doomed)
    assert trials(storage)[orphan.number].state == TrialState.RUNNING  # what kill -9 leaves behind

    output = finish(worker(tmp_path, storage, "next", "hydra.sweeper.n_trials=1"))
    states = {trial.number: trial.state for trial in trials(storage)}
    assert states[orphan.number] == TrialState.FAIL
    assert sorted(state.name for state in states.values()) == ["COMPLETE", "FAIL"]
    assert "trials left RUNNING by a sweep worker that is gone are now FAIL" in output

    summary = pd.read_csv(tmp_path / "next" / "trials.csv").set_index("number")
    assert summary.loc[orphan.number, "state"] == "FAIL"
    best = OmegaConf.load(tmp_path / "next" / "best_params.yaml")
    assert (best.trials, best.complete, best.failed, best.failed_stale, best.running) == (2, 1, 1, 1, 0)
    assert best.trials_this_launch == 1 and best.failed_this_launch == 0  # exit status 0: not this launch's failure


@pytest.mark.slow
@pytest.mark.xdist_group("timing")  # a late heartbeat would fail the live worker's trial
def test_a_live_worker_keeps_its_trial_and_a_silent_one_loses_it_after_the_grace_period(tmp_path: Path) -> None:
    """A worker on another machine cannot be checked by its pid: its heartbeat decides. The trial's owner
    is moved to another process space (as if on another machine); while its worker lives and beats, a
    new launch leaves the trial alone; once the worker is dead and silent past the grace period, fails it."""
    url = f"sqlite:///{tmp_path / 'study.db'}?timeout=60"
    create_study(url)
    beat = ["hydra.callbacks.sweep.heartbeat_interval=1", "hydra.callbacks.sweep.grace_period=4"]
    remote = worker(tmp_path, url, "remote", "hydra.sweeper.n_trials=1", *HELD_TRIAL, *beat)
    trial = wait_for_running_trial(url, remote)
    storage = optuna.storages.RDBStorage(url)
    storage.set_trial_user_attr(trial._trial_id, OWNER_ATTR,
                                {**trial.user_attrs[OWNER_ATTR], "process_space": "another-machine"})
    time.sleep(6)  # longer than the grace period: only the beats keep the trial alive

    finish(worker(tmp_path, url, "while_alive", "hydra.sweeper.n_trials=1", *beat))
    assert trials(url)[trial.number].state == TrialState.RUNNING
    assert OmegaConf.load(tmp_path / "while_alive" / "best_params.yaml").running == 1

    kill(remote)
    time.sleep(5)
    finish(worker(tmp_path, url, "after_grace", "hydra.sweeper.n_trials=1", *beat))
    assert trials(url)[trial.number].state == TrialState.FAIL
    assert OmegaConf.load(tmp_path / "after_grace" / "best_params.yaml").failed_stale == 1


def test_a_grace_period_not_longer_than_the_heartbeat_is_refused_in_one_line(tmp_path: Path) -> None:
    """Such a grace period would fail live workers' trials between two beats."""
    done = finish_refused(worker(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", "refused",
                                 "hydra.callbacks.sweep.heartbeat_interval=10", "hydra.callbacks.sweep.grace_period=5"))
    assert done == [("error: hydra.callbacks.sweep: need 0 < heartbeat_interval < grace_period (got 10 and 5), "
                    "e.g. 10 and 60")]
    assert not (tmp_path / "study.db").exists()


def csv_series(tmp_path: Path) -> list[str]:
    """Another data set than the built-in generator's: a CSV of one series, and the overrides that train on it."""
    steps = np.arange(400)
    path = tmp_path / "series.csv"
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=len(steps), freq="h"),
                  "target": np.sin(steps / 12) + 0.01 * steps, "driver": np.cos(steps / 7)}).to_csv(path, index=False)
    return ["data=csv_timeseries", f"data.path={path}", "data.timestamp_column=timestamp", "data.target_column=target"]


def refused(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The `error:` lines of a sweep that had to exit with status 2 and no traceback."""
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.slow
def test_a_sweep_on_other_data_does_not_join_the_study_of_the_same_name(tmp_path: Path) -> None:
    """The issue's case: the preset's study (its name, its sweep dir) holds a trial on a CSV; the same preset
    on the built-in data joined it silently, its trial then sat in TPE's model and in the summary. Now it
    is refused before any trial, naming the keys that differ in the config's own order."""
    sweep_dir = tmp_path / "sweep"
    on_csv = sweep_command(f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=1", *csv_series(tmp_path))
    done = run_entry("train.py", *(o for o in on_csv if not o.startswith("data.generator.")), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    [error] = refused(sweep(sweep_dir, "hydra.sweeper.n_trials=1"))
    assert error.startswith(f"error: study lstm_optuna holds trials of another config than this sweep's: data.source "
                            f"(saved csv, given synthetic), data.name (saved csv, given synthetic), data.path (saved "
                            f"{tmp_path / 'series.csv'}, given null), ... (")
    assert error.endswith(" in all); pass the same settings as its earlier sweeps, or start another study with "
                          "hydra.sweeper.study_name=<name>")
    assert trial_states(sweep_dir) == ["COMPLETE"]  # no trial was asked


def files(directory: Path) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


@pytest.mark.slow
def test_a_launch_whose_trials_would_run_in_earlier_trials_dirs_is_refused_before_its_study_asks(
        tmp_path: Path) -> None:
    """Every launch numbers its jobs from 0: with trial dirs named by the job number alone, the second launch's
    trial 1 ran as job 0 in trial 0's directory, where the job refused it, but only after appending a traceback
    to trial 0's train.log and leaving trial 1 FAIL in the study; the console said "Error executing job" and the
    exit status was 3. Now the launch is refused in one line, and the sweep dir is left as it was."""
    sweep_dir = tmp_path / "sweep"
    by_job_number = ("hydra.sweeper.n_trials=1", "hydra.sweep.subdir=${hydra.job.num}")
    first = sweep(sweep_dir, *by_job_number)
    assert first.returncode == 0, first.stderr[-3000:]
    before = files(sweep_dir)
    assert {"0/train.log", "0/metrics.json", "optuna.db"} <= set(before)

    again = sweep(sweep_dir, *by_job_number)
    [error] = refused(again)
    assert error == (f"error: hydra.sweep.subdir: job 0 of this launch would run in {sweep_dir / '0'}, which holds a "
                     f"run (checkpoints, .hydra, metrics.json, metrics.csv): every launch of a study numbers its jobs "
                     f"from 0; leave hydra.sweep.subdir out, as the hparams_search presets set it, naming a trial's "
                     f"directory by its launch's start time and job number "
                     "(${now:%Y-%m-%d_%H-%M-%S_%f}_${hydra.job.num})")
    assert again.stderr.count("\n") == 1
    assert files(sweep_dir) == before
    assert trial_states(sweep_dir) == ["COMPLETE"]


@pytest.mark.slow
def test_re_evaluating_a_study_s_best_trial_again_keeps_the_seeds_an_earlier_launch_ran(tmp_path: Path) -> None:
    """README's way to re-evaluate a study without new trials, `hydra.sweeper.n_trials=0` with `best_of`, was
    refused (n_trials must be >= 1); and a launch whose best trial an earlier launch had re-evaluated launched
    that seed again into its directory, where the job was refused, while the launch said it ran it."""
    sweep_dir = tmp_path / "sweep"
    first = sweep(sweep_dir, "hydra.sweeper.n_trials=1", "hydra.sweeper.best_of=1")
    assert first.returncode == 0, first.stderr[-3000:]
    folder = sweep_dir / "best_of" / "trial_0"
    before = files(folder / "seed_0")

    again = sweep(sweep_dir, "hydra.sweeper.n_trials=0", "hydra.sweeper.best_of=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"seed 0 ran in an earlier launch, in {folder}, and not again" in again.stdout + again.stderr
    assert files(folder / "seed_0") == before
    assert trial_states(sweep_dir) == ["COMPLETE"]
    row = pd.read_csv(folder / "summary.csv").iloc[0]
    assert row["runs"] == 2 and row["seed"] == "0 1"


@pytest.mark.slow
def test_a_study_from_before_the_config_record_gets_one_on_its_next_launch(tmp_path: Path) -> None:
    """A study an earlier version left (trials, no record) goes on: its next launch records its config, says so in
    one line, and the launch after it is held to that config."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    url = f"sqlite:///{sweep_dir}/optuna.db"
    earlier = optuna.create_study(study_name="lstm_optuna", storage=url)
    earlier.add_trial(optuna.trial.create_trial(params={"trainer.lr": 1e-3}, value=1.0,
                                                distributions={"trainer.lr": optuna.distributions.FloatDistribution(
                                                    1e-4, 1e-2, log=True)}))
    done = sweep(sweep_dir, "hydra.sweeper.n_trials=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("study lstm_optuna has 1 trials from before a study recorded its config: recorded this launch's, "
            "which later launches must match") in done.stdout + done.stderr
    record = optuna.load_study(study_name="lstm_optuna", storage=url).user_attrs[STUDY_CONFIG_ATTR]
    assert record["config"]["data"]["generator"]["length"] == 400 and "trainer.lr" in record["swept"]
    assert trial_states(sweep_dir) == ["COMPLETE", "COMPLETE"]

    errors = refused(sweep(sweep_dir, "hydra.sweeper.n_trials=1", "data.generator.length=500"))
    assert errors == [("error: study lstm_optuna holds trials of another config than this sweep's: "
                       "data.generator.length (saved 400, given 500); pass the same settings as its earlier sweeps, or "
                       "start another study with hydra.sweeper.study_name=<name>")]


def recorded(*overrides: str, swept: tuple[str, ...] = ("trainer.lr",)) -> dict:
    """What a launch with `overrides` records in its study: its job config (composed as train.py composes it),
    as the study keeps it (JSON)."""
    job = OmegaConf.to_container(dl_core.compose(*overrides), resolve=False)
    return json.loads(json.dumps(study_config(job, swept)))


def test_launches_that_differ_only_where_a_trial_cannot_tell_record_the_same_study() -> None:
    """Workers of one study may write elsewhere, show or track otherwise, use other CPU threads or another card."""
    one = recorded("hardware.device=cuda:0")
    other = recorded("paths.log_dir=/elsewhere", "task_name=tune", "tags=[a]", "logger=wandb", "trial.number=3",
                     "trial.storage=sqlite:///x.db", "trial.study_name=x", "trainer.progress_bar=false",
                     "trainer.checkpoint_every=5", "hardware.threads=2", "hardware.device=cuda:1")
    assert config_differences(one, other) == []
    assert one["config"]["data"]["path"] is None and "lr" not in one["config"]["trainer"]


def test_what_a_trial_computes_from_is_a_difference_in_the_config_s_order() -> None:
    base = recorded()
    assert config_differences(base, recorded("seed=1", "data.horizon=3", "trainer.max_epochs=7")) == [
        ("data.horizon", "1", "3"), ("trainer.max_epochs", "100", "7"), ("seed", "42", "1")]
    # A path as written: `${paths.data_dir}` is the same study on machines whose checkouts differ.
    assert config_differences(recorded("data=ett"), recorded("data=ett", "data.path=/data/ETTh1.csv")) == [
        ("data.path", "${paths.data_dir}/${data.name}.csv", "/data/ETTh1.csv")]
    assert config_differences(recorded("data=ett"), recorded("data=ett", "paths.root_dir=/elsewhere")) == []
    # A key one launch sweeps and the other fixes: the fixed launch's trials do not record its value.
    assert config_differences(base, recorded(swept=())) == [("trainer.lr", "swept", "0.001")]
    [(key, saved, given)] = config_differences(recorded(swept=("model", "trainer.lr")), base)
    assert (key, saved) == ("model", "swept") and given.startswith('{"quantiles": null') and given.endswith("...")


def test_a_key_only_one_record_has_is_no_difference() -> None:
    """A schema that gained a key since the study was recorded (its default keeps the old behaviour), or lost one."""
    old = recorded()
    del old["config"]["trainer"]["min_delta"]
    assert config_differences(old, recorded()) == config_differences(recorded(), old) == []
    nan = recorded("trainer.min_delta=nan")
    assert config_differences(nan, json.loads(json.dumps(nan))) == []  # NaN is NaN once stored


GRID_OF_FLOATS = ("error: model.dropout, trainer.lr: grid sampling (hydra/sweeper/sampler=grid) needs a finite set of "
                  "values for each key: choice(...), range(...) or int(interval(...)), not an interval of floats")


@pytest.mark.parametrize(("overrides", "starts", "ends"), [
    # Optuna's own reason comes between the two parts.
    (["model.hidden_dim=int(interval(64,8))"],
     "error: model.hidden_dim=int(interval(64,8)): Optuna cannot sample this search space: ",
     "(low=64, high=8); README.md (\"Sweep hyperparameters\") lists the forms"),
    (["hydra.sweeper.n_trials=-1"],
     "error: hydra.sweeper.n_trials: must be >= 1 (got -1), the trials this launch adds to the study", ""),
    (["hydra/sweeper/sampler=grid"], GRID_OF_FLOATS, ""),
], ids=["empty_interval", "negative_trials", "grid_of_floats"])
def test_a_search_space_optuna_cannot_take_is_refused_before_any_trial(tmp_path: Path, overrides: list[str],
                                                                       starts: str, ends: str) -> None:
    """Each ran 0 trials and exited 0 (the sweeper caught every ValueError, and the summary then raised a KeyError
    that Hydra showed as a warning)."""
    sweep_dir = tmp_path / "sweep"
    [line] = refused(sweep(sweep_dir, *overrides))
    assert line.startswith(starts) and line.endswith(ends)
    assert not sweep_dir.exists()  # nor an empty sweep dir


@pytest.mark.parametrize(("overrides", "line"), [
    (["seed=-3"], "error: seed: must be in [0, 4294967295] (got -3)"),
    (["+model.foo=choice(1,2)"], "error: model.foo: not a config key (docs/config.md lists them)"),
    (["model.foo=choice(1,2)"], ("error: model.foo: not a config key (Key 'foo' not in 'LSTMConfig'); docs/config.md "
                                "lists them")),
], ids=["seed_out_of_range", "unknown_key_added", "unknown_key"])
def test_a_config_every_trial_would_refuse_is_refused_before_the_study_is_made(
        tmp_path: Path, overrides: list[str], line: str) -> None:
    """A negative seed reached the sampler first (a ValueError traceback); an unknown swept key made the study and
    ran a trial that failed (exit 3, the reason only in the trial's log), or was refused with trial 0 left RUNNING."""
    sweep_dir = tmp_path / "sweep"
    assert refused(sweep(sweep_dir, "hydra.sweeper.n_trials=1", *overrides)) == [line]
    assert not sweep_dir.exists()


def test_a_study_file_this_user_cannot_write_is_refused_in_one_line(tmp_path: Path) -> None:
    """Was three tracebacks from SQLite ("attempt to write a readonly database") and exit status 1."""
    require_unprivileged(tmp_path)
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    database = sweep_dir / "optuna.db"
    optuna.create_study(study_name="lstm_optuna", storage=f"sqlite:///{database}")
    database.chmod(0o444)
    done = run_unprivileged("train.py", *sweep_command(f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=1"),
                            cwd=tmp_path, timeout=120)
    assert refused(done) == [(f"error: hydra.sweeper.storage: cannot write the study's file {database} (permission "
                             f"denied); make it writable (chmod u+rw {database}), or pass another "
                             f"hydra.sweeper.storage")]
    assert done.stderr.count("\n") == 1 and sorted(path.name for path in sweep_dir.iterdir()) == ["optuna.db"]


def test_a_study_file_in_a_folder_that_does_not_exist_is_refused_in_one_line(tmp_path: Path) -> None:
    """Was a SQLAlchemy traceback ("unable to open database file") after the sweep dir was made. The preset's own
    storage, in the sweep dir this check makes, is not such a folder: every other sweep here runs on it."""
    sweep_dir = tmp_path / "sweep"
    folder = tmp_path / "none" / "a"
    done = sweep(sweep_dir, "hydra.sweeper.n_trials=1", f"hydra.sweeper.storage=sqlite:///{folder}/x.db")
    assert refused(done) == [(f"error: hydra.sweeper.storage: the study's folder {folder} does not exist (SQLite "
                              f"makes the file, not its folder); create it (mkdir -p {folder}), or pass another "
                              f"hydra.sweeper.storage")]
    assert done.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []  # no sweep dir, no folder


@pytest.mark.slow
def test_a_sweep_on_a_data_file_changed_since_the_study_is_refused(tmp_path: Path) -> None:
    """The same command on the same path with other numbers joined the study: its trials then mixed two data sets."""
    sweep_dir = tmp_path / "sweep"
    data = csv_series(tmp_path)
    on_csv = [o for o in sweep_command(f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=1", *data)
              if not o.startswith("data.generator.")]
    done = run_entry("train.py", *on_csv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    series = tmp_path / "series.csv"
    pd.read_csv(series).assign(target=lambda frame: frame["target"] * 1000).to_csv(series, index=False)

    [error] = refused(run_entry("train.py", *on_csv, cwd=tmp_path))
    assert re.fullmatch(rf"error: data\.path: {series} changed since study lstm_optuna ran its trials on it \(sha256 "
                        rf"[0-9a-f]{{12}}\.\.\. of \d+ bytes then, [0-9a-f]{{12}}\.\.\. of \d+ bytes now\), and a "
                        rf"study holds trials of one data set; restore that file, or start another study on this data "
                        rf"with hydra\.sweeper\.study_name=<name>", error), error
    assert trial_states(sweep_dir) == ["COMPLETE"]  # no trial was asked


X = optuna.distributions.FloatDistribution(0.0, 1.0)
HISTORY = (0.1, 0.4, 0.6, 0.9)  # four complete trials, x -> (x - 0.3)^2


def next_suggestion(sampler: optuna.samplers.BaseSampler, failed_before: int = 0) -> tuple[int, float]:
    """A worker's view of a shared study: the same complete trials, and `failed_before` failed trials
    (which no sampler learns from) only there to move the number of the trial it is handed next."""
    study = optuna.create_study(sampler=sampler)
    for x in HISTORY:
        study.add_trial(optuna.trial.create_trial(params={"x": x}, distributions={"x": X}, value=(x - 0.3) ** 2))
    for _ in range(failed_before):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    trial = study.ask()
    return trial.number, trial.suggest_float("x", X.low, X.high)


@pytest.mark.parametrize("sampler", [
    lambda: TrialSeededTPESampler(seed=0, n_startup_trials=2),  # past the start-up: TPE's own draws
    lambda: TrialSeededTPESampler(seed=0),                      # in the start-up: its random sampler's
    lambda: TrialSeededRandomSampler(seed=0),
], ids=["tpe", "tpe_startup", "random"])
def test_trial_seeded_samplers_draw_by_trial_number_not_by_process(sampler) -> None:
    """Two workers, one seed, one history: handed different trial numbers they suggest differently (a
    sampler seeded once per process suggests the same); handed the same number, identically."""
    number_a, x_a = next_suggestion(sampler())
    number_b, x_b = next_suggestion(sampler(), failed_before=1)
    assert (number_a, number_b) == (4, 5) and x_a != x_b
    assert next_suggestion(sampler()) == (4, x_a)


def test_one_process_with_a_seed_is_reproducible() -> None:
    """The same seed on a fresh study gives the same trials, past TPE's start-up too; another seed does not."""
    def sweep(seed: int) -> list[dict[str, float]]:
        study = optuna.create_study(sampler=TrialSeededTPESampler(seed=seed, n_startup_trials=3, constant_liar=True))
        study.optimize(lambda trial: (trial.suggest_float("x", -1, 1) - 0.2) ** 2 + trial.suggest_float("y", 0, 1),
                       n_trials=8)
        return [trial.params for trial in study.trials]

    assert sweep(7) == sweep(7)
    assert not set(map(str, sweep(7))) & set(map(str, sweep(8)))


def test_slurm_launcher_preset_composes_with_its_common_settings(tmp_path: Path) -> None:
    cfg = dl_core.compose("hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                          "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=720",
                          "hydra.launcher.array_parallelism=8", run_dir=tmp_path, with_hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.array_parallelism) == (
        "gpu", 4, 720, 8)

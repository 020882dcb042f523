"""The run directory outside training: which directory a refused run may remove, the `.hydra/` record written
under the lock, and a run or sweep dir that cannot be written. Two processes on one run are test_cli.py's."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

import dl_core
from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from dl_core.runs.rundir import LOCK_NAME
from helpers import TINY, run_entry, start_entry
from unprivileged import require_unprivileged, run_unprivileged


def contents(directory) -> dict[str, str]:
    return {path.relative_to(directory).as_posix(): path.read_text() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def files(directory) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_a_refused_run_never_removes_a_directory_it_did_not_create(tmp_path):
    """What a run holds before its first epoch ends (its record, log and lock) looked like a directory the refused
    run had left untouched, and was removed: a refused run removes only a directory it created. (The record makes
    it a run's directory, refused as such before the config is.)"""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run_dir / "train.log").write_text("[2026-01-01 00:00:00] starting\n")
    (run_dir / LOCK_NAME).write_text("12345")
    before = contents(run_dir)
    refused = run_entry("train.py", "data.sequence_length=-3", f"hydra.run.dir={run_dir}")
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith(f"error: hydra.run.dir: {run_dir} holds a run (.hydra)")
    assert contents(run_dir) == before


@pytest.mark.parametrize(("run_dir", "parents"), [(None, {"train", "train/runs"}),
                                                  ("{tmp_path}/runs/${{hydra:job.name}}", {"runs"})])
def test_a_refused_run_removes_the_run_dir_it_created_wherever_it_is(tmp_path, run_dir, parents):
    """The run dir is made before Hydra makes it, from the same `hydra.run.dir`: its timestamp, its `${hydra:...}`."""
    where = [] if run_dir is None else [f"hydra.run.dir={run_dir.format(tmp_path=tmp_path)}"]
    refused = run_entry("train.py", "data.sequence_length=-3", f"paths.log_dir={tmp_path}", *where)
    assert refused.returncode == 2 and one_line(refused.stderr).startswith("error: data.sequence_length:")
    assert {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")} == parents


@pytest.mark.slow
def test_a_new_run_records_its_config_and_a_resume_in_its_own_dir_keeps_it(tmp_path):
    """The record (.hydra/) is the run's own, written once it holds the lock; a resume composed its own config
    and overrides, which Hydra wrote over the run's record before the run started."""
    run_dir = tmp_path / "run"
    overrides = [*TINY, "trainer.max_epochs=1", "seed=3"]
    first = run_entry("train.py", *overrides, f"hydra.run.dir={run_dir}")
    assert first.returncode == 0, first.stderr[-3000:]
    record = contents(run_dir / ".hydra")
    assert yaml.safe_load(record["overrides.yaml"]) == overrides
    assert yaml.safe_load(record["config.yaml"])["seed"] == 3
    assert yaml.safe_load(record["hydra.yaml"])["hydra"]["run"]["dir"] == str(run_dir)

    resumed = run_entry("train.py", f"hydra.run.dir={run_dir}", "trainer.resume=true", "trainer.max_epochs=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 3  # header and two epochs
    assert contents(run_dir / ".hydra") == record


@pytest.mark.parametrize(("key", "extra"), [("hydra.run.dir", []), ("hydra.sweep.dir", ["-m"]),
                                            ("paths.output_dir", ["hydra.run.dir={tmp_path}/hydra"])])
def test_a_run_dir_that_cannot_be_created_is_one_line_naming_the_key(tmp_path, key, extra):
    """Was a PermissionError traceback (from Hydra's log set-up, or the pipeline's mkdir)."""
    require_unprivileged(tmp_path)
    parent = tmp_path / "read_only"
    parent.mkdir()
    parent.chmod(0o555)
    refused = run_unprivileged("train.py", *(arg.format(tmp_path=tmp_path) for arg in extra),
                               f"{key}={parent / 'run'}", timeout=120)
    assert refused.returncode == 2
    assert one_line(refused.stderr) == (f"error: {key}: cannot create {parent / 'run'} (Permission denied: "
                                        f"{parent / 'run'}); pass a {key} where you can write")
    assert list(parent.iterdir()) == [] and not (tmp_path / "hydra").exists()


# One xdist worker runs the whole module, so that `finished_run` is trained once.
pytestmark = pytest.mark.xdist_group("test_rundir")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished tiny run, trained through the API (no train.py process): what a new run must leave alone."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(dl_core.compose(*TINY, "trainer.max_epochs=1", run_dir=run_dir))
    return run_dir


def test_a_new_run_in_a_directory_holding_a_run_is_refused_and_changes_nothing_there(finished_run):
    """Only a locked directory was refused: a finished run's checkpoints, metrics and record were replaced by the
    new run's, with exit status 0."""
    before = files(finished_run)
    refused = run_entry("train.py", *TINY, "seed=4", f"hydra.run.dir={finished_run}", timeout=120)
    assert refused.returncode == 2
    assert one_line(refused.stderr) == (
        f"error: hydra.run.dir: {finished_run} holds a run (checkpoints, metrics.json, metrics.csv), and a "
        f"new run never writes over another's files; pass another hydra.run.dir (or none, for a new directory), or "
        f"continue that run with trainer.resume={finished_run}")
    assert files(finished_run) == before
    # The API refuses it as well, before it writes anything.
    with pytest.raises(ConfigError, match=r"^paths.output_dir: .* holds a run \(checkpoints, metrics.json"):
        train(dl_core.compose(*TINY, "seed=4", run_dir=finished_run))
    assert files(finished_run) == before


@pytest.mark.parametrize(("override", "line"), [
    ("hydra.run.dir=", ("error: hydra.run.dir: is empty, which would make the current directory the run's; pass a "
                       "directory (e.g. hydra.run.dir=outputs/my_run), or leave hydra.run.dir out for a new one under "
                       "outputs/")),
    ("task_name=a/b/../../..", ("error: task_name: must name a folder under paths.log_dir (got 'a/b/../../..'), e.g. "
                               "task_name=my_experiment")),
], ids=["empty_run_dir", "task_name_climbing_out"])
def test_a_run_dir_outside_where_runs_go_is_refused_by_name(tmp_path, override, line):
    """An empty `hydra.run.dir` trained into the current directory, replacing any checkpoints/, metrics.json or
    .hydra/ there; a `task_name` with `..` put the run outside `paths.log_dir`. Both exited 0."""
    work = tmp_path / "work"
    work.mkdir()
    refused = run_entry("train.py", *TINY, override, f"paths.log_dir={work / 'logs'}", cwd=work, timeout=120)
    assert refused.returncode == 2 and one_line(refused.stderr) == line
    assert list(tmp_path.rglob("*")) == [work]


def test_a_multirun_into_an_earlier_multiruns_dir_is_refused_before_any_job(finished_run, tmp_path):
    """A job's directory (`<sweep dir>/<job number>_<model>_<data>`) got no check: job 0 trained into the earlier
    multirun's."""
    sweep_dir = tmp_path / "multirun"
    shutil.copytree(finished_run, sweep_dir / "0_lstm_synthetic")
    before = files(sweep_dir)
    refused = run_entry("train.py", "-m", *TINY, "seed=5,6", f"hydra.sweep.dir={sweep_dir}", timeout=120)
    assert refused.returncode == 2, refused.stdout[-2000:]
    assert one_line(refused.stderr).startswith(
        f"error: hydra.sweep.dir: {sweep_dir / '0_lstm_synthetic'} holds a run (checkpoints")
    assert files(sweep_dir) == before and not list(sweep_dir.glob("1_*"))


@pytest.mark.slow
def test_a_job_refused_in_a_directory_another_run_took_adds_nothing_to_that_run(tmp_path):
    """Hydra opens a multirun job's log (train.log) in its directory before the job can check it. When another run
    took the directory after the multirun's own check (two launches at once), the refused job appended Hydra's
    report of its failure, a traceback, to that run's train.log, and rewrote its lock file."""
    job_dir, released = tmp_path / "multirun" / "0", tmp_path / "released"
    multirun = start_entry("train.py", "-m", *TINY, f"hydra.sweep.dir={job_dir.parent}", "hydra.sweep.subdir=0",
                           "+hydra.callbacks.hold_job._target_=hold_job.HoldJob",
                           f"+hydra.callbacks.hold_job.until={released}")
    deadline = time.monotonic() + 120
    while not (job_dir / "train.log").exists():  # the job is held, its log open
        assert multirun.poll() is None and time.monotonic() < deadline, multirun.stderr.read()[-3000:]
        time.sleep(0.2)
    other = run_entry("train.py", *TINY, f"hydra.run.dir={job_dir}", timeout=120)
    assert other.returncode == 0, other.stderr[-3000:]
    before = files(job_dir)
    assert b"best epoch" in before["train.log"]

    released.touch()
    _, stderr = multirun.communicate(timeout=120)
    assert multirun.returncode == 2, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith(f"error: hydra.sweep.dir: {job_dir} holds a run (checkpoints")
    assert files(job_dir) == before


@pytest.mark.parametrize(("overrides", "line"), [
    (["seed=0,-1"], "error: seed: must be in [0, 4294967295] (got -1)"),
    (["+trainer.foo=1,2"], "error: trainer.foo: not a config key (docs/config.md lists them)"),
], ids=["second_job_out_of_range", "unknown_key"])
def test_a_multirun_with_a_job_its_config_refuses_stops_before_any_job_and_leaves_no_dir(tmp_path, overrides, line):
    """Job 0 trained before job 1 was refused, and the refused jobs left their directories (train.log)."""
    sweep_dir = tmp_path / "multirun"
    refused = run_entry("train.py", "-m", *TINY, *overrides, f"hydra.sweep.dir={sweep_dir}", timeout=120)
    assert refused.returncode == 2 and one_line(refused.stderr) == line
    assert not sweep_dir.exists()


def test_a_read_only_sweep_dir_is_refused_in_one_line(finished_run, tmp_path):
    """The refusal was followed by warnings from the summary callbacks, which ran on the refused multirun: the
    multirun summary tried to write its table of the jobs already there (here job 7 of an earlier multirun)."""
    require_unprivileged(tmp_path)
    sweep_dir = tmp_path / "multirun"
    shutil.copytree(finished_run, sweep_dir / "7")
    (sweep_dir / "7" / ".hydra").mkdir()
    (sweep_dir / "7" / ".hydra" / "overrides.yaml").write_text("- seed=7\n")
    sweep_dir.chmod(0o555)
    before = files(sweep_dir)
    refused = run_unprivileged("train.py", "-m", *TINY, f"hydra.sweep.dir={sweep_dir}", timeout=120)
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith("error: hydra.sweep.dir: cannot write")
    assert files(sweep_dir) == before

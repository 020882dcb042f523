"""train.py as a user runs it: Ctrl-C, the resume command it prints, and two processes on one run."""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from dl_core.runs.rundir import LOCK_NAME, RunLock
from helpers import TINY, run_entry, start_entry


def wait_until(ready, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"train.py ended early: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    return lines[0]


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_command_which_resumes_into_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    proc = start_entry("train.py", *TINY, "data.generator.length=2500", "trainer.max_epochs=50",
                       "trainer.patience=50", f"hydra.run.dir={run_dir}")
    # metrics.csv is written just after an epoch's checkpoint: on a busy machine Ctrl-C can come in between.
    wait_until(lambda: (run_dir / "checkpoints" / "last.ckpt").exists() and (run_dir / "metrics.csv").exists(), proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    line = one_line(stderr)
    assert line == f"interrupted: resume with: python train.py trainer.resume={run_dir}"
    done_epochs = len(pd.read_csv(run_dir / "metrics.csv"))
    script, *command = shlex.split(line.split("resume with: ")[1])[1:]  # without `python`

    # A resume that would change the model is refused by name, and leaves no directory of its own.
    stub = tmp_path / "stub"
    refused = run_entry(script, *command, "model.hidden_dim=32", f"hydra.run.dir={stub}", timeout=120)
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith("error: model.hidden_dim (saved 16, given 32): cannot change")
    assert not stub.exists()

    # The printed command resumes; trainer.max_epochs may change (it extends or shortens the run).
    resumed = run_entry(script, *command, f"trainer.max_epochs={done_epochs + 2}", f"hydra.run.dir={stub}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert pd.read_csv(run_dir / "metrics.csv")["epoch"].tolist() == list(range(1, done_epochs + 3))
    assert not stub.exists()  # the directory Hydra made for the resume command is gone
    log = (run_dir / "train.log").read_text()
    assert "run dir" in log.split("resuming")[0]  # the run's own log, appended to
    assert f"resuming {run_dir} from epoch {done_epochs}" in log


@pytest.mark.slow
def test_a_second_process_on_a_run_being_resumed_is_refused(make_cfg, tmp_path):
    run_dir = tmp_path / "run"
    train(make_cfg(*TINY, "trainer.max_epochs=1"))
    first = start_entry("train.py", f"trainer.resume={run_dir}", "trainer.max_epochs=5000", "trainer.patience=5000",
                        f"hydra.run.dir={tmp_path / 'stub1'}")
    try:
        lock = run_dir / LOCK_NAME
        wait_until(lambda: lock.exists() and lock.read_text() == str(first.pid), first)
        first.send_signal(signal.SIGSTOP)  # alive and holding the lock, it leaves the CPU to the second process
        second = run_entry("train.py", f"trainer.resume={run_dir}", f"hydra.run.dir={tmp_path / 'stub2'}",
                           timeout=120)
        assert second.returncode == 2
        assert one_line(second.stderr) == (
            f"error: trainer.resume: {run_dir} is in use by another training process (pid {first.pid}); "
            f"wait for it to end or stop it, then resume")
        assert first.poll() is None and not (tmp_path / "stub2").exists()
    finally:
        first.kill()
        first.wait(timeout=60)
    with RunLock(run_dir, "trainer.resume"):  # a killed holder's lock died with it
        pass


def record(run_dir: Path) -> dict[str, str]:
    """Every file of a run dir but the log (which the live run appends to) and its contents."""
    return {path.relative_to(run_dir).as_posix(): path.read_text() for path in sorted(run_dir.rglob("*"))
            if path.is_file() and path.name != "train.log"}


@pytest.mark.slow
def test_a_second_training_in_a_run_dir_in_use_is_refused_and_changes_nothing_there(tmp_path):
    """A second `hydra.run.dir=D` used to overwrite the live run's .hydra/ (Hydra wrote it before the lock was
    checked), then delete D as a directory of its own left untouched: the live run lost its record, log and
    lock, and a resume of D was then accepted while the first run still trained in it."""
    run_dir = tmp_path / "run"
    # One-sample batches: the first epoch lasts long enough for the second process to arrive during it.
    first = start_entry("train.py", *TINY, "data.generator.length=3000", "trainer.batch_size=1",
                        "trainer.max_epochs=5000", "trainer.patience=5000", f"hydra.run.dir={run_dir}")
    try:
        lock = run_dir / LOCK_NAME
        wait_until(lambda: lock.exists() and lock.read_text() == str(first.pid)
                   and (run_dir / ".hydra" / "overrides.yaml").exists(), first)
        first.send_signal(signal.SIGSTOP)  # alive and holding the lock, it leaves the CPU to the second process
        before = record(run_dir)
        assert ".hydra/config.yaml" in before and "checkpoints/last.ckpt" not in before  # still in its first epoch

        second = run_entry("train.py", "seed=7", f"hydra.run.dir={run_dir}", timeout=120)
        assert second.returncode == 2
        assert first.poll() is None and (run_dir / "train.log").is_file()
        after = record(run_dir)
        assert {name: after.get(name) for name in before} == before
        assert one_line(second.stderr) == (
            f"error: hydra.run.dir: {run_dir} is in use by another training process (pid {first.pid}); pass "
            f"another hydra.run.dir (or none, for a new directory), or wait for it to end")

        # The lock is still the first run's: a third process (a resume of it) is refused.
        with pytest.raises(ConfigError, match=rf"in use by another training process \(pid {first.pid}\)"):
            RunLock(run_dir, "trainer.resume").__enter__()
    finally:
        first.kill()
        first.wait(timeout=60)

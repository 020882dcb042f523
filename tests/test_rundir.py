"""The run directory outside training: which directory a refused run may remove, the `.hydra/` record written
under the lock, and a run or sweep dir that cannot be written. Two processes on one run are test_cli.py's."""

from __future__ import annotations

import pytest
import yaml

from dl_core.runs.rundir import LOCK_NAME
from helpers import TINY, run_entry
from unprivileged import require_unprivileged, run_unprivileged


def contents(directory) -> dict[str, str]:
    return {path.relative_to(directory).as_posix(): path.read_text() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_a_refused_run_never_removes_a_directory_it_did_not_create(tmp_path):
    """What a run holds before its first epoch ends (its record, log and lock) looked like a directory the refused
    run had left untouched, and was removed: a refused run removes only a directory it created."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run_dir / "train.log").write_text("[2026-01-01 00:00:00] starting\n")
    (run_dir / LOCK_NAME).write_text("12345")
    before = contents(run_dir)
    refused = run_entry("train.py", "data.sequence_length=-3", f"hydra.run.dir={run_dir}")
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith("error: data.sequence_length: must be >= 1")
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

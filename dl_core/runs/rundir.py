"""A run directory's life outside the training itself: who made it, who may write it, what it records.

Hydra makes a run directory (and opens the job's log file in it) before the task runs. Two processes
can be pointed at the same directory (`hydra.run.dir=D` twice, or a resume of a run still training),
so nothing of a run is written there before it holds the directory's lock (`RunLock`): Hydra's own
record of the run (`.hydra/`: the config, Hydra's config, the overrides) is turned off in
conf/hydra/default.yaml and written by `record_run` once the lock is held, for a new run only (a
resumed run keeps the record of the run it continues).

A directory holding a run's files (`RUN_FILES`: its checkpoints, its record, its metrics) is that run's:
a new run is never started in it (`claim` refuses it before Hydra opens its log there), whether the run
is finished, stopped or still training; `trainer.resume` is the way to continue it. A multirun's job
(or a run whose directory another process took after `claim`) finds its log already open there, and
closes it before it refuses the directory (`refused`): the other run's log gets no line of it.

A run refused before any work, or a resume that continues an older directory, would leave the
directory Hydra made behind with nothing in it. `discard` removes it, but only a directory this
process created (`claim`, called before Hydra makes it), that holds nothing but this process's log,
lock and record, and that no process trains in: never one another process is using or made. A new
run that stopped before its first checkpoint left nothing to resume or use, and `discard_unfinished`
removes its directory too, on the same conditions of who made it and who trains there.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError
from dl_core.tracking.run_index import RUN_FILE

LOCK_NAME = ".lock"
RECORD_DIR = ".hydra"
RECORD_FILES = {"config.yaml", "hydra.yaml", "overrides.yaml"}
CHECKPOINTS = "checkpoints"
# What a training run writes in its directory: one of these there makes the directory a run's.
RUN_FILES = (CHECKPOINTS, RECORD_DIR, "metrics.json", "metrics.csv")
# The directories this process created (`claim`): the only ones `discard` may remove.
_claimed: list[Path] = []


def claim(directory: Path, key: str, resuming: bool = False) -> None:
    """Create the run directory `key` names before Hydra does, so that this process knows it made it (an
    existing one is used as it is, and never claimed). An existing directory that holds a run is refused
    (`refuse_run_dir`) unless `resuming` names that run: Hydra would append this process's log to the
    run's, and the new run would replace its checkpoints, metrics and record."""
    if not str(directory).strip():
        raise ConfigError(f"{key}: is empty, which would make the current directory the run's; pass a directory "
                          f"(e.g. {key}=outputs/my_run), or leave {key} out for a new one under outputs/")
    directory = Path(os.path.abspath(directory))
    if make_writable_dir(directory, key):
        _claimed.append(directory)
    elif not resuming:
        refuse_run_dir(directory, key)


def refuse_run_dir(directory: Path, key: str) -> None:
    """Refuse a directory a run trains in (naming the process) or holds a run's files: a new run's directory
    is always a directory of its own."""
    refuse_if_in_use(directory, key)
    refuse_run_files(directory, key)


def refuse_run_files(directory: Path, key: str) -> None:
    """Refuse a directory that holds a run's files as a new run's."""
    found = run_files(directory)
    if found:
        raise refused(directory, ConfigError(
            f"{key}: {directory} holds a run ({', '.join(found)}), and a new run never writes over another's files; "
            f"pass another {key} (or none, for a new directory), or continue that run with trainer.resume={directory}"))


def run_files(directory: Path) -> list[str]:
    """The run files (`RUN_FILES`) in `directory`."""
    return [name for name in RUN_FILES if os.path.lexists(directory / name)]


def make_writable_dir(directory: Path, key: str) -> bool:
    """Create `directory` (and its parents) unless it exists; True when this call created it. One that
    cannot be made or written to is refused naming `key`, the config key that chose it, rather than as a
    PermissionError traceback from wherever the first file would have been opened."""
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        if not directory.is_dir():
            raise ConfigError(f"{key}: {directory} is a file, not a directory; pass another {key}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}: cannot write in {directory} (permission denied); make it writable or "
                              f"pass a {key} where you can write") from None
        return False
    except OSError as err:
        raise ConfigError(f"{key}: cannot create {directory} ({err.strerror}: {err.filename}); pass a {key} "
                          f"where you can write") from None
    return True


def hydra_run_dir() -> Path | None:
    """The directory Hydra made for this job, or None outside a Hydra job."""
    if not HydraConfig.initialized():
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def location_key(run_dir: Path) -> str:
    """The config key that put a new run in `run_dir`, for messages about it."""
    hydra_dir = hydra_run_dir()
    if hydra_dir is not None and hydra_dir.resolve() == run_dir.resolve():
        return "hydra.sweep.dir" if HydraConfig.get().mode == RunMode.MULTIRUN else "hydra.run.dir"
    return "paths.output_dir"


def record_run(run_dir: Path, cfg: DictConfig) -> None:
    """Write what Hydra writes into a run's `.hydra/` (the job's config, Hydra's config, the overrides), as
    Hydra writes them; called by the process holding the run's lock. Nothing outside a Hydra job."""
    if not HydraConfig.initialized():
        return
    record = run_dir / RECORD_DIR
    record.mkdir(exist_ok=True)
    hydra = HydraConfig.instance().cfg
    for name, node in (("config.yaml", cfg), ("hydra.yaml", hydra), ("overrides.yaml", hydra.hydra.overrides.task)):
        (record / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")


def untouched(directory: Path) -> bool:
    """True when `directory` holds nothing but a job's log file, the lock and the run's records (`.hydra/`,
    run.json)."""
    ours = {RECORD_DIR, LOCK_NAME, RUN_FILE}
    if HydraConfig.initialized():
        ours.add(f"{HydraConfig.get().job.name}.log")
    if not {entry.name for entry in directory.iterdir()} <= ours:
        return False
    record = directory / RECORD_DIR
    return not record.is_dir() or {entry.name for entry in record.iterdir()} <= RECORD_FILES


def discard(directory: Path | None) -> None:
    """Remove `directory` if this process created it, it is `untouched`, and no process trains in it (its
    lock is taken for the removal); its log file is closed first."""
    directory = None if directory is None else Path(os.path.abspath(directory))
    if directory in _claimed:
        _claimed.remove(directory)
        _remove_if_untouched(directory)


def discard_claimed() -> None:
    """`discard` every directory this process created."""
    while _claimed:
        _remove_if_untouched(_claimed.pop())


def _remove_if_untouched(directory: Path) -> None:
    if directory.is_dir() and untouched(directory):
        _remove_unless_in_use(directory)


def _remove_unless_in_use(directory: Path) -> None:
    """Remove `directory` under its lock, its log file closed first; one a process trains in is left alone."""
    try:
        with RunLock(directory, "paths.output_dir"):
            _close_file_logs_in(directory)
            shutil.rmtree(directory, ignore_errors=True)
    except ConfigError:  # another process took it over and trains there: it is that run's now
        return


def continue_logging_in(run_dir: Path) -> None:
    """A resumed run appends its log to its own directory's log file, and the directory Hydra made
    for this invocation (a stub: nothing else will be written there) is discarded."""
    stub = hydra_run_dir()
    if stub is None or stub.resolve() == run_dir.resolve():
        return
    root = logging.getLogger()
    for handler in _file_logs_in(stub):
        moved = logging.FileHandler(run_dir / Path(handler.baseFilename).name, mode="a")
        moved.setFormatter(handler.formatter)
        moved.setLevel(handler.level)
        root.addHandler(moved)
        root.removeHandler(handler)
        handler.close()
    discard(stub)


def _file_logs_in(directory: Path) -> list[logging.FileHandler]:
    """The root logger's file handlers writing into `directory` (Hydra's job log)."""
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)
            and Path(handler.baseFilename).resolve().parent == directory.resolve()]


def _close_file_logs_in(directory: Path) -> None:
    for handler in _file_logs_in(directory):
        logging.getLogger().removeHandler(handler)
        handler.close()


def discard_unfinished(directory: Path) -> None:
    """Remove the directory of a new run that stopped before its first checkpoint (a checkpoint it could not
    write, Ctrl-C in its first epoch): nothing in it can be resumed or used, and the run's one line says so.
    Only a directory this process created (`claim`), and none a process trains in."""
    directory = Path(os.path.abspath(directory))
    if directory not in _claimed or os.path.lexists(directory / CHECKPOINTS / "last.ckpt"):
        return
    _claimed.remove(directory)
    _remove_unless_in_use(directory)


def refuse_if_in_use(directory: Path, key: str) -> None:
    """Refuse `directory` while a process holds its lock (`RunLock`), naming that process, without taking the
    lock or writing anything there."""
    lock = directory / LOCK_NAME
    if not lock.is_file():
        return
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise in_use(directory, key, handle.read().strip() or "?") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def in_use(directory: Path, key: str, holder: str) -> ConfigError:
    fix = ("wait for it to end or stop it, then resume" if key == "trainer.resume" else
           f"pass another {key} (or none, for a new directory), or wait for it to end")
    return refused(directory, ConfigError(f"{key}: {directory} is in use by another training process (pid {holder}); "
                                          f"{fix}"))


def refused(directory: Path, error: ConfigError) -> ConfigError:
    """`error`, refusing `directory` as another run's, once this process's log file there is closed. Hydra opens a
    job's log file in its directory before the job can check the directory (a multirun's job; a run whose
    directory another process took after `claim`), appending: nothing is written until a line is logged, and
    none of this process's, Hydra's report of the refused job included, may be added to the other run's log."""
    _close_file_logs_in(directory)
    return error


class RunLock:
    """An exclusive `flock` on `<run dir>/.lock` for as long as a process trains in the directory.

    The kernel releases it when the process ends, however it ends (kill -9 included), so a lock file
    left on disk never blocks a later resume. The holder's pid is written into the file for the message,
    which names `key`, the config key that pointed this process at the directory.
    """

    def __init__(self, run_dir: Path, key: str):
        self.path = run_dir / LOCK_NAME
        self.key = key
        self._handle = None

    def __enter__(self) -> RunLock:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise in_use(self.path.parent, self.key, holder) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

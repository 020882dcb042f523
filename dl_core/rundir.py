"""A run directory's life outside the training itself: who may write it, and what Hydra leaves there.

Hydra makes a run directory (its `.hydra/` copy of the config and the job's log file) before the
task runs. A run refused before any work, or a resume that continues an older directory, would leave
that directory behind with nothing in it; `remove_if_untouched` removes it, and never a directory
holding anything else. `RunLock` keeps two processes from training in one directory at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from dl_core.errors import ConfigError

LOCK_NAME = ".lock"
HYDRA_SUBDIR_FILES = {"config.yaml", "hydra.yaml", "overrides.yaml"}


def hydra_job_dir() -> Path | None:
    """The directory Hydra made for this job, or None: outside a Hydra job, or where Hydra writes no
    files (`hydra.output_subdir: null`, as predict.py and serve.py set it)."""
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.output_subdir is None:
        return None
    return Path(hydra.runtime.output_dir)


def untouched(directory: Path) -> bool:
    """True when `directory` holds only what Hydra wrote before the task ran (plus our lock file)."""
    if not (directory / ".hydra").is_dir():
        return False
    ours = {".hydra", LOCK_NAME}
    if HydraConfig.initialized():
        ours.add(f"{HydraConfig.get().job.name}.log")
    if not {entry.name for entry in directory.iterdir()} <= ours:
        return False
    return {entry.name for entry in (directory / ".hydra").iterdir()} <= HYDRA_SUBDIR_FILES


def remove_if_untouched(directory: Path | None) -> None:
    """Remove a Hydra run directory that holds nothing but Hydra's own files (its log file closed first)."""
    if directory is None or not directory.is_dir() or not untouched(directory):
        return
    _close_file_logs_in(directory)
    shutil.rmtree(directory, ignore_errors=True)


def continue_logging_in(run_dir: Path) -> None:
    """A resumed run appends its log to its own directory's log file, and the directory Hydra made
    for this invocation (a stub: nothing else will be written there) is removed."""
    stub = hydra_job_dir()
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
    remove_if_untouched(stub)


def _file_logs_in(directory: Path) -> list[logging.FileHandler]:
    """The root logger's file handlers writing into `directory` (Hydra's job log)."""
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)
            and Path(handler.baseFilename).resolve().parent == directory.resolve()]


def _close_file_logs_in(directory: Path) -> None:
    for handler in _file_logs_in(directory):
        logging.getLogger().removeHandler(handler)
        handler.close()


class RunLock:
    """An exclusive `flock` on `<run dir>/.lock` for as long as a process trains in the directory.

    The kernel releases it when the process ends, however it ends (kill -9 included), so a lock file
    left on disk never blocks a later resume. The holder's pid is written into the file for the message.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self._handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise ConfigError(f"trainer.resume: {self.path.parent} is in use by another training process "
                              f"(pid {holder}); wait for it to end or stop it, then resume") from None
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

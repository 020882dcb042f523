"""Sweep workers: who runs a trial, whether that worker still lives, and failing the trials of dead ones.

Several sweep processes ("workers", on one machine or many) may share one study in an RDB storage. Every
worker stamps the trials it runs with its owner (`claim_trial`) and keeps an Optuna heartbeat for them
(`Heartbeat`), so that a trial whose worker died (kill -9, a lost node) is told FAIL the next time a sweep
opens the study (`fail_dead_workers_trials`), while a live worker's trial is left alone.

optuna (and the adapter to its private API) is imported where it is used: it comes with the optional `sweep`
extra, and the sweep summary imports this module in every sweep.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dl_core.errors import ConfigError

log = logging.getLogger(__name__)

OWNER_ATTR = "sweep_worker"


def load_study(storage: Any, study_name: Any) -> Any | None:
    """The study from its storage; None for in-memory storage, a missing SQLite file or an unknown name."""
    if storage is None or study_name is None:
        return None
    if not storage_exists(str(storage)):
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=str(study_name), storage=str(storage))
    except KeyError:
        return None


def storage_exists(url: str) -> bool:
    """False for an SQLite file not created yet: opening it would create it (and its folder must exist)."""
    file = sqlite_file(url)
    return file is None or file.exists()


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite storage URL; None for another database."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0])


def check_storage_writable(url: str, sweep_dir: Path) -> None:
    """Refuse an SQLite study this process cannot write, before the sweep starts: Optuna writes the file at once
    (the study, its trials, their heartbeats) and SQLite its journal beside it, and a read-only one fails there
    with tracebacks, as does one whose folder does not exist (SQLite makes the file, never its folder). The
    sweep dir is made before the study is opened, so the presets' study in it is not refused for its folder.
    (Another database's permissions are its server's to check.)"""
    file = sqlite_file(url)
    if file is None:
        return
    if not file.parent.is_dir() and os.path.abspath(file.parent) != os.path.abspath(sweep_dir):
        found = "is not a folder" if file.parent.exists() else "does not exist"
        raise ConfigError(f"hydra.sweeper.storage: the study's folder {file.parent} {found} (SQLite makes the file, "
                          f"not its folder); create it (mkdir -p {file.parent}), or pass another hydra.sweeper.storage")
    if file.exists() and not os.access(file, os.R_OK | os.W_OK):
        raise ConfigError(f"hydra.sweeper.storage: cannot write the study's file {file} (permission denied); make "
                          f"it writable (chmod u+rw {file}), or pass another hydra.sweeper.storage")
    folder = file.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"hydra.sweeper.storage: cannot write in {folder}, where SQLite keeps the study's journal "
                          f"beside {file.name} (permission denied); make it writable (chmod u+rwx {folder}), or pass "
                          f"another hydra.sweeper.storage")


def process_space() -> str | None:
    """Which process ids this process can see: the kernel's boot and its pid namespace (Linux).

    Two processes with the same value share pid numbers, so one can tell whether the other is alive
    by its pid; machines, reboots and containers each get a different value. None elsewhere.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


def owner_record() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "process_space": process_space()}


def owner_name(owner: Any) -> str | None:
    """`host:pid` of the process that ran a trial, as trials.csv shows it; None for a trial never claimed."""
    return f"{owner.get('host')}:{owner.get('pid')}" if isinstance(owner, dict) else None


def owned_by_this_process(owner: Any) -> bool:
    return isinstance(owner, dict) and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()


def owner_is_gone(owner: Any) -> bool:
    """Whether the process that ran a trial is known to have ended: it ran in this process space, and its
    pid is free. Owners elsewhere are judged by their heartbeat instead."""
    here = process_space()
    if here is None or not isinstance(owner, dict) or owner.get("process_space") != here:
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim_trial(config: DictConfig, trial: Any) -> None:
    """`hydra.sweeper.custom_search_space` hook, called by the sweeper in this process for every trial it
    asks: record this process as the trial's owner and beat once at once, since Optuna never finds a
    trial stale that has no heartbeat at all (an in-memory study has no heartbeat, and no other worker)."""
    from dl_core.sweep.optuna_adapter import trial_id

    trial.set_user_attr(OWNER_ATTR, owner_record())
    record_heartbeat = getattr(trial.storage, "record_heartbeat", None)
    if record_heartbeat is not None:
        record_heartbeat(trial_id(trial))


def fail_dead_workers_trials(storage_url: str, study_name: str, heartbeat_interval: int,
                             grace_period: int) -> list[int]:
    """Tell FAIL every RUNNING trial of the study whose worker is gone; return their trial numbers.

    Gone: its process ran on this machine (same process space) and no longer exists, or its last
    heartbeat is older than `grace_period` s by the database's clock (any machine). A live worker
    beats every `heartbeat_interval` s, so its trials are never failed.
    """
    if not storage_exists(storage_url):
        return []
    import optuna
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState

    failed: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            heartbeat_stale_trial_callback=lambda study, trial: failed.append(trial.number))
        try:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler())
        except KeyError:
            return []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if owner_is_gone(trial.user_attrs.get(OWNER_ATTR)):
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                failed.append(trial.number)
        optuna.storages.fail_stale_trials(study)
    return sorted(failed)


class Heartbeat:
    """Records an Optuna heartbeat every `interval` s for the RUNNING trials this process owns.

    Optuna beats only inside `study.optimize`; the Hydra sweeper asks and tells, so a sweep keeps its
    own. The beat is the database's time stamp, so workers on several machines share one clock.
    """

    def __init__(self, storage_url: str, study_name: str, interval: float):
        self.storage_url, self.study_name, self.interval = storage_url, study_name, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import optuna
        import sqlalchemy.exc

        storage = None
        while not self._stop.wait(self.interval):
            try:
                if storage is None and storage_exists(self.storage_url):
                    storage = optuna.storages.RDBStorage(self.storage_url)
                if storage is not None:
                    self.beat(storage)
            except KeyError:  # the sweeper has not created the study yet
                continue
            except sqlalchemy.exc.SQLAlchemyError as err:  # the database is away for a moment: beat next time
                log.warning("sweep heartbeat skipped: %s", str(err).splitlines()[0])

    def beat(self, storage: Any) -> None:
        from optuna.trial import TrialState

        from dl_core.sweep.optuna_adapter import trial_id

        study_id = storage.get_study_id_from_name(self.study_name)
        for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            if owned_by_this_process(trial.user_attrs.get(OWNER_ATTR)):
                storage.record_heartbeat(trial_id(trial))


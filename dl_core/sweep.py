"""Optuna sweep helpers behind `conf/hparams_search`: config resolvers, worker identity, trial liveness.

Several sweep processes ("workers", on one machine or many) may share one study in an RDB storage.
Two things make that safe:
- every worker seeds its sampler differently (`sweep_seed`), so workers started at the same moment
  never replay each other's suggestions, while one worker on an empty study stays reproducible;
- every worker stamps the trials it runs with its owner (`claim_trial`) and keeps an Optuna heartbeat
  for them (`Heartbeat`), so that a trial whose worker died (kill -9, a lost node) is told FAIL the
  next time a sweep opens the study (`fail_dead_workers_trials`), while a live worker's trial is left
  alone.

The resolvers run when Hydra builds the Optuna sweeper. They are resolvers, not callback edits of the
sweeper config, because Hydra refuses a sweep whose jobs' `hydra.sweeper` differs from the primary's.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# More trials than a study ever holds: the seeds of two workers never meet however many trials each
# launch finds in the study (seed + trials + STRIDE x worker).
WORKER_STRIDE = 1_000_003
OWNER_ATTR = "sweep_worker"
WORKER_KEY = "hydra.callbacks.sweep.worker"


def sweep_batch(launcher_jobs: int) -> int:
    """Trials the Optuna sweeper asks per batch: the launcher's parallelism (joblib's -1 = all CPUs)."""
    return (os.cpu_count() or 1) if launcher_jobs < 1 else launcher_jobs


def sweep_seed(seed: int, storage: Any, study_name: Any, worker: Any) -> int:
    """The sampler seed of this launch of this worker: `seed + trials in the study + STRIDE x worker`.

    A seeded sampler built afresh replays the same suggestions. The trial count makes a re-launch that
    continues a study new, and still reproducible; the worker number separates workers launched at the
    same moment, which all see the same trial count. Worker 0 (a lone sweep) gets `seed + trials`.
    """
    study = load_study(storage, study_name)
    trials = len(study.trials) if study is not None else 0
    return (seed + trials + WORKER_STRIDE * worker_number(worker_id(worker))) % 2**32


def worker_id(worker: Any) -> str:
    """This process's name among the study's workers, from `hydra.callbacks.sweep.worker`.

    `auto`: the SLURM job-array task and task rank when SLURM set them (a job array of sweeps, or
    `srun -n N`), else `0`; `pid`: host name and process id (distinct, but not reproducible); anything
    else names the worker as given (`0`, `1`, ... for sweeps started by hand).
    """
    worker = str(worker)
    if worker == "auto":
        task, rank = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_PROCID")
        return "0" if task is None and rank is None else f"slurm-{task or 0}.{rank or 0}"
    if worker == "pid":
        return f"{socket.gethostname()}-{os.getpid()}"
    return worker


def worker_number(worker: str) -> int:
    """`3` for worker `3`; a stable 32-bit hash for a worker named otherwise."""
    if worker.isdigit():
        return int(worker)
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:4], "big")


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
    if not url.startswith("sqlite:///"):
        return True
    return Path(url[len("sqlite:///"):].split("?", 1)[0]).exists()


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


def owner_record(worker: str) -> dict[str, Any]:
    return {"worker": worker, "host": socket.gethostname(), "pid": os.getpid(), "process_space": process_space()}


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
    asks: record this worker as the trial's owner and beat once at once, since Optuna never finds a
    trial stale that has no heartbeat at all (an in-memory study has no heartbeat, and no other worker)."""
    worker = worker_id(OmegaConf.select(config, WORKER_KEY, default="auto"))
    trial.set_user_attr(OWNER_ATTR, owner_record(worker))
    record_heartbeat = getattr(trial.storage, "record_heartbeat", None)
    if record_heartbeat is not None:
        record_heartbeat(trial._trial_id)
    reseed_if_worker_name_is_taken(trial.study, worker)


def reseed_if_worker_name_is_taken(study: Any, worker: str) -> None:
    """Two live sweeps under one worker name started with the same seed when they found the same number of
    trials, and then replay each other's suggestions. Once per process, on finding a namesake: reseed
    this sampler at random (their first trials may match, the rest will not) and say how to avoid it."""
    from optuna.trial import TrialState

    if worker in _reseeded_names:
        return
    for other in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = other.user_attrs.get(OWNER_ATTR)
        if isinstance(owner, dict) and owner.get("worker") == worker and not owned_by_this_process(owner):
            _reseeded_names.add(worker)
            study.sampler.reseed_rng()
            log.warning("sweep worker %s is also running as %s (pid %s): reseeded this worker's sampler at random; "
                        "give each sweep process on this study its own hydra.callbacks.sweep.worker=<n>",
                        worker, owner.get("host"), owner.get("pid"))
            return


_reseeded_names: set[str] = set()


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

        study_id = storage.get_study_id_from_name(self.study_name)
        for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            if owned_by_this_process(trial.user_attrs.get(OWNER_ATTR)):
                storage.record_heartbeat(trial._trial_id)


def register_resolvers() -> None:
    OmegaConf.register_resolver("sweep_batch", sweep_batch, replace=True)
    OmegaConf.register_resolver("sweep_seed", sweep_seed, replace=True)

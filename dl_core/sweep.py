"""Optuna sweep helpers behind `conf/hparams_search`: the sweeper, a config resolver, trial liveness.

Several sweep processes ("workers", on one machine or many) may share one study in an RDB storage,
started with the same command and nothing to tell them apart. Two things make that safe:
- the presets' sampler is seeded per trial, from the seed and the trial's number
  (dl_core.sweep_samplers): the storage numbers trials one at a time, so workers never draw the same
  random numbers, and one process on a fresh study stays reproducible. `OptunaSweeper` lets the
  Optuna sweeper build that sampler (and adds pruning, dl_core.sweeper);
- every worker stamps the trials it runs with its owner (`claim_trial`) and keeps an Optuna heartbeat
  for them (`Heartbeat`), so that a trial whose worker died (kill -9, a lost node) is told FAIL the
  next time a sweep opens the study (`fail_dead_workers_trials`), while a live worker's trial is left
  alone.

This module imports neither optuna nor the sweeper plugin at import time: both come with the optional
`sweep` extra, and dl_core.config imports this module for its resolver.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

OWNER_ATTR = "sweep_worker"
TRIAL_SEEDED_SAMPLERS = ("dl_core.sweep_samplers.TrialSeededTPESampler",
                         "dl_core.sweep_samplers.TrialSeededRandomSampler")
# What the Optuna sweeper may build from its config besides Optuna's samplers.
SWEEPER_TARGETS = (*TRIAL_SEEDED_SAMPLERS, "dl_core.sweep.claim_trial")
# The plugin's own allow-list for `hydra.sweeper.sampler` (hydra_optuna_sweeper.optuna_sweeper).
PLUGIN_SAMPLERS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")


class OptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's sweep, with trials that report every epoch to a pruner and a re-evaluation of the
    best trial (`hydra/sweeper=optuna_pruning`, the presets' sweeper; registered with Hydra by the
    `hydra.plugins` entry point in pyproject.toml).

    `pruner`: any Optuna pruner by `_target_` (`hydra/sweeper/pruner=median|hyperband|successive_halving`),
    null for none; `best_of`: run the best trial's parameters again with seeds 0..best_of-1 after the
    trials (0: not). The sweep itself is dl_core.sweeper's `ReportingSweeperImpl`, the plugin's with
    those two additions.

    The plugin instantiates `hydra.sweeper.sampler` under an execution whitelist of Optuna's samplers
    and its own factories only, and Hydra adds to it the targets of an enclosing `execution_whitelist`
    context: this class opens one for the two samplers of dl_core.sweep_samplers and the
    `custom_search_space` hook (which the context makes subject to the whitelist too).
    """

    def __init__(self, sampler: DictConfig, pruner: DictConfig | None = None, best_of: int = 0,
                 **options: Any) -> None:
        from hydra.utils import execution_whitelist, instantiate

        from dl_core.sweeper import ReportingSweeperImpl

        with execution_whitelist(SWEEPER_TARGETS):
            built = instantiate(sampler, _execution_whitelist_=PLUGIN_SAMPLERS)
            self.sweeper = ReportingSweeperImpl(built, pruner, best_of, **options)
        warn_if_seeded_per_process(sampler)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)


def warn_if_seeded_per_process(sampler: DictConfig) -> None:
    """Samplers other than the trial-seeded ones (random, cmaes, grid, ... chosen by hand) draw from one
    stream seeded once per process: say once what that costs on a shared study."""
    if sampler.get("seed") is None or sampler._target_ in TRIAL_SEEDED_SAMPLERS:
        return
    log.warning("hydra.sweeper.sampler: %s is seeded once per process: sweep processes started together on one "
                "study repeat each other's suggestions (a random sampler also repeats a re-launch's); "
                "hydra/sweeper/sampler=tpe_workers or random_workers seed each trial by its number",
                str(sampler._target_).rsplit(".", 1)[-1])


def sweep_batch(launcher_jobs: int) -> int:
    """Trials the Optuna sweeper asks per batch: the launcher's parallelism (joblib's -1 = all CPUs)."""
    return (os.cpu_count() or 1) if launcher_jobs < 1 else launcher_jobs


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
    trial.set_user_attr(OWNER_ATTR, owner_record())
    record_heartbeat = getattr(trial.storage, "record_heartbeat", None)
    if record_heartbeat is not None:
        record_heartbeat(trial._trial_id)


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

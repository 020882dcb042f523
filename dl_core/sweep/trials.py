"""A run as an Optuna trial: it reports its validation loss every epoch and stops when the study's pruner says so.

The sweeper (dl_core.sweep.plugin.OptunaSweeper) asks a trial in its own process and launches the run as a
job, in the same process (basic launcher) or another one (joblib, submitit); it tells the job which
trial it is with three overrides, `trial.storage`, `trial.study_name` and `trial.number`, and the job
reaches the trial through the study's storage. The pruner is not part of an Optuna study, so the
sweeper records its config in the study (`PRUNER_ATTR`) and every job builds it from there: all
processes working on one study prune by the same rule.

The hook is an epoch-end tracker (`TrialReporter.log_epoch`, placed last among a run's trackers, so
that the epoch's checkpoint and metrics.csv are written first). It knows nothing of nn.Modules: an
estimator that trains in rounds (boosted trees) reports by calling its context's trackers with its
history after each round, and stops when one raises `RunPruned` (or reports nothing and is never
pruned). Under DDP rank 0 reports and decides, the decision is broadcast, and every rank raises at
the same epoch.

A pruned run writes metrics.json with what it has (`pruned: true`, the epochs it ran, the best
validation loss so far; no test evaluation) and returns normally: the trial it marked (`PRUNED_ATTR`)
is then stored PRUNED by the sweeper, not FAIL, and counts as no failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dl_core.engine.distributed import Distributed
from dl_core.errors import require

log = logging.getLogger(__name__)

# Study user attribute: the pruner's config (`_target_` + arguments), or None for no pruning.
PRUNER_ATTR = "pruner"
# Trial user attribute set by a job its pruner stopped: the last epoch it ran.
PRUNED_ATTR = "pruned_at_epoch"
# What a recorded pruner config may instantiate.
PRUNER_TARGETS = "optuna.pruners.*"


@dataclass
class TrialConfig:
    """The Optuna trial this run is, set by the Optuna sweeper for each of its jobs (null outside a sweep).

    Attributes:
        storage: the study's storage URL (the sweeper's `hydra.sweeper.storage`).
        study_name: the study's name.
        number: the trial's number in the study; the run reports its validation loss to it every epoch
            and stops when the study's pruner prunes it.
    """

    storage: str | None = None
    study_name: str | None = None
    number: int | None = None

    def validate(self, prefix: str) -> None:
        given = [value is not None for value in (self.storage, self.study_name, self.number)]
        require(all(given) or not any(given), f"{prefix}.storage/study_name/number",
                "set all three (the sweeper does) or none")
        require(self.number is None or self.number >= 0, f"{prefix}.number", f"must be >= 0 (got {self.number})")


class RunPruned(Exception):  # noqa: N818  (not an error: the run ends as its pruner decided)
    """Raised at the end of the epoch whose report the pruner answered with "prune"; carries the history."""

    def __init__(self, trial: int, history: list[dict[str, float]]):
        super().__init__(f"trial {trial} pruned after epoch {history[-1]['epoch']}")
        self.trial, self.history = trial, history


def build_pruner(config: dict[str, Any] | None) -> Any:
    """The pruner a study's record describes; Optuna's NopPruner for none (a study's default would be MedianPruner)."""
    import optuna
    from hydra.utils import instantiate

    if config is None:
        return optuna.pruners.NopPruner()
    return instantiate(config, _execution_whitelist_=(PRUNER_TARGETS,))


class TrialReporter:
    """Reports each epoch's validation loss to the trial and raises `RunPruned` when its pruner says so.

    `trial` is the Optuna trial on rank 0 and None on the other ranks, which only follow rank 0's decision.
    """

    def __init__(self, number: int, trial: Any, ddp: Distributed):
        self.number, self.trial, self.ddp = number, trial, ddp

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        prune = False
        if self.trial is not None:
            last = history[-1]
            self.trial.report(float(last["val_loss"]), step=int(last["epoch"]))
            prune = self.trial.should_prune()
            if prune:
                self.trial.set_user_attr(PRUNED_ATTR, int(last["epoch"]))
        if self.ddp.enabled:
            prune = self.ddp.broadcast(prune)
        if prune:
            raise RunPruned(self.number, history)

    def log_summary(self, metrics: dict[str, Any]) -> None:
        """The final metrics are the sweeper's business (the objective it is returned)."""


def trial_reporters(trial: Any, ddp: Distributed) -> list[TrialReporter]:
    """The run's reporter when it is a trial (`trial.number` set): a list of one, else none.

    A trial that is already finished (the run resumed, or its command run again) is not reported to.
    """
    if trial.number is None:
        return []
    if not ddp.is_main:
        return [TrialReporter(trial.number, None, ddp)]
    optuna_trial = open_trial(trial.storage, trial.study_name, trial.number)
    if optuna_trial is None:
        log.warning("trial %d of study %s is finished: this run trains without reporting to it",
                    trial.number, trial.study_name)
        if ddp.enabled:
            return [TrialReporter(trial.number, None, ddp)]
        return []
    return [TrialReporter(trial.number, optuna_trial, ddp)]


def open_trial(storage_url: str, study_name: str, number: int) -> Any | None:
    """Trial `number` of the study, with the pruner its sweeper recorded; None when that trial is finished."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url)
    study_id = storage.get_study_id_from_name(study_name)
    pruner = build_pruner(storage.get_study_user_attrs(study_id).get(PRUNER_ATTR))
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    if storage.get_trial(trial_id).state.is_finished():
        return None
    return optuna.trial.Trial(study, trial_id)


def pruned_metrics(history: list[dict[str, float]]) -> dict[str, Any]:
    """What a pruned run knows: the epochs it ran and its best validation loss so far (no test evaluation)."""
    best = min(history, key=lambda entry: entry["val_loss"])
    return {"pruned": True, "epochs": len(history), "best_epoch": int(best["epoch"]), "val_loss": best["val_loss"],
            "stopped_early": True, "train_time_s": history[-1]["time_s"]}

"""What dl_core adds to hydra-optuna-sweeper's sweep: trials that report every epoch (pruning) and a
re-evaluation of the best trial over seeds.

`ReportingSweeperImpl` is the plugin's `OptunaSweeperImpl` with three changes, each at a seam the
plugin already has:
- each job's overrides (`_configure_trials`) also say which trial it is (`trial.storage`,
  `trial.study_name`, `trial.number`), so the job reports to it through the study's storage
  (dl_core.pruning);
- the study's storage is a `PrunedTrialsStorage`: the plugin tells COMPLETE every job that returned a
  number and FAIL every job that raised, so a job its pruner stopped returns its best value so far and
  marks its trial, and the storage writes that trial's state as PRUNED (with its last reported value,
  as Optuna's own `optimize` does);
- before the sweep, the pruner's config is recorded in the study (every job builds its pruner from
  there; a sweep process asking for another pruner is refused), and after it, with `best_of: N`, the
  best trial's parameters run again with seeds 0..N-1 and are summarised (mean, std, n).

A sweep that could not run as asked (a search space Optuna cannot sample, no trials to run) is refused
before any trial, in one line.

Imported only when a sweep starts: optuna and the plugin come with the optional `sweep` extra.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from types import CodeType
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_optuna_distribution_from_override,
    create_params_from_overrides,
)
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import Trial, TrialState

from dl_core.errors import ConfigError
from dl_core.pruning import PRUNED_ATTR, PRUNER_ATTR
from dl_core.tracking.multirun_summary import SWEPT_OUT, print_summary, write_summary

log = logging.getLogger(__name__)

BEST_OF_DIR = "best_of"
# `Study.best_trial`'s getter: for a study without constraints its only ValueError is "no trial is COMPLETE".
BEST_TRIAL: CodeType = optuna.Study.best_trial.fget.__code__  # type: ignore[union-attr]


class PrunedTrialsStorage(optuna.storages.RDBStorage):
    """An RDB storage that stores a trial its job pruned (`PRUNED_ATTR`) as PRUNED when it is told COMPLETE."""

    def __str__(self) -> str:
        """The URL, as the plugin logs its storage."""
        return self.url

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        if state == TrialState.COMPLETE and PRUNED_ATTR in self.get_trial_user_attrs(trial_id):
            trial = self.get_trial(trial_id)
            state = TrialState.PRUNED
            values = None if trial.last_step is None else [trial.intermediate_values[trial.last_step]]
        return super().set_trial_state_values(trial_id, state, values)


class ReportingSweeperImpl(OptunaSweeperImpl):
    """The plugin's sweep with reporting trials, a recorded pruner and the best trial's re-evaluation."""

    def __init__(self, sampler: Any, pruner: DictConfig | None, best_of: int, **options: Any) -> None:
        super().__init__(sampler=sampler, **options)
        self.pruner = None if pruner is None else OmegaConf.to_container(pruner, resolve=True)
        if best_of < 0:
            raise ConfigError(f"hydra.sweeper.best_of: must be >= 0 (got {best_of}), e.g. 3 to re-run the best "
                              f"trial with seeds 0, 1, 2")
        if self.n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials: must be >= 1 (got {self.n_trials}), the trials this launch "
                              f"adds to the study")
        if self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs: must be >= 1 (got {self.n_jobs}), the trials asked at a time")
        self.best_of = best_of
        self.grid = isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler
        self.storage_url: str | None = None

    def sweep(self, arguments: list[str]) -> None:
        self.search_space(arguments)
        if self.storage is None:
            if self.pruner is not None:
                raise ConfigError("hydra.sweeper.pruner: jobs reach their trial through the study's storage; set "
                                  "hydra.sweeper.storage (e.g. sqlite:///optuna.db) or hydra.sweeper.pruner=null")
        else:
            self.open_study()
        try:
            super().sweep(arguments)
        except ValueError as err:
            # The plugin asks for the best trial once its trials are done; with none COMPLETE (all pruned or
            # failed) Optuna raises, and trials.csv (written next) says what became of them. Any other
            # ValueError is a bug, and keeps its traceback.
            if not raised_in(err, BEST_TRIAL):
                raise
            log.warning("no trial of study %s is COMPLETE: no best trial", self.study_name)
            return
        if self.best_of:
            self.reevaluate_best(arguments)

    def search_space(self, arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, Any], list[str]]:
        """The sweep's overrides (hydra.sweeper.params, then the command line's) as the plugin splits them: the
        search space, the fixed parameters (a key given both ways is fixed, as in the plugin's sweep) and the
        other overrides. A space Optuna cannot sample is refused here, before any trial, naming its key: the
        plugin's sweep would raise a ValueError halfway, once the study is open."""
        overrides = self._parse_sweeper_params_config() + arguments
        for override in OverridesParser.create().parse_overrides(overrides):
            if override.is_delete():
                continue
            try:
                create_optuna_distribution_from_override(override)
            except ValueError as err:
                raise ConfigError(f"{override.input_line}: Optuna cannot sample this search space: "
                                  f"{str(err).rstrip('.')}; README.md (\"Sweep hyperparameters\") lists the forms"
                                  ) from None
        space, fixed, fixed_overrides = create_params_from_overrides(overrides)
        space = {name: distribution for name, distribution in space.items() if name not in fixed}
        continuous = [name for name, distribution in space.items()
                      if isinstance(distribution, FloatDistribution) and distribution.step is None]
        if self.grid and continuous:
            raise ConfigError(f"{', '.join(continuous)}: grid sampling (hydra/sweeper/sampler=grid) needs a finite set "
                              f"of values for each key: choice(...), range(...) or int(interval(...)), not an interval "
                              f"of floats")
        return space, fixed, fixed_overrides

    def open_study(self) -> None:
        """Create or load the study on a storage that stores pruned trials as PRUNED, and record the pruner."""
        self.storage_url = str(self.storage)
        self.storage = PrunedTrialsStorage(self.storage_url)
        direction = self._get_directions()
        if self.pruner is not None and direction != ["minimize"]:
            raise ConfigError(f"hydra.sweeper.pruner: trials report their validation loss each epoch (lower is "
                              f"better), so pruning needs objective.direction=minimize (got {direction}); prune "
                              f"on a loss (objective.metric=val_loss) or set hydra.sweeper.pruner=null")
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, directions=direction,
                                    load_if_exists=True)
        self.study_name = study.study_name  # a study created without a name got one: the jobs need it
        record_pruner(study, self.pruner)

    def _configure_trials(self, trials: list[Trial], *args: Any) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, *args)
        if self.storage_url is None:
            return overrides
        return [(*job, *trial_overrides(self.storage_url, str(self.study_name), trial.number))
                for job, trial in zip(overrides, trials, strict=True)]

    def reevaluate_best(self, arguments: list[str]) -> None:
        """Run the best trial's parameters with seeds 0..best_of-1 (not as trials: nothing is pruned or told)
        into `<sweep dir>/best_of/trial_<n>/seed_<s>`, then write and print their summary there."""
        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        best = study.best_trial
        _, fixed, fixed_overrides = self.search_space(arguments)
        base = [f"{name}={value}" for name, value in {**fixed, **best.params}.items() if name not in SWEPT_OUT]
        subdir = f"{BEST_OF_DIR}/trial_{best.number}"
        jobs = [(*base, *fixed_overrides, f"seed={seed}", f"hydra.sweep.subdir={subdir}/seed_{seed}")
                for seed in range(self.best_of)]
        log.info("best trial %d (%s %.6g): running its parameters with seeds 0..%d", best.number,
                 self.config.objective.metric, best.value, self.best_of - 1)
        returns = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
        self.job_idx += len(returns)
        folder = Path(self.sweep_dir) / subdir
        table = write_summary(folder, SWEPT_OUT, str(self.config.objective.metric))
        print_summary(table, folder, f"best trial {best.number} over seeds 0..{self.best_of - 1}")


def raised_in(err: BaseException, code: CodeType) -> bool:
    """Whether `err` was raised inside the function whose code is `code` (its traceback passes through it)."""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def trial_overrides(storage_url: str, study_name: str, number: int) -> tuple[str, ...]:
    """The overrides that tell a job its trial (values quoted: a storage URL holds `:`, `/`, `?` and `=`)."""
    return (f"trial.storage={quote(storage_url)}", f"trial.study_name={quote(study_name)}", f"trial.number={number}")


def quote(value: str) -> str:
    """`value` as a quoted string of Hydra's override grammar: a quote is escaped, and so are the backslashes
    just before a quote or the closing quote (any other backslash is literal there)."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), value)
    return f"'{escaped}'"


def record_pruner(study: optuna.Study, pruner: dict[str, Any] | None) -> None:
    """Record the pruner's config in the study, or refuse a sweep that asks for another one than recorded.

    Written, then read back: of two processes that record different pruners at the same moment, the one
    that reads the other's is refused.
    """
    if PRUNER_ATTR not in study.user_attrs:
        study.set_user_attr(PRUNER_ATTR, pruner)
    recorded = optuna.load_study(study_name=study.study_name, storage=study._storage).user_attrs[PRUNER_ATTR]
    if recorded != pruner:
        raise ConfigError(f"hydra.sweeper.pruner: study {study.study_name} prunes with {describe(recorded)}, and every "
                          f"process on a study must prune alike; pass the same pruner (hydra.sweeper.pruner="
                          f"{describe(recorded)}) or another hydra.sweeper.study_name (got {describe(pruner)})")


def describe(pruner: dict[str, Any] | None) -> str:
    """A pruner config as a Hydra override value: `{_target_:optuna.pruners.MedianPruner,n_startup_trials:5}`."""
    if pruner is None:
        return "null"
    return "{" + ",".join(f"{key}:{value}" for key, value in pruner.items()) + "}"

"""What dl_core adds to hydra-optuna-sweeper's sweep: trials that report every epoch (pruning) and a
re-evaluation of the best trial over seeds.

`ReportingSweeperImpl` is the plugin's `OptunaSweeperImpl` with three changes, each at a seam the
plugin already has (reached through dl_core.sweep.optuna_adapter, the one module that touches its
private API):
- each job's overrides also say which trial it is (`trial.storage`, `trial.study_name`,
  `trial.number`), so the job reports to it through the study's storage (dl_core.sweep.trials);
- the study's storage is a `PrunedTrialsStorage`: the plugin tells COMPLETE every job that returned a
  number and FAIL every job that raised, so a job its pruner stopped returns its best value so far and
  marks its trial, and the storage writes that trial's state as PRUNED (with its last reported value,
  as Optuna's own `optimize` does);
- before the sweep, the pruner's config and the config the study is about (`study_config`) are
  recorded in the study (every job builds its pruner from there; a sweep process asking for another
  pruner, or a sweep of another config, is refused), and after it, with `best_of: N`, the best trial's
  parameters run again with seeds 0..N-1 and are summarised (mean, std, n).

A sweep that could not run as asked (a search space Optuna cannot sample, no trials to run) is refused
before any trial, in one line.

Imported only when a sweep starts: optuna and the plugin come with the optional `sweep` extra.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import CodeType
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import Trial, TrialState

from dl_core.data.fingerprint import changed, data_fingerprint, described
from dl_core.errors import ConfigError, raised_in
from dl_core.sweep.optuna_adapter import PluginSweep, check_distribution, split_overrides
from dl_core.sweep.trials import PRUNED_ATTR, PRUNER_ATTR
from dl_core.tracking.identity import computed_config
from dl_core.tracking.multirun_summary import SWEPT_OUT, print_summary, write_summary

log = logging.getLogger(__name__)

BEST_OF_DIR = "best_of"
# What a job that ran in a directory records there (Hydra's overrides, as the multirun summary reads them).
JOB_RECORD = Path(".hydra", "overrides.yaml")
# Study user attribute: what the study is about (`study_config`), recorded by its first launch.
STUDY_CONFIG_ATTR = "fixed_config"
# Keys that choose the data file: a sweep over one of them has no one file to record.
DATA_FILE_KEYS = ("data", "data.source", "data.path", "data.name", "data.cache_dir")
# Differing keys a refusal names before it only counts the rest.
SHOWN_DIFFERENCES = 3
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


class ReportingSweeperImpl(PluginSweep):
    """The plugin's sweep with reporting trials, a recorded pruner and config, and the best trial's re-evaluation."""

    def __init__(self, sampler: Any, pruner: DictConfig | None, best_of: int, **options: Any) -> None:
        super().__init__(sampler=sampler, **options)
        self.pruner = None if pruner is None else OmegaConf.to_container(pruner, resolve=True)
        if best_of < 0:
            raise ConfigError(f"hydra.sweeper.best_of: must be >= 0 (got {best_of}), e.g. 3 to re-run the best "
                              f"trial with seeds 0, 1, 2")
        if self.n_trials < 1 and not (self.n_trials == 0 and best_of):
            raise ConfigError(f"hydra.sweeper.n_trials: must be >= 1 (got {self.n_trials}), the trials this launch "
                              f"adds to the study (0 only with hydra.sweeper.best_of, to re-evaluate its best trial)")
        if self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs: must be >= 1 (got {self.n_jobs}), the trials asked at a time")
        self.best_of = best_of
        self.grid = isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler
        self.storage_url: str | None = None

    def sweep(self, arguments: list[str]) -> None:
        space, fixed, fixed_overrides = self.search_space(arguments)
        if self.storage is None:
            if self.pruner is not None:
                raise ConfigError("hydra.sweeper.pruner: jobs reach their trial through the study's storage; set "
                                  "hydra.sweeper.storage (e.g. sqlite:///optuna.db) or hydra.sweeper.pruner=null")
        else:
            composed = self.compose_job(fixed, fixed_overrides)
            data = None if any(key.lstrip("+") in DATA_FILE_KEYS for key in space) else data_fingerprint(composed.data)
            self.open_study(study_config(job_dict(composed), space, data))
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
        overrides = self.params_overrides() + arguments
        for override in OverridesParser.create().parse_overrides(overrides):
            if override.is_delete():
                continue
            try:
                check_distribution(override)
            except ValueError as err:
                raise ConfigError(f"{override.input_line}: Optuna cannot sample this search space: "
                                  f"{str(err).rstrip('.')}; README.md (\"Sweep hyperparameters\") lists the forms"
                                  ) from None
        space, fixed, fixed_overrides = split_overrides(overrides)
        space = {name: distribution for name, distribution in space.items() if name not in fixed}
        continuous = [name for name, distribution in space.items()
                      if isinstance(distribution, FloatDistribution) and distribution.step is None]
        if self.grid and continuous:
            raise ConfigError(f"{', '.join(continuous)}: grid sampling (hydra/sweeper/sampler=grid) needs a finite set "
                              f"of values for each key: choice(...), range(...) or int(interval(...)), not an interval "
                              f"of floats")
        return space, fixed, fixed_overrides

    def compose_job(self, fixed: dict[str, Any], fixed_overrides: list[str]) -> DictConfig:
        """The config each job of this sweep composes before its trial's parameters are added: Hydra's
        overrides and the sweep's fixed ones, composed as the launcher composes a job's."""
        overrides = [f"{name}={value}" for name, value in fixed.items()] + fixed_overrides
        return self.hydra_context.config_loader.load_sweep_config(self.config, overrides)

    def open_study(self, config: dict[str, Any]) -> None:
        """Create or load the study on a storage that stores pruned trials as PRUNED, and record the pruner and
        the config the study is about (`study_config`)."""
        self.storage_url = str(self.storage)
        self.storage = PrunedTrialsStorage(self.storage_url)
        direction = self.directions()
        if self.pruner is not None and direction != ["minimize"]:
            raise ConfigError(f"hydra.sweeper.pruner: trials report their validation loss each epoch (lower is "
                              f"better), so pruning needs objective.direction=minimize (got {direction}); prune "
                              f"on a loss (objective.metric=val_loss) or set hydra.sweeper.pruner=null")
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, directions=direction,
                                    load_if_exists=True)
        self.study_name = study.study_name  # a study created without a name got one: the jobs need it
        record_pruner(study, self.pruner)
        record_study_config(study, config)

    def trial_overrides(self, trial: Trial) -> tuple[str, ...]:
        """Which trial the job is, when the study has a storage the job can reach it through."""
        if self.storage_url is None:
            return ()
        return trial_overrides(self.storage_url, str(self.study_name), trial.number)

    def reevaluate_best(self, arguments: list[str]) -> None:
        """Run the best trial's parameters with seeds 0..best_of-1 (not as trials: nothing is pruned or told)
        into `<sweep dir>/best_of/trial_<n>/seed_<s>`, then write and print their summary there.

        A seed an earlier launch re-evaluated this trial with (its directory holds that job's record) is not run
        again: it was these parameters on the config the study holds (`record_study_config`), and a new run is
        never started in another run's directory."""
        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        best = study.best_trial
        _, fixed, fixed_overrides = self.search_space(arguments)
        base = [f"{name}={value}" for name, value in {**fixed, **best.params}.items() if name not in SWEPT_OUT]
        subdir = f"{BEST_OF_DIR}/trial_{best.number}"
        folder = Path(self.sweep_dir) / subdir
        earlier = [seed for seed in range(self.best_of) if (folder / f"seed_{seed}" / JOB_RECORD).is_file()]
        jobs = [(*base, *fixed_overrides, f"seed={seed}", f"hydra.sweep.subdir={subdir}/seed_{seed}")
                for seed in range(self.best_of) if seed not in earlier]
        kept = f"seed {earlier[0]} ran" if len(earlier) == 1 else f"seeds {', '.join(map(str, earlier))} ran"
        log.info("best trial %d (%s %.6g): running its parameters with seeds 0..%d%s", best.number,
                 self.config.objective.metric, best.value, self.best_of - 1,
                 f"; {kept} in an earlier launch, in {folder}, and not again" if earlier else "")
        if jobs:
            returns = self.launcher.launch(jobs, initial_job_idx=self.job_idx)
            self.job_idx += len(returns)
        table = write_summary(folder, SWEPT_OUT, str(self.config.objective.metric))
        print_summary(table, folder, f"best trial {best.number} over seeds 0..{self.best_of - 1}")


def job_dict(composed: DictConfig) -> dict[str, Any]:
    """A job's config as a study records it: interpolations as written, and without the `hydra` node (how the
    sweep runs, not what a trial computes)."""
    job = OmegaConf.to_container(composed, resolve=False, enum_to_str=True)
    assert isinstance(job, dict)
    job.pop("hydra", None)
    return job


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
    recorded = study.user_attrs[PRUNER_ATTR]  # read from the storage, as every `user_attrs` is
    if recorded != pruner:
        raise ConfigError(f"hydra.sweeper.pruner: study {study.study_name} prunes with {describe(recorded)}, and every "
                          f"process on a study must prune alike; pass the same pruner (hydra.sweeper.pruner="
                          f"{describe(recorded)}) or another hydra.sweeper.study_name (got {describe(pruner)})")


def describe(pruner: dict[str, Any] | None) -> str:
    """A pruner config as a Hydra override value: `{_target_:optuna.pruners.MedianPruner,n_startup_trials:5}`."""
    if pruner is None:
        return "null"
    return "{" + ",".join(f"{key}:{value}" for key, value in pruner.items()) + "}"


def study_config(job: dict[str, Any], swept: Iterable[str], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a study is about, as recorded in it: the config all its trials share, the keys each trial
    sets for itself, and the fingerprint of the data file they all read (`data`, dl_core/data/fingerprint.py;
    None for generated data, or a file the trials sweep).

    The shared config is the job config less the swept keys (each trial's own; Optuna keeps them as its
    parameters) and less the keys that cannot change what a trial computes (dl_core.tracking.identity's
    `computed_config`, the rule a run's fingerprint follows too); two launches whose trials would not be
    comparable must differ in it. Values are kept as written,
    interpolations unresolved: a path built from `${paths.data_dir}` or `${oc.env:HOME}` names the same file
    for workers whose checkouts or homes differ, while another file given by its path is another config.
    The card's index in `hardware.device` (cuda:0, cuda:1) is kept out: which card of a kind a worker
    takes is where a trial runs, not what it computes.
    """
    keys = sorted(key.lstrip("+") for key in swept)
    return {"config": computed_config(job, keys), "swept": keys, "data": data}


def record_study_config(study: optuna.Study, config: dict[str, Any]) -> None:
    """Record what the study is about (`study_config`), or refuse a sweep whose config differs from the record.

    Written, then read back, as the pruner is: launches of one command (workers started together) all read
    what they wrote, and of two launches that record different configs at the same moment, one that reads
    the other's record is refused. A study an earlier version left has trials and no record: its next launch
    records its own config, saying so, and later launches must match that.
    """
    if STUDY_CONFIG_ATTR not in study.user_attrs:
        earlier = len(study.get_trials(deepcopy=False))
        if earlier:
            log.warning("study %s has %d trials from before a study recorded its config: recorded this launch's, "
                        "which later launches must match", study.study_name, earlier)
        study.set_user_attr(STUDY_CONFIG_ATTR, config)
    differ = config_differences(study.user_attrs[STUDY_CONFIG_ATTR], config)
    if differ:
        shown = ", ".join(f"{key} (saved {saved}, given {given})" for key, saved, given in differ[:SHOWN_DIFFERENCES])
        more = f", ... ({len(differ)} in all)" if len(differ) > SHOWN_DIFFERENCES else ""
        raise ConfigError(f"study {study.study_name} holds trials of another config than this sweep's: {shown}{more}; "
                          f"pass the same settings as its earlier sweeps, or start another study with "
                          f"hydra.sweeper.study_name=<name>")
    recorded, current = study.user_attrs[STUDY_CONFIG_ATTR].get("data"), config["data"]
    if changed(recorded, current):
        raise ConfigError(f"{recorded['key']}: {current['file']} changed since study {study.study_name} ran its "
                          f"trials on it ({described(recorded, current)}), and a study holds trials of one data set; "
                          f"restore that file, or start another study on this data with "
                          f"hydra.sweeper.study_name=<name>")


def config_differences(saved: dict[str, Any], given: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, saved value, given value) for each key in which two `study_config` records differ, in the given
    config's order, values as a refusal shows them.

    A key one record sweeps and the other fixes differs: the trials that fixed it do not carry its value as
    a parameter, so the study's best parameters would not say how to reproduce them. A key only one record
    has is no difference: the schema gained or lost it since the study was recorded (a new key's default
    keeps the old behaviour).
    """
    return _differences(_with_swept(saved), _with_swept(given), "")


class _Swept:
    """Stands for a swept key's value when two records are compared."""


SWEPT = _Swept()


def _with_swept(record: dict[str, Any]) -> dict[str, Any]:
    tree = copy.deepcopy(record["config"])
    for key in record["swept"]:
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = SWEPT
    return tree


def _differences(saved: dict[str, Any], given: dict[str, Any], prefix: str) -> list[tuple[str, str, str]]:
    found = []
    for key, value in given.items():
        if key not in saved:
            continue
        if isinstance(value, dict) and isinstance(saved[key], dict):
            found += _differences(saved[key], value, f"{prefix}{key}.")
        elif _canonical(saved[key]) != _canonical(value):
            found.append((f"{prefix}{key}", _shown(saved[key]), _shown(value)))
    return found


def _canonical(value: Any) -> str:
    """A value as JSON, as the study stores it (so NaN equals NaN, and a tuple its list)."""
    return "<swept>" if value is SWEPT else json.dumps(value, sort_keys=True)


def _shown(value: Any) -> str:
    """A value in a refusal: a string (a path) in full, a list or mapping cut short."""
    if value is SWEPT:
        return "swept"
    if isinstance(value, str):
        return value
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


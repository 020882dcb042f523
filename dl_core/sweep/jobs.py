"""The jobs a multirun is about to launch, as far as they are known before it launches any: what the run wing
checks before the first job starts (dl_core/runs/multirun.py), so that a job refused for its config is refused
before any other job trains, and before a study asks a trial that would then be left RUNNING.

Hydra's basic sweeper launches every combination of the swept values, numbered from 0: those are its jobs,
as its own `split_arguments` lists them. An Optuna sweep's jobs are the trials it will ask, unknown before it
asks them: one job stands for them all, with each swept key at a value its distribution allows (the first
choice, the low end of an interval), so that a key no schema has, or a config every trial shares, is refused
up front; it also stands for their directories, one per job number of the launch (0..n_trials-1: every launch
numbers its jobs from 0 again). Another sweeper's jobs are not known here: its jobs are checked as they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA_SWEEPERS = ("dl_core.sweep.plugin.OptunaSweeper",
                   "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper")


@dataclass(frozen=True)
class PlannedJob:
    """A job's overrides, and the numbers of the jobs it stands for, which their directories (`hydra.sweep.subdir`)
    are usually named by: its own for each of the basic sweeper's jobs, 0..n_trials-1 for an Optuna sweep's."""

    overrides: list[str]
    numbers: range


def planned_jobs(config: DictConfig, parser: OverridesParser) -> list[PlannedJob]:
    """The jobs of the multirun `config` describes (`parser` reads overrides as its sweeper does: with the config
    loader, for `glob(...)` over a group's options)."""
    sweeper = config.hydra.sweeper
    target = str(sweeper.get("_target_"))
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    arguments = [*params, *config.hydra.overrides.task]
    if target == BASIC_SWEEPER:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        [jobs] = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
        return [PlannedJob(list(overrides), range(number, number + 1)) for number, overrides in enumerate(jobs)]
    if target in OPTUNA_SWEEPERS:
        return [PlannedJob(representative_trial(arguments, parser), range(int(sweeper.n_trials)))]
    return []


def launches_study(config: DictConfig) -> bool:
    """Whether the multirun is a launch of an Optuna study: its sweep dir is the study's, which every launch of the
    study shares, and its job numbers start from 0 at each launch, so a trial's directory must be named by more
    than its job number (the presets add the launch's start time)."""
    return str(config.hydra.sweeper.get("_target_")) in OPTUNA_SWEEPERS


def representative_trial(arguments: list[str], parser: OverridesParser) -> list[str]:
    """The overrides of a trial of an Optuna sweep over `arguments`, composed as the plugin composes a trial's
    (its parameters, then the fixed ones, then the other overrides), with each swept key at the first value of its
    distribution. A search space Optuna cannot sample is the sweeper's to refuse, naming it: the keys that are not
    swept stand for the trial then."""
    from dl_core.sweep.optuna_adapter import split_overrides

    try:
        space, fixed, others = split_overrides(arguments)
    except ValueError:
        return [override.input_line for override in parser.parse_overrides(arguments)
                if not override.is_sweep_override() and override.input_line is not None]
    params = {name: first_value(distribution) for name, distribution in space.items() if name not in fixed}
    return [f"{name}={value}" for name, value in {**params, **fixed}.items()] + others


def first_value(distribution: Any) -> Any:
    """A value `distribution` can take: its first choice, or the low end of its interval."""
    choices = getattr(distribution, "choices", None)
    return choices[0] if choices is not None else distribution.low

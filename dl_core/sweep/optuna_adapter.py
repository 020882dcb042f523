"""Every touch of hydra-optuna-sweeper's and Optuna's private API, in this one file: an upgrade of either
is checked here, and nowhere else in dl_core names a private attribute or module of theirs
(tests/test_optuna_adapter.py holds the rest of the package to that).

Each entry says what it reaches and why nothing public serves:
- `PluginSweep`: the plugin's sweep, `OptunaSweeperImpl` of its private `_impl` module (the public
  `OptunaSweeper` only wraps it), with its private seams under public names: the study's directions
  (`_get_directions`), the sweep's `hydra.sweeper.params` as overrides (`_parse_sweeper_params_config`),
  and the overrides each trial's job is launched with (`_configure_trials`), to which a subclass adds.
- `check_distribution`, `split_overrides`: how the plugin reads a search space from overrides (public
  functions of `_impl`), so that a space it cannot sample is refused before the sweep starts.
- `trial_id`: a trial's id in its storage (`_trial_id`), which the storage's heartbeat is recorded by and
  which neither `Trial` nor `FrozenTrial` exposes.
- `reseed`, `use_random_sampler`: a sampler's random state (`_rng`) and TPE's start-up sampler
  (`_random_sampler`), which the trial-seeded samplers reseed and replace; Optuna has no seam for either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.types import Override
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_optuna_distribution_from_override,
    create_params_from_overrides,
)
from optuna.distributions import BaseDistribution
from optuna.trial import Trial


class PluginSweep(OptunaSweeperImpl):
    """hydra-optuna-sweeper's sweep, with its private seams named."""

    def directions(self) -> list[str]:
        """The study's directions, as the plugin reads `direction` (a name or a list of them)."""
        return self._get_directions()

    def params_overrides(self) -> list[str]:
        """`hydra.sweeper.params` as overrides, before the command line's."""
        return self._parse_sweeper_params_config()

    def trial_overrides(self, trial: Trial) -> tuple[str, ...]:
        """What the job of `trial` gets besides the trial's parameters: nothing here, a subclass adds."""
        return ()

    def _configure_trials(self, trials: list[Trial], *args: Any) -> Sequence[Sequence[str]]:
        overrides = super()._configure_trials(trials, *args)
        return [(*job, *self.trial_overrides(trial)) for job, trial in zip(overrides, trials, strict=True)]


def check_distribution(override: Override) -> None:
    """Raise the plugin's ValueError for an override Optuna cannot sample (an empty interval, ...)."""
    create_optuna_distribution_from_override(override)


def split_overrides(overrides: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, Any], list[str]]:
    """The plugin's split of a sweep's overrides: search space, fixed parameters, other overrides."""
    return create_params_from_overrides(overrides)


def trial_id(trial: Any) -> int:
    """The storage's id of a `Trial` or `FrozenTrial` (not its number within the study)."""
    return trial._trial_id


def reseed(sampler: Any, seed: int) -> None:
    """Seed the random state a Random or TPE sampler draws from."""
    sampler._rng.rng.seed(seed)


def use_random_sampler(tpe: Any, sampler: Any) -> None:
    """Make `sampler` the one a TPE sampler draws its random start-up trials from."""
    tpe._random_sampler = sampler

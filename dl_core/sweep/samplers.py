"""Optuna samplers seeded per trial, for sweep processes ("workers") that share one study.

A sampler seeded once per process draws the same random numbers in every process started with that
seed: two workers launched together on one study suggest the same trials. These samplers instead
reseed their random state at the start of each trial from (seed, trial number). The study's storage
hands out trial numbers one at a time (the RDB storage locks the study's row while it numbers a new
trial), so no two workers ever draw from the same stream, whoever they are and however many run;
and one process stays reproducible: the same seed on a fresh study gives the same trials.

Imported only when a sweep builds its sampler: optuna is an optional dependency (the `sweep` extra).
"""

from __future__ import annotations

import hashlib
from typing import Any

from optuna.samplers import RandomSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from dl_core.sweep.optuna_adapter import reseed, use_random_sampler


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial `number`'s draws: a hash, so that seeds 0 and 1 do not give trial 0 of one the
    stream of trial 1 of the other (as `seed + number` would)."""
    digest = hashlib.sha256(f"{seed}/{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class TrialSeeded:
    """Reseeds the sampler's random state from (seed, trial number) in `before_trial`, which Optuna calls
    inside `study.ask()` once the trial has its number.

    With seed None the sampler keeps Optuna's behaviour: a random state per process, never reseeded.
    """

    base_seed: int | None

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if self.base_seed is not None:
            reseed(self, trial_seed(self.base_seed, trial.number))
        super().before_trial(study, trial)  # type: ignore[misc]


class TrialSeededRandomSampler(TrialSeeded, RandomSampler):
    """Optuna's RandomSampler, seeded per trial (`hydra/sweeper/sampler=random_workers`)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.base_seed = seed


class TrialSeededTPESampler(TrialSeeded, TPESampler):
    """Optuna's TPESampler, seeded per trial (`hydra/sweeper/sampler=tpe_workers`, the presets' sampler).

    TPE draws from two random states: its own (candidates from the Parzen estimator) and its
    RandomSampler's (the random start-up trials). Both are reseeded: the random sampler is a trial-seeded
    one, which TPESampler.before_trial calls.
    """

    def __init__(self, *, seed: int | None = None, **tpe_options: Any) -> None:
        super().__init__(seed=seed, **tpe_options)
        self.base_seed = seed
        use_random_sampler(self, TrialSeededRandomSampler(seed=seed))

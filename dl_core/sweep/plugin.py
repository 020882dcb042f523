"""The Hydra sweeper behind `conf/hparams_search` (`hydra/sweeper=optuna_pruning`), and its config resolver.

Several sweep processes ("workers", on one machine or many) may share one study in an RDB storage,
started with the same command and nothing to tell them apart. Two things make that safe:
- the presets' sampler is seeded per trial, from the seed and the trial's number
  (dl_core.sweep.samplers): the storage numbers trials one at a time, so workers never draw the same
  random numbers, and one process on a fresh study stays reproducible. `OptunaSweeper` lets the
  Optuna sweeper build that sampler (and adds pruning, dl_core.sweep.sweeper);
- every worker stamps the trials it runs with its owner and keeps an Optuna heartbeat for them
  (dl_core.sweep.workers), so that a trial whose worker died is told FAIL the next time a sweep opens
  the study, while a live worker's trial is left alone.

This module imports neither optuna nor the sweeper plugin at import time: both come with the optional
`sweep` extra, and the run wing's config imports this module for its resolver.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)

TRIAL_SEEDED_SAMPLERS = ("dl_core.sweep.samplers.TrialSeededTPESampler",
                         "dl_core.sweep.samplers.TrialSeededRandomSampler")
# What the Optuna sweeper may build from its config besides Optuna's samplers.
SWEEPER_TARGETS = (*TRIAL_SEEDED_SAMPLERS, "dl_core.sweep.workers.claim_trial")
# The plugin's own allow-list for `hydra.sweeper.sampler` (hydra_optuna_sweeper.optuna_sweeper).
PLUGIN_SAMPLERS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")


class OptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's sweep, with trials that report every epoch to a pruner and a re-evaluation of the
    best trial (`hydra/sweeper=optuna_pruning`, the presets' sweeper; registered with Hydra by the
    `hydra.plugins` entry point in pyproject.toml).

    `pruner`: any Optuna pruner by `_target_` (`hydra/sweeper/pruner=median|hyperband|successive_halving`),
    null for none; `best_of`: run the best trial's parameters again with seeds 0..best_of-1 after the
    trials (0: not). The sweep itself is dl_core.sweep.sweeper's `ReportingSweeperImpl`, the plugin's with
    those two additions.

    The plugin instantiates `hydra.sweeper.sampler` under an execution whitelist of Optuna's samplers
    and its own factories only, and Hydra adds to it the targets of an enclosing `execution_whitelist`
    context: this class opens one for the two samplers of dl_core.sweep.samplers and the
    `custom_search_space` hook (which the context makes subject to the whitelist too).
    """

    def __init__(self, sampler: DictConfig, pruner: DictConfig | None = None, best_of: int = 0,
                 **options: Any) -> None:
        from hydra.utils import execution_whitelist, instantiate

        from dl_core.sweep.sweeper import ReportingSweeperImpl

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
    """`${sweep_batch:...}`: trials the Optuna sweeper asks per batch, the launcher's parallelism (joblib's -1 =
    all CPUs)."""
    return (os.cpu_count() or 1) if launcher_jobs < 1 else launcher_jobs

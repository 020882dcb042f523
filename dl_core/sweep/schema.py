"""The schema of `hydra/sweeper=optuna_pruning`: hydra-optuna-sweeper's, plus `pruner` and `best_of`.

Imported only where the optional `sweep` extra is installed (the run wing's config registers it then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class OptunaPruningSweeperConf(OptunaSweeperConf):
    """`pruner`: an Optuna pruner by `_target_` (or `hydra/sweeper/pruner=<name>`), null for none.
    `best_of`: after the trials, run the best trial's parameters with seeds 0..best_of-1 (0: not)."""

    _target_: str = "dl_core.sweep.plugin.OptunaSweeper"
    # `_self_` first: the option chosen in the `pruner` group must be merged over the null default, not under it.
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": None}])
    pruner: Any = None
    best_of: int = 0

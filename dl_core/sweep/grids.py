"""The sweeper of the benchmark suites (`hydra/sweeper=grids`, conf/benchmark/): a union of grids.

Hydra's basic sweeper runs one grid, the product of its axes. A published table is rarely one: three seeds at
the first horizon and one at the others, a deterministic baseline once, a slow variant at one horizon only. A
suite lists its grids (`hydra.sweeper.grids`, each a mapping of axis -> comma-separated values, as the basic
sweeper's `params`) and the axes they share (`hydra.sweeper.params`); the jobs are each grid's product, in order,
a job two grids both hold run once. An axis given on the command line replaces that axis in every grid
(`python train.py -m benchmark=ett_long seed=0` runs seed 0 alone), and a plain override reaches every job.
Jobs are launched as the basic sweeper launches them (`max_batch_size` at a time, by the configured launcher).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class GridsSweeperConf:
    """`grids`: the suite's grids, each axis -> values ("0,1,2"); `params`: the axes every grid shares (a grid's
    own axis of the same key replaces it); `max_batch_size`: jobs handed to the launcher at once (null: all)."""

    _target_: str = "dl_core.sweep.grids.GridsSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    grids: list[dict[str, str]] = field(default_factory=list)


def expand(params: dict[str, str], grids: Sequence[dict[str, str]], arguments: Sequence[str],
           parser: OverridesParser | None = None) -> list[list[str]]:
    """The jobs of a union of grids, each a list of overrides: every grid's product over its axes (the shared
    `params`, then its own, then the command line's `arguments`, a later value of a key replacing an earlier
    one), in order, without repeats."""
    parser = parser or OverridesParser.create()
    jobs: dict[tuple[str, ...], None] = {}
    for grid in grids or [{}]:
        axes: dict[str, list[str]] = {}
        for override in parser.parse_overrides([*(f"{k}={v}" for k, v in {**params, **grid}.items()), *arguments]):
            key = override.get_key_element()
            if not override.is_sweep_override():
                axes[key] = [f"{key}={override.get_value_element_as_str()}"]
            elif override.is_discrete_sweep():
                axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
            else:
                raise ConfigError(f"{key}: hydra/sweeper=grids takes lists of values (a,b,c, range(...), choice(...)), "
                                  f"not {override.input_line}")
        jobs.update(dict.fromkeys(itertools.product(*axes.values())))
    return [list(job) for job in jobs]


class GridsSweeper(Sweeper):
    """The union of a suite's grids (module docstring), launched by the configured launcher."""

    def __init__(self, max_batch_size: int | None = None, params: DictConfig | None = None,
                 grids: Sequence[DictConfig] = ()) -> None:
        self.max_batch_size = max_batch_size
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.grids = [{str(k): str(v) for k, v in grid.items()} for grid in grids]
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = expand(self.params, self.grids, arguments, parser)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or len(jobs)
        log.info("%d jobs from %d grid(s)", len(jobs), max(len(self.grids), 1))
        returns: list[Sequence[JobReturn]] = []
        for start in range(0, len(jobs), size):
            batch = jobs[start:start + size]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            for result in results:
                _ = result.return_value  # a failed job raises here, as with the basic sweeper
            returns.append(results)
        return returns


def register() -> Any:
    """Make the sweeper known to Hydra (its plugins are found by entry point or namespace package, and this one
    ships with dl_core itself); return its schema, for the config store."""
    Plugins.instance().register(GridsSweeper)
    return GridsSweeperConf

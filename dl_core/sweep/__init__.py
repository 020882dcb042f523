"""The sweep wing: Optuna sweeps of train.py (`-m hparams_search=<preset>`), on one machine or many workers.

- plugin.py: the Hydra sweeper `OptunaSweeper` (`hydra/sweeper=optuna_pruning`) and its resolver;
  schema.py: its config.
- sweeper.py: the sweep itself, hydra-optuna-sweeper's with reporting trials, a recorded pruner and
  config, and the best trial's re-evaluation.
- samplers.py: samplers seeded per trial; workers.py: which worker runs a trial, heartbeats, failing
  dead workers' trials; trials.py: a run as a trial that reports each epoch and is pruned.
- summary.py: the Hydra callback that writes trials.csv, best_params.yaml and plots after a sweep.
- optuna_adapter.py: every touch of hydra-optuna-sweeper's and Optuna's private API.

The wing imports the core and never the run wing: a trial reaches its run only through the overrides
it is launched with, and the run reaches its trial through the tracker it reports to
(`trials.TrialReporter`). The import rule is tests/test_layers.py's.

`OptunaSweeper` is also importable from here: an environment installed before this package existed
names `dl_core.sweep:OptunaSweeper` as its Hydra plugin entry point, until it is installed again.
"""

from dl_core.sweep.plugin import OptunaSweeper

__all__ = ["OptunaSweeper"]

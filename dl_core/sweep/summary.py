"""Sweep summary: a Hydra callback that reads the Optuna study back from its storage after a sweep.

The Optuna sweeper keeps every trial in its RDB storage but leaves only `optimization_results.yaml`
behind. This callback writes what a researcher looks at next, in the sweep dir: `trials.csv` (every
trial of the study: params, objective, state, duration, epochs reported, worker as host:pid),
`best_params.yaml`, and PNG plots (the intermediate values plot shows where pruned trials stopped).
Failed trials (an exception or a non-finite loss in the job) are recorded by the sweeper as FAIL and
the sweep goes on (`max_failure_rate: 1.0`); this callback counts them and ends the process with exit
status `EXIT_TRIALS_FAILED` when any trial of this launch failed, so scripts can tell. Pruned trials
(PRUNED) are counted apart and are no failure.

It also keeps this sweep a good citizen of a study shared by several workers (dl_core.sweep.workers): at the
start it fails the trials that dead workers left RUNNING (counted as `failed_stale`), and while the
sweep runs it keeps the heartbeat of this worker's trials.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError, exit_when_done
from dl_core.sweep.workers import (
    OWNER_ATTR,
    Heartbeat,
    fail_dead_workers_trials,
    load_study,
    owned_by_this_process,
    owner_name,
)

log = logging.getLogger(__name__)

EXIT_TRIALS_FAILED = 3


class SweepSummary(Callback):
    """Configured as `hydra.callbacks.sweep` by the `hparams_search` presets.

    `heartbeat_interval` and `grace_period` (seconds) say how often a live worker beats and how long a
    silent one is given before its RUNNING trials are failed.
    """

    def __init__(self, heartbeat_interval: int = 10, grace_period: int = 60) -> None:
        if not 0 < heartbeat_interval < grace_period:
            raise ConfigError(f"hydra.callbacks.sweep: need 0 < heartbeat_interval < grace_period (got "
                              f"{heartbeat_interval} and {grace_period}), e.g. 10 and 60")
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.first_trial = 0
        self.failed_stale: list[int] = []
        self.heartbeat: Heartbeat | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the sweep dir (the SQLite file lives there and Optuna opens it before any job runs), fail
        the trials of dead workers, remember how many trials the study already has (to tell this launch's
        trials from earlier ones) and start beating for this worker's trials."""
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        storage, name = config.hydra.sweeper.storage, config.hydra.sweeper.study_name
        if storage is None or name is None:
            return
        self.failed_stale = fail_dead_workers_trials(str(storage), str(name), self.heartbeat_interval,
                                                     self.grace_period)
        if self.failed_stale:
            log.warning("study %s: %d trials left RUNNING by a sweep worker that is gone are now FAIL: %s",
                        name, len(self.failed_stale), self.failed_stale)
        study = load_study(storage, name)
        self.first_trial = len(study.trials) if study is not None else 0
        self.heartbeat = Heartbeat(str(storage), str(name), self.heartbeat_interval)
        self.heartbeat.start()

    def __getstate__(self) -> dict[str, Any]:
        """A parallel launcher (joblib) sends the callbacks to its job processes; the heartbeat stays here."""
        return {**self.__dict__, "heartbeat": None}

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        storage, name = config.hydra.sweeper.storage, config.hydra.sweeper.study_name
        if storage is None:
            log.warning("no Optuna study to summarize: set hydra.sweeper.storage to keep trials")
            return
        study = load_study(storage, name)
        if study is None:  # the sweep was refused before it opened its study
            log.info("no study %s to summarize", name)
            return
        counts = write_summary(study, Path(config.hydra.sweep.dir), str(config.objective.metric), self.first_trial,
                               len(self.failed_stale))
        if counts["failed_this_launch"]:
            log.error("%d of %d trials of this sweep failed (see trials.csv and the trials' logs)",
                      counts["failed_this_launch"], counts["trials_this_launch"])
            exit_when_done(EXIT_TRIALS_FAILED)


def write_summary(study: Any, sweep_dir: Path, metric: str, first_trial: int, failed_stale: int = 0) -> dict[str, int]:
    """Write trials.csv, best_params.yaml and plots for `study`; return the trial counts by state.

    `failed_stale`: trials of dead workers this launch failed. `running`: other workers' trials in flight.
    """
    from optuna.trial import TrialState

    columns = ("number", "state", "value", "duration", "datetime_start")
    trials = study.trials_dataframe(attrs=(*columns, "params"))
    if trials.empty:  # Optuna gives a study without trials no columns at all
        trials = pd.DataFrame(columns=list(columns))
    trials = trials.rename(columns={"value": metric})
    trials["duration_s"] = pd.to_timedelta(trials.pop("duration")).dt.total_seconds()
    trials["epochs"] = [len(trial.intermediate_values) for trial in study.trials]
    trials["worker"] = [owner_name(trial.user_attrs.get(OWNER_ATTR)) for trial in study.trials]
    trials.to_csv(sweep_dir / "trials.csv", index=False)

    # Other workers add trials to a shared study meanwhile: this launch's are the ones this process ran.
    this_launch = [t for t in study.trials if t.number >= first_trial
                   and (OWNER_ATTR not in t.user_attrs or owned_by_this_process(t.user_attrs[OWNER_ATTR]))]

    def count(state: TrialState, trials: list[Any]) -> int:
        return sum(t.state == state for t in trials)

    counts = {
        "trials": len(study.trials),
        "complete": count(TrialState.COMPLETE, study.trials),
        "failed": count(TrialState.FAIL, study.trials),
        "pruned": count(TrialState.PRUNED, study.trials),
        "running": count(TrialState.RUNNING, study.trials),
        "failed_stale": failed_stale,
        "trials_this_launch": len(this_launch),
        "failed_this_launch": count(TrialState.FAIL, this_launch),
        "pruned_this_launch": count(TrialState.PRUNED, this_launch),
    }
    best: dict[str, Any] = {"study_name": study.study_name, "direction": study.direction.name.lower(),
                            "objective": metric, **counts}
    if counts["complete"]:
        best.update(best_trial=study.best_trial.number, best_value=study.best_value, best_params=study.best_params)
        write_plots(study, sweep_dir, metric)
    OmegaConf.save(OmegaConf.create(best), sweep_dir / "best_params.yaml")
    log.info("study %s: %d trials (%d complete, %d pruned, %d failed, %d running), this launch %d (%d pruned, %d "
             "failed); best %s %s; %s", study.study_name, counts["trials"], counts["complete"], counts["pruned"],
             counts["failed"], counts["running"], counts["trials_this_launch"], counts["pruned_this_launch"],
             counts["failed_this_launch"], metric, best.get("best_value"), sweep_dir / "trials.csv")
    return counts


def write_plots(study: Any, sweep_dir: Path, metric: str) -> None:
    """Optimization history and slices always; the epochs' validation losses (pruned trials' curves stop where
    they were pruned) once a trial reported any; parameter importances once two trials are complete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # slice plots of categorical params log per axis
    named = {"target_name": metric}
    plots = {"optimization_history": (ovm.plot_optimization_history, named), "slice": (ovm.plot_slice, named)}
    if any(trial.intermediate_values for trial in study.trials):
        plots["intermediate_values"] = (ovm.plot_intermediate_values, {})
    if len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2 and study.best_params:
        plots["param_importances"] = (ovm.plot_param_importances, named)
    for name, (plot, options) in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            axes = plot(study, **options)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.savefig(sweep_dir / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)

"""Sweep summary: a Hydra callback that reads the Optuna study back from its storage after a sweep.

The Optuna sweeper keeps every trial in its RDB storage but leaves only `optimization_results.yaml`
behind. This callback writes what a researcher looks at next, in the sweep dir: `trials.csv` (every
trial of the study: params, objective, state, duration), `best_params.yaml`, and PNG plots. Failed
trials (an exception or a non-finite loss in the job) are recorded by the sweeper as FAIL and the sweep
goes on (`max_failure_rate: 1.0`); this callback counts them and ends the process with exit status
`EXIT_TRIALS_FAILED` when any trial of this launch failed, so scripts can tell.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dl_core.sweep import load_study

log = logging.getLogger(__name__)

EXIT_TRIALS_FAILED = 3


class SweepSummary(Callback):
    """Configured under `hydra.callbacks` by the `hparams_search` presets."""

    def __init__(self) -> None:
        self.first_trial = 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the sweep dir (the SQLite file lives there and Optuna opens it before any job runs) and
        remember how many trials the study already has, to tell this launch's trials from earlier ones."""
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        study = load_study(config.hydra.sweeper.storage, config.hydra.sweeper.study_name)
        self.first_trial = len(study.trials) if study is not None else 0

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        study = load_study(config.hydra.sweeper.storage, config.hydra.sweeper.study_name)
        if study is None:
            log.warning("no Optuna study to summarize: set hydra.sweeper.storage to keep trials")
            return
        counts = write_summary(study, Path(config.hydra.sweep.dir), str(config.objective.metric), self.first_trial)
        if counts["failed_this_launch"]:
            log.error("%d of %d trials of this sweep failed (see trials.csv and the trials' logs)",
                      counts["failed_this_launch"], counts["trials_this_launch"])
            # Hydra calls this hook from a `finally`: when the sweeper itself is raising (a
            # `max_failure_rate` below 1.0 was exceeded), its error is the one to report.
            if sys.exc_info()[1] is None:
                sys.exit(EXIT_TRIALS_FAILED)


def write_summary(study: Any, sweep_dir: Path, metric: str, first_trial: int) -> dict[str, int]:
    """Write trials.csv, best_params.yaml and plots for `study`; return the trial counts by state."""
    from optuna.trial import TrialState

    trials = study.trials_dataframe(attrs=("number", "state", "value", "duration", "datetime_start", "params"))
    trials = trials.rename(columns={"value": metric})
    trials["duration_s"] = trials.pop("duration").dt.total_seconds()
    trials.to_csv(sweep_dir / "trials.csv", index=False)

    def count(state: TrialState, since: int = 0) -> int:
        return sum(t.state == state and t.number >= since for t in study.trials)

    counts = {
        "trials": len(study.trials),
        "complete": count(TrialState.COMPLETE),
        "failed": count(TrialState.FAIL),
        "trials_this_launch": len(study.trials) - first_trial,
        "failed_this_launch": count(TrialState.FAIL, first_trial),
    }
    best: dict[str, Any] = {"study_name": study.study_name, "direction": study.direction.name.lower(),
                            "objective": metric, **counts}
    if counts["complete"]:
        best.update(best_trial=study.best_trial.number, best_value=study.best_value, best_params=study.best_params)
        write_plots(study, sweep_dir, metric)
    OmegaConf.save(OmegaConf.create(best), sweep_dir / "best_params.yaml")
    log.info("study %s: %d trials (%d complete, %d failed), this launch %d (%d failed); best %s %s; %s",
             study.study_name, counts["trials"], counts["complete"], counts["failed"], counts["trials_this_launch"],
             counts["failed_this_launch"], metric, best.get("best_value"), sweep_dir / "trials.csv")
    return counts


def write_plots(study: Any, sweep_dir: Path, metric: str) -> None:
    """Optimization history and slices always; parameter importances once two trials are complete."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm
    from optuna.exceptions import ExperimentalWarning
    from optuna.trial import TrialState

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # slice plots of categorical params log per axis
    plots = {"optimization_history": ovm.plot_optimization_history, "slice": ovm.plot_slice}
    if len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2 and study.best_params:
        plots["param_importances"] = ovm.plot_param_importances
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            axes = plot(study, target_name=metric)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.savefig(sweep_dir / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)

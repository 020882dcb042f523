"""Load a trained run from its directory alone: the best checkpoint carries the estimator's learned
state, the task, the fitted preprocessing, the data spec and the resolved config, so nothing else
about the run is needed. Its metrics.json is read for /metadata only: a run without a readable one
still predicts, with a warning naming the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dl_core.checks import listing
from dl_core.data.bundle import Preprocessor
from dl_core.data.inputs import InputSchema, refuse_unseen
from dl_core.engine.checkpoint import checkpoint_exists, load_checkpoint
from dl_core.engine.estimator import Estimator
from dl_core.engine.hardware import Hardware
from dl_core.errors import ConfigError, DataError, InputError
from dl_core.models.build import load_estimator
from dl_core.models.outputs import interval_pairs
from dl_core.serving.schema import UnseenPolicy
from dl_core.task import Classification, Forecast, Regression, Task

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A trained model ready to predict on raw rows, plus what a client should know about it."""

    run_dir: Path
    estimator: Estimator
    task: Task
    preprocessor: Preprocessor
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    metrics_unavailable: str | None = None  # why `metrics` is None

    @cached_property
    def schema(self) -> InputSchema:
        return self.preprocessor.input_schema()

    @property
    def name(self) -> str:
        """The run directory's last component: what clients see, never the server's file layout."""
        return self.run_dir.resolve().name

    def predict(self, frame: pd.DataFrame, id_columns: Sequence[str] = (),
                unseen_categories: UnseenPolicy = "encode") -> pd.DataFrame:
        """Check raw rows (as a file or a notebook gives them), then predict. The `id_columns` of `frame` lead
        each prediction row with the values of the input row it predicts (for a forecast: the row of its
        target; empty beyond the rows given), so that every prediction can be traced to its row. No rows is an
        `InputError`, as a file with none is for predict.py and an empty list of rows for the server. A category
        no training row had is predicted as unknown with predict.py's warning line per column, or refused with
        `unseen_categories="refuse"`, as predict.py's key of that name does."""
        if len(frame) == 0:
            raise InputError((), "no rows to predict on; pass at least one row")
        ids = id_values(frame, id_columns, "the rows")
        rows = self.schema.validate_frame(frame)
        for unseen in refuse_unseen(self.preprocessor.unseen_categories(rows), unseen_categories):
            log.warning('the rows: %s; pass unseen_categories="refuse" to refuse them', unseen.message())
        return self.predict_checked(rows, ids)

    def predict_checked(self, frame: pd.DataFrame, ids: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predict on rows already validated by the schema's row model (the server's request rows): the
        same table a run writes for its test split, less what new rows cannot know; led by `ids` (one row
        per row of `frame`) where given."""
        rows = self.preprocessor.new_rows(frame, self.task)
        table = rows.table(self.task, self.estimator.predict(rows))
        return table if ids is None else _with_ids(ids, rows.sources(), table)

    def evaluate(self, frame: pd.DataFrame) -> dict[str, float]:
        """Score the run on labelled rows: its input columns and its target column(s), as a file or a notebook
        gives them. The metrics are the run's task's, those metrics.json reports for each split, named without
        the split (the run's own test rows give `rmse` = metrics.json's `test_rmse`), with `n_samples`, the rows
        (tables; those without a target are left out) or complete windows (forecasts) scored."""
        targets = list(self.preprocessor.target_columns)
        missing = [column for column in targets if column not in frame.columns]
        if missing:
            raise InputError((), f"target column(s) {missing} missing; evaluating scores each prediction against its "
                                 f"row's actual value, so the rows need the run's target column(s) {targets}")
        rows = self.schema.validate_frame(frame)
        rows = rows.assign(**{column: frame[column].to_numpy() for column in targets if column not in rows.columns})
        split = self.preprocessor.labelled_rows(rows, self.task)
        metrics = self.task.metrics(self.estimator.predict(split), split.targets().cpu().numpy())
        return {"n_samples": len(split), **metrics}

    def metadata(self) -> dict[str, Any]:
        """Task, model, input columns with types, what the inputs and targets are, and the run's final metrics."""
        schema = self.schema
        return {
            "run": self.name, "task": self.task.name,
            "model": {"class": self.estimator.name, "n_parameters": self.estimator.n_parameters,
                      "config": self.config["model"]},
            "features": [{"name": name, "type": kind, "nullable": name in schema.nullable}
                         for name, kind in schema.columns.items()],
            "metrics": self.metrics,
            **({"metrics_unavailable": self.metrics_unavailable} if self.metrics is None else {}),
            **self.preprocessor.metadata(), **TARGETS[type(self.task)](self.task),
        }


# What a client of the prediction service is told of each task's targets: the quantile levels of the forecast or
# regression columns (empty for point predictions and classes), the classes of a table model (empty for a
# regression: the keys are there so that clients read one shape for every table model).
TARGETS: dict[type, Callable[[Any], dict[str, Any]]] = {
    Forecast: lambda task: {"quantiles": list(task.outputs.levels)},
    Regression: lambda task: {"classes": [], "quantiles": list(task.outputs.levels)},
    Classification: lambda task: {"classes": list(task.classes), "quantiles": []},
}


def load_run(run_dir: str | Path) -> LoadedRun:
    """The run's best state on CPU at full precision, with its task, preprocessing and metrics; for an ensemble of
    runs (dl_core/serving/ensemble.py), its members' as one run."""
    from dl_core.serving.ensemble import is_ensemble, load_ensemble  # which loads each member with this function

    run_dir = Path(run_dir).expanduser()
    if is_ensemble(run_dir):
        return load_ensemble(run_dir)
    path = run_dir / "checkpoints" / "best.ckpt"
    if not checkpoint_exists(path):
        raise ConfigError(f"run_dir: no checkpoints/best.ckpt under {run_dir.resolve()}; pass the directory of a "
                          f"finished training run, e.g. run_dir=outputs/train/runs/<timestamp>")
    state = load_checkpoint(path)
    estimator = load_estimator(state, Hardware(torch.device("cpu"), "32", torch.get_num_threads(), False))
    metrics, unavailable = read_metrics(run_dir / "metrics.json")
    _warn_uncalibrated(path, state)
    return LoadedRun(run_dir, estimator, state["task"], state["preprocessor"], state["config"], metrics, unavailable)


def _warn_uncalibrated(path: Path, state: dict[str, Any]) -> None:
    """A run asked to calibrate its intervals does so once training ends: a checkpoint from before then
    predicts the model's own quantiles, which is said rather than left for the client to notice."""
    task = state["task"]
    asked = state["config"]["trainer"].get("calibrate_intervals", False)
    if asked and interval_pairs(task.outputs.levels) and task.calibration is None:
        log.warning("run_dir: %s holds no interval calibration (the run has not finished); predicting the model's "
                    "own quantiles", path)


def read_metrics(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The run's final metrics, or None and why not (without the server's path, for /metadata): predicting
    needs none of them, so a missing or torn file is a warning naming it, never an error."""
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        problem = None if isinstance(metrics, dict) else "does not hold an object of metrics"
    except FileNotFoundError:
        problem = "is missing (the run has not finished: its best checkpoint so far is used)"
    except json.JSONDecodeError as err:
        problem = f"is not valid JSON ({err})"
    except (OSError, UnicodeDecodeError) as err:
        problem = f"cannot be read ({err.strerror if isinstance(err, OSError) else err})"
    if problem is None:
        return metrics, None
    log.warning("run_dir: %s %s; predicting without the run's metrics (/metadata reports them unavailable)", path,
                problem)
    return None, f"{path.name} {problem}"


def id_values(frame: pd.DataFrame, id_columns: Sequence[str], where: str) -> pd.DataFrame | None:
    """The `id_columns` of `frame`, one row per row of it (None when none are asked for); a column `where`
    (the rows, or the file) lacks is refused naming it."""
    columns = list(dict.fromkeys(id_columns))
    if not columns:
        return None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(f"id_columns: column(s) {missing} not in {where}; its columns: {listing(frame.columns, 30)}")
    return frame[columns].reset_index(drop=True)


def _with_ids(ids: pd.DataFrame, sources: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """`table` led by the ids of each of its rows' input row (`sources`: positions in `ids`, -1 for none)."""
    clash = [column for column in ids.columns if column in table.columns]
    if clash:
        raise DataError(f"id_columns: {clash} would replace columns of the predictions ({listing(table.columns)}); "
                        f"rename them in the rows or leave them out of id_columns")
    if (sources < 0).any():
        ids = ids.astype(object)  # values as given (an integer id stays one) beside the empty cells
    picked = ids.reindex(sources).reset_index(drop=True)
    return pd.concat([picked, table.reset_index(drop=True)], axis=1)

"""An ensemble of finished runs, loaded as one run: the weighted mean of its members' predictions.

`python -m dl_core.runs ensemble` (dl_core/runs/ensemble.py) writes an ensemble's directory: `ensemble.json`
names each member's run directory with the SHA-256 of its best checkpoint and its weight, and `metrics.json` and
`predictions_test.csv` are a run's. `load_run` of that directory loads each member from its own directory once
its checkpoint is the one ensembled: a member changed or removed since is refused by name, never used in its
place. Predict, serve and evaluate then see one `LoadedRun`: the ensemble's rows are validated once against
the columns every member reads, each member prepares them with its own preprocessing (a tree reads raw numbers,
a deep model quantile-normal ones), and the members' predictions are averaged.

What is averaged is what a prediction means, not a model's raw outputs: a regression's values in the target's
units, a classification's class probabilities (the mean of the members' logits would be another model). The
mean goes back into raw outputs of the first member's task, so that the task's metrics, predictions table and
serving read an ensemble as they read any run. A task whose predictions this module cannot average (a
forecast's) is refused by name when the ensemble is made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dl_core.data.bundle import Split
from dl_core.data.inputs import InputSchema, Unseen
from dl_core.engine.checkpoint import checkpoint_exists
from dl_core.errors import ConfigError
from dl_core.models.outputs import POINT
from dl_core.serving.load import LoadedRun, load_run, read_metrics
from dl_core.task import Classification, Regression, Task

ENSEMBLE_FILE = "ensemble.json"
CHECKPOINT = Path("checkpoints") / "best.ckpt"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Averaging:
    """How a task's predictions are averaged: `averaged` turns a member's raw outputs into what is averaged,
    `outputs` turns the mean back into raw outputs of the ensemble's task."""

    averaged: Callable[[Any, np.ndarray], np.ndarray]
    outputs: Callable[[Any, np.ndarray], np.ndarray]


def _standardized(task: Regression, values: np.ndarray) -> np.ndarray:
    """Values in the target's units as the task's raw outputs (its standardized scale), (n, 1)."""
    return task.target_scaler.transform(np.asarray(values, np.float64).reshape(-1, 1))


def _logits(task: Classification, probabilities: np.ndarray) -> np.ndarray:
    """Class probabilities as logits the task reads back into them: their logarithms (softmax undoes them), or
    for two classes the one log-odds. A probability of 0 is a logit of -inf, which both read back as 0."""
    with np.errstate(divide="ignore"):
        logs = np.log(probabilities)
    return logs[:, 1:] - logs[:, :1] if task.d_out == 1 else logs


# The tasks whose members can be averaged, and how.
AVERAGING: dict[type, Averaging] = {
    Regression: Averaging(lambda task, outputs: task.decode(outputs).reshape(-1, 1), _standardized),
    Classification: Averaging(lambda task, outputs: task.probabilities(outputs).astype(np.float64), _logits),
}


def averaged(task: Task, outputs: np.ndarray) -> np.ndarray:
    """What of a member's raw outputs an ensemble averages (float64)."""
    return AVERAGING[type(task)].averaged(task, outputs)


def as_outputs(task: Task, mean: np.ndarray) -> np.ndarray:
    """The mean of what `averaged` gave, as raw outputs of `task`."""
    return AVERAGING[type(task)].outputs(task, mean)


def weighted_mean(values: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    return sum(weight * value for weight, value in zip(weights, values, strict=True)) / float(sum(weights))


def ensemble_task(first: Task) -> Task:
    """The task an ensemble reports with: its first member's, reading point outputs (whatever the member's
    model output in training, a TabM's k members say, the ensemble outputs one prediction per sample)."""
    return first.with_outputs(POINT)


def checkpoint_sha256(run_dir: Path) -> str:
    digest = hashlib.sha256()
    with open(run_dir / CHECKPOINT, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def joint_schema(runs: Sequence[LoadedRun]) -> InputSchema:
    """The columns every member reads, each of the one type they all give it; nullable where every member
    that reads it can fill it in. A column two members read as different types is refused by name: no row
    could be read as both."""
    columns: dict[str, str] = {}
    owners: dict[str, LoadedRun] = {}
    for run in runs:
        for name, kind in run.schema.columns.items():
            if columns.setdefault(name, kind) != kind:
                raise ConfigError(f"ensemble: column {name!r} is a {columns[name]} input of {owners[name].run_dir} "
                                  f"and a {kind} input of {run.run_dir}; members must read a column alike")
            owners.setdefault(name, run)
    nullable = frozenset(name for name in columns if all(name in run.schema.nullable for run in runs
                                                         if name in run.schema.columns))
    return InputSchema(columns, nullable)


class MembersSplit:
    """The same samples as each member prepares them, side by side; the samples, their targets and their table
    rows are the first member's (every member's are the same: the ensemble was made only so)."""

    def __init__(self, parts: list[Split]):
        self.parts = parts

    def __len__(self) -> int:
        return len(self.parts[0])

    def targets(self) -> Any:
        return self.parts[0].targets()

    def sources(self) -> np.ndarray:
        return self.parts[0].sources()

    def table(self, task: Any, outputs: np.ndarray) -> pd.DataFrame:
        return self.parts[0].table(task, outputs)


@dataclass
class MembersPreprocessor:
    """Rows validated once against the columns of every member (`joint_schema`), prepared by each member's own
    fitted preprocessing."""

    members: list[LoadedRun]
    schema: InputSchema

    @property
    def target_columns(self) -> list[str]:
        return self.members[0].preprocessor.target_columns

    def input_schema(self) -> InputSchema:
        return self.schema

    def unseen_categories(self, frame: pd.DataFrame) -> list[Unseen]:
        """Each column's unseen categories once, though several members read the column."""
        found: dict[str, Unseen] = {}
        for run in self.members:
            for unseen in run.preprocessor.unseen_categories(frame):
                found.setdefault(unseen.column, unseen)
        return list(found.values())

    def new_rows(self, frame: pd.DataFrame, task: Any) -> MembersSplit:
        return MembersSplit([run.preprocessor.new_rows(frame, run.task) for run in self.members])

    def labelled_rows(self, frame: pd.DataFrame, task: Any) -> MembersSplit:
        return MembersSplit([run.preprocessor.labelled_rows(frame, run.task) for run in self.members])

    def metadata(self) -> dict[str, Any]:
        return self.members[0].preprocessor.metadata()


@dataclass
class Ensemble:
    """The predictor of an ensemble: each member predicts its part of a `MembersSplit`; the weighted mean of
    what their predictions mean is returned as raw outputs of `task`. It only predicts: its members trained."""

    members: list[LoadedRun]
    weights: list[float]
    task: Task

    @property
    def name(self) -> str:
        return "Ensemble"

    @property
    def n_parameters(self) -> int:
        return sum(run.estimator.n_parameters for run in self.members)

    def predict(self, split: MembersSplit) -> np.ndarray:
        means = [averaged(run.task, run.estimator.predict(part)) for run, part in zip(self.members, split.parts,
                                                                                         strict=True)]
        return as_outputs(self.task, weighted_mean(means, self.weights))


def is_ensemble(run_dir: Path) -> bool:
    return (run_dir / ENSEMBLE_FILE).is_file()


def load_member(run_dir: Path, sha256: str, ensemble_dir: Path) -> LoadedRun:
    """A member's run, once its best checkpoint is the one ensembled (by content)."""
    where = f"run_dir: member {run_dir} of the ensemble {ensemble_dir.resolve()}"
    if not checkpoint_exists(run_dir / CHECKPOINT):
        raise ConfigError(f"{where} is gone (no {CHECKPOINT} there); restore it, or make the ensemble again from "
                          f"the runs there are")
    found = checkpoint_sha256(run_dir)
    if found != sha256:
        raise ConfigError(f"{where} has changed since it was ensembled: its {CHECKPOINT} has sha256 {found[:12]}... "
                          f"where the ensemble recorded {sha256[:12]}...; restore that checkpoint, or make the "
                          f"ensemble again")
    return load_run(run_dir)


def load_ensemble(run_dir: Path) -> LoadedRun:
    """The ensemble of `run_dir` (its `ensemble.json`) as one run, on CPU like any run `load_run` loads."""
    record = json.loads((run_dir / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    members = [load_member(Path(member["run_dir"]), member["checkpoint_sha256"], run_dir)
               for member in record["members"]]
    task = ensemble_task(members[0].task)
    estimator = Ensemble(members, [float(member["weight"]) for member in record["members"]], task)
    metrics, unavailable = read_metrics(run_dir / "metrics.json")
    return LoadedRun(run_dir, estimator, task, MembersPreprocessor(members, joint_schema(members)),
                     {"model": described(record, members)}, metrics, unavailable)


def described(record: dict[str, Any], members: Sequence[LoadedRun]) -> dict[str, Any]:
    """The ensemble as /metadata shows it: its method and each member's run name, model and weight (never a
    path on the server)."""
    return {"method": record["method"], "selection_metric": record["selection_metric"],
            "members": [{"run": run.name, "model": run.estimator.name, "weight": member["weight"]}
                        for run, member in zip(members, record["members"], strict=True)]}

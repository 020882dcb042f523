"""Ensembles of finished runs: `python -m dl_core.runs ensemble <run or folder>... [--method greedy|mean]`.

The runs (a folder such as a multirun's sweep dir stands for every finished run under it) become one predictor,
saved as a run directory that predict.py, serve.py and `dl_core.load_run` load like any other
(dl_core/serving/ensemble.py), across model families (trees and deep models) and seeds alike:
- `mean`: every member with the same weight.
- `greedy`: ensemble selection with replacement (Caruana et al. 2004, "Ensemble selection from libraries of
  models"): from an empty ensemble, each of `rounds` rounds adds the run whose addition gives the best
  validation metric, a run already in it included; a run's weight is the rounds that chose it over all rounds.

Only the validation split chooses: the test split is predicted once the weights are fixed, and scored once. The
metric is the task's own, on validation as metrics.json reports it: RMSE for a regression, log-loss for a
classification (the mean of the class probabilities), or another of the task's metrics (`--metric`).

Members must predict the same thing on the same rows: the same task, target and classes, a data file of the same
content (its fingerprint, and unchanged since they trained), the same validation and test rows with the same
targets; anything else is refused naming the member and what differs. A run saves its test predictions only,
so each member predicts its validation and test splits again on the CPU: its saved data config rebuilds them
(the split does not depend on the run's seed), and its best checkpoint predicts. Its test predictions must be
its predictions_test.csv again (to rounding), so a run whose data or code changed since it trained is refused
rather than ensembled on other numbers. A forecast, or a run that predicts quantiles, is refused: what is
averaged is a table's point prediction or class probabilities.

The ensemble's directory: ensemble.json (the method, the selection metric and rounds, each member's run dir,
the SHA-256 of its best checkpoint and its weight, and each candidate's validation and test score),
metrics.json (the task's val_ and test_ metrics, as a run's, with `n_members`), predictions_test.csv (as a
run's), and run.json (so that `python -m dl_core.runs list` and `compare` show it). A member's weights are read
from it whenever the ensemble is loaded, and a member whose checkpoint changed or went is refused then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dl_core.data import build_bundle
from dl_core.data.bundle import DataBundle
from dl_core.data.fingerprint import changed, data_fingerprint, described
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.evaluate import split_metric_names, split_metrics
from dl_core.errors import ConfigError
from dl_core.runs.pipeline import write_csv
from dl_core.runs.resume import DATA_FINGERPRINT
from dl_core.runs.rundir import make_writable_dir
from dl_core.serving.ensemble import (
    AVERAGING,
    CHECKPOINT,
    ENSEMBLE_FILE,
    as_outputs,
    averaged,
    checkpoint_sha256,
    ensemble_task,
    is_ensemble,
    joint_schema,
    weighted_mean,
)
from dl_core.serving.load import TARGETS, LoadedRun, load_run
from dl_core.task import Classification, Regression, Task
from dl_core.tracking.run_index import METRICS_FILE, RUN_FILE, finished_metrics, flatten, results_dir, run_dirs
from dl_core.tracking.run_index import write_json_atomically as write_json

log = logging.getLogger(__name__)

METHODS = ("greedy", "mean")
ROUNDS = 25  # greedy rounds: a weight is a multiple of 1/25
SPLITS = ("val", "test")
# The metric greedy selection scores each round by, per task, unless `--metric` names another of the task's.
SELECTION: dict[type, str] = {Regression: "rmse", Classification: "log_loss"}
# The task metrics that are better higher; every other is better lower.
HIGHER_IS_BETTER = frozenset({"r2", "accuracy", "f1_macro", "roc_auc"})
# How far a member's test predictions now may be from its predictions_test.csv, relative to their spread: a run
# trained at full precision predicts again to rounding (other threads sum in another order), one trained at
# mixed precision (its saved predictions at 16 bits) to that precision.
REPRODUCED = {"32": 1e-3, "mixed": 3e-2}
PREDICTIONS = "predictions_test.csv"


@dataclass
class Candidate:
    """A finished run offered to the ensemble, with its validation and test splits rebuilt and predicted."""

    run: LoadedRun
    sha256: str
    bundle: DataBundle | None = None
    outputs: dict[str, np.ndarray] | None = None

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir

    @property
    def task(self) -> Task:
        return self.run.task

    def table(self, split: str) -> pd.DataFrame:
        """The predictions table of a split, as the run wrote predictions_test.csv."""
        return self.bundle.splits[split].table(self.task, self.outputs[split])

    def rows(self, split: str) -> pd.DataFrame:
        """What identifies a split's samples in its table (the source row, the actual target), less the
        predictions."""
        table = self.table(split)
        return table.drop(columns=list(self.task.predictions(self.outputs[split]).columns))

    def scores(self, split: str) -> dict[str, float]:
        return split_metrics(replace(self.bundle, task=ensemble_task(self.task)), split, self.outputs[split])


@dataclass(frozen=True)
class Made:
    """An ensemble written: where, its metrics, and each candidate's weight and scores (for the report)."""

    run_dir: Path
    metrics: dict[str, Any]
    record: dict[str, Any]


def make_ensemble(paths: Sequence[Path], method: str, rounds: int = ROUNDS, metric: str | None = None,
                  output: Path | None = None) -> Made:
    """Combine the finished runs under `paths` into an ensemble written to `output` (a new directory)."""
    if method not in METHODS:
        raise ConfigError(f"--method: {method!r} is not a method; pick one of {', '.join(METHODS)}")
    if rounds < 1:
        raise ConfigError(f"--rounds: must be >= 1 (got {rounds})")
    output = output or Path("outputs") / "ensembles" / f"{datetime.now():%Y-%m-%d_%H-%M-%S_%f}_{method}"
    check_output(output)
    candidates = [Candidate(load_run(path), checkpoint_sha256(path)) for path in member_dirs(paths)]
    check_alike(candidates)
    rebuild_splits(candidates)
    first = candidates[0]
    metric = metric or SELECTION[type(first.task)]
    names = split_metric_names(first.bundle, "val")
    if f"val_{metric}" not in names:
        raise ConfigError(f"--metric: {metric!r} is not a metric of the {first.task.name} task; pick one of "
                          f"{', '.join(name.removeprefix('val_') for name in names)}")
    predict_again(candidates)
    weights = mean_weights(len(candidates)) if method == "mean" else greedy_weights(candidates, metric, rounds)
    members = [(candidate, weight) for candidate, weight in zip(candidates, weights, strict=True) if weight > 0]
    task = ensemble_task(members[0][0].task)
    bundle = replace(members[0][0].bundle, task=task)
    outputs = {split: combined(task, members, split) for split in SPLITS}
    metrics = {**split_metrics(bundle, "val", outputs["val"]), **split_metrics(bundle, "test", outputs["test"]),
               "n_members": len(members), "method": method}
    record = {
        "method": method, "selection_metric": f"val_{metric}", "rounds": rounds if method == "greedy" else None,
        "members": [{"run_dir": str(c.run_dir), "checkpoint_sha256": c.sha256, "weight": weight}
                    for c, weight in members],
        "candidates": [{"run_dir": str(c.run_dir), "model": c.run.estimator.name, "weight": weight,
                        **{name: value for split in SPLITS for name, value in c.scores(split).items()}}
                       for c, weight in zip(candidates, weights, strict=True)],
    }
    write_ensemble(output, record, metrics, bundle.predictions_table("test", outputs["test"]), first, metric)
    return Made(output, metrics, record)


def combined(task: Task, members: Sequence[tuple[Candidate, float]], split: str) -> np.ndarray:
    """The weighted mean of the members' predictions of a split, as raw outputs of `task` (as the saved
    ensemble predicts: dl_core/serving/ensemble.py)."""
    return as_outputs(task, weighted_mean([averaged(c.task, c.outputs[split]) for c, _ in members],
                                          [weight for _, weight in members]))


def check_output(output: Path) -> None:
    """An ensemble's directory is its own: a new one, or an empty one."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"--output: {output} exists and is not an empty directory; pass a new directory for the "
                          f"ensemble")


def member_dirs(paths: Sequence[Path]) -> list[Path]:
    """The finished runs named (a run dir) or under a folder (a multirun's sweep dir), in order, each once; a run
    that reused a finished one counts as that one. A folder's unfinished runs and pruned trials are passed over
    with a line each; a named run that is one of those is refused, and so is an ensemble (name its members)."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"ensemble: {path} is no folder; name run directories, or a folder of runs (a "
                              f"multirun's sweep dir)")
        for job in run_dirs(path):
            metrics = finished_metrics(job)
            unfinished = "has not finished (no metrics.json)" if metrics is None \
                else "is a pruned trial" if metrics.get("pruned") else None
            if unfinished and job.resolve() == path.resolve():
                raise ConfigError(f"ensemble: {job} {unfinished}; name finished runs")
            if unfinished:
                log.warning("ensemble: %s %s, passed over", job, unfinished)
                continue
            run_dir = results_dir(job).resolve()
            if is_ensemble(run_dir):
                raise ConfigError(f"ensemble: {run_dir} is an ensemble; name its members' runs instead (its "
                                  f"{ENSEMBLE_FILE} lists them)")
            found.setdefault(run_dir, None)
    if len(found) < 2:
        raise ConfigError(f"ensemble: {len(found)} finished run(s) under {' '.join(map(str, paths))}; an ensemble "
                          f"needs at least two")
    return list(found)


def check_alike(candidates: Sequence[Candidate]) -> None:
    """Refuse, naming the member and what differs, runs that do not predict the same target from the same data
    file, or whose predictions cannot be averaged; before any of them predicts."""
    first = candidates[0]
    for candidate in candidates:
        task = candidate.task
        if type(task) not in AVERAGING:
            raise ConfigError(f"ensemble: {candidate.run_dir} is a {task.name} run; an ensemble averages the "
                              f"predictions of regression or classification runs, and a {task.name}'s are not "
                              f"supported")
        if not task.outputs.predicted.is_point:
            raise ConfigError(f"ensemble: {candidate.run_dir} predicts {task.outputs.name} (model.quantiles or "
                              f"model.distribution); an ensemble averages point predictions: name runs without")
        if type(task) is not type(first.task):
            raise ConfigError(f"ensemble: {candidate.run_dir} is a {task.name} run and {first.run_dir} a "
                              f"{first.task.name} run; an ensemble's members predict the same target")
        for what, mine, theirs in (
                ("predicts", candidate.run.preprocessor.target_columns, first.run.preprocessor.target_columns),
                ("has the classes", TARGETS[type(task)](task), TARGETS[type(task)](first.task))):
            if mine != theirs:
                raise ConfigError(f"ensemble: {candidate.run_dir} {what} {mine} and {first.run_dir} {theirs}; an "
                                  f"ensemble's members predict the same target")
    recorded = [load_checkpoint(c.run_dir / CHECKPOINT).get(DATA_FINGERPRINT) for c in candidates]
    for candidate, fingerprint in zip(candidates, recorded, strict=True):
        if fingerprint is not None and recorded[0] is not None and fingerprint["sha256"] != recorded[0]["sha256"]:
            raise ConfigError(f"ensemble: {candidate.run_dir} trained on other data than {first.run_dir} "
                              f"({fingerprint['file']} against {recorded[0]['file']}: "
                              f"{described(recorded[0], fingerprint)}); members must share their data")
        now = data_fingerprint(OmegaConf.create(candidate.run.config["data"]))
        if changed(fingerprint, now):
            raise ConfigError(f"ensemble: {candidate.run_dir} trained on {now['file']}, which has changed since "
                              f"({described(fingerprint, now)}); restore that file, or train the run again")
    joint_schema([candidate.run for candidate in candidates])


def rebuild_splits(candidates: Sequence[Candidate]) -> None:
    """Each member's splits, rebuilt by its saved data config (members with the same data config share one)."""
    bundles: dict[str, DataBundle] = {}
    for candidate in candidates:
        data = candidate.run.config["data"]
        key = json.dumps(data, sort_keys=True, default=str)
        if key not in bundles:
            bundles[key] = build_bundle(OmegaConf.create(data))
        candidate.bundle = bundles[key]


def predict_again(candidates: Sequence[Candidate]) -> None:
    """Each member's validation and test predictions on its rebuilt splits; refused where a member's rows or
    targets are not the first's, or where its test predictions are not those it saved."""
    first = candidates[0]
    for candidate in candidates:
        candidate.outputs = {split: candidate.run.estimator.predict(candidate.bundle.splits[split])
                             for split in SPLITS}
        check_reproduced(candidate)
        for split in SPLITS:
            if not same_rows(candidate.rows(split), first.rows(split)):
                raise ConfigError(f"ensemble: {candidate.run_dir}'s {split} split holds other rows or targets than "
                                  f"{first.run_dir}'s (their data configs differ in "
                                  f"{data_differences(first, candidate)}); an ensemble's members share their split "
                                  f"and target")


def check_reproduced(candidate: Candidate) -> None:
    """A member's test predictions now are those of its predictions_test.csv, to rounding."""
    saved = pd.read_csv(candidate.run_dir / PREDICTIONS)
    now, rows = candidate.table("test"), candidate.rows("test")
    if list(saved.columns) != list(now.columns) or not same_rows(rows, saved[list(rows.columns)]):
        raise ConfigError(f"ensemble: {candidate.run_dir}: its data config rebuilds other test rows than its "
                          f"{PREDICTIONS} holds: its data or the code changed since it trained; train it again")
    precision = str(candidate.run.config["hardware"].get("precision", "32"))
    tolerance = REPRODUCED["32" if precision == "32" else "mixed"]
    numbers = [column for column in now.columns
               if pd.api.types.is_float_dtype(now[column]) and column not in rows.columns]
    for column in numbers:
        difference = float(np.max(np.abs(now[column].to_numpy() - saved[column].to_numpy())))
        spread = max(float(saved[column].std()), 1e-12)
        if not difference <= tolerance * spread:
            raise ConfigError(f"ensemble: {candidate.run_dir}: its best checkpoint predicts its test rows otherwise "
                              f"than its {PREDICTIONS} ({column} differs by up to {difference:.3g}, more than "
                              f"{tolerance:g} of its spread): its data or the code changed since it trained; train "
                              f"it again")


def same_rows(mine: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """The same columns and rows; numbers equal to 1e-9 (a CSV's decimal text of them)."""
    if list(mine.columns) != list(theirs.columns) or len(mine) != len(theirs):
        return False
    return all(_same_column(mine[column], theirs[column]) for column in mine.columns)


def _same_column(mine: pd.Series, theirs: pd.Series) -> bool:
    a, b = mine.to_numpy(), theirs.to_numpy()
    if pd.api.types.is_numeric_dtype(mine) and pd.api.types.is_numeric_dtype(theirs):
        return bool(np.allclose(a, b, rtol=1e-9, atol=0, equal_nan=True))
    return bool((a.astype(str) == b.astype(str)).all())


def data_differences(first: Candidate, other: Candidate) -> str:
    """The keys of two members' data configs that differ, for a refusal (their values, up to four keys)."""
    mine, theirs = flatten(other.run.config["data"]), flatten(first.run.config["data"])
    keys = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
    shown = ", ".join(f"data.{key} ({mine.get(key)} against {theirs.get(key)})" for key in keys[:4])
    return (shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")) if keys else "nothing"


def mean_weights(n: int) -> list[float]:
    return [1.0 / n] * n


def greedy_weights(candidates: Sequence[Candidate], metric: str, rounds: int) -> list[float]:
    """Caruana et al. 2004's selection on the validation split: the weights are the rounds that chose each run."""
    first = candidates[0]
    task = ensemble_task(first.task)
    actual = first.bundle.splits["val"].targets().cpu().numpy()
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0

    def loss(mean: np.ndarray) -> float:
        return sign * task.metrics(as_outputs(task, mean), actual)[metric]

    counts = greedy_counts([averaged(c.task, c.outputs["val"]) for c in candidates], loss, rounds)
    return [count / rounds for count in counts]


def greedy_counts(predictions: Sequence[np.ndarray], loss: Callable[[np.ndarray], float], rounds: int) -> list[int]:
    """How often each of `rounds` rounds chose each prediction: each round adds, with replacement, the one whose
    addition to those chosen so far gives the mean of least `loss`; of equals, the first."""
    counts = [0] * len(predictions)
    total = np.zeros_like(predictions[0])
    for done in range(rounds):
        losses = [loss((total + prediction) / (done + 1)) for prediction in predictions]
        best = min(range(len(predictions)), key=lambda i: (losses[i], i))
        counts[best] += 1
        total = total + predictions[best]
    return counts


def write_ensemble(output: Path, record: dict[str, Any], metrics: dict[str, Any], table: pd.DataFrame,
                   first: Candidate, metric: str) -> None:
    """The ensemble's directory, metrics.json last: a directory without it is an ensemble that did not finish."""
    make_writable_dir(output, "--output")
    write_csv(table, output / PREDICTIONS)
    write_json(record, output / ENSEMBLE_FILE)
    config = {"task_name": "ensemble", "data": first.run.config["data"],
              "objective": {"metric": f"val_{metric}",
                            "direction": "maximize" if metric in HIGHER_IS_BETTER else "minimize"}}
    write_json({"started": datetime.now().isoformat(timespec="seconds"), "config": config,
                "choices": {"model": "ensemble"}}, output / RUN_FILE)
    write_json(metrics, output / METRICS_FILE)

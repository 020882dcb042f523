"""Multirun summary: every run of a multirun folded into one row per configuration, seeds and folds swept out.

`python train.py -m experiment=ett_dlinear seed=0,1,2` runs three jobs that differ only in their seed;
what a researcher wants from them is one line: each metric's mean, standard deviation and count. The
`MultirunSummary` callback (conf/hydra/default.yaml, so every multirun of train.py gets it) reads each
job's overrides (`.hydra/overrides.yaml`) and metrics (`metrics.json`) under the sweep dir, groups the
jobs by their overrides without the swept-out keys (`seed`, `data.split.fold`), and writes
`summary.csv` (one row per configuration: its overrides, the swept-out values, `<metric>_mean`,
`<metric>_std`, `<metric>_n` for every numeric metric) and `summary.md` (a Markdown table of the
objective, the test metrics and the epochs as mean ± std), and logs the table.

The same functions summarise the best trial's re-evaluation of an Optuna sweep (dl_core.sweep.sweeper) and
the runs of experiments/common.py: one aggregation (`aggregate`: mean, sample std, n) for all tables.
"""

from __future__ import annotations

import logging
import math
import os
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dl_core.tracking.run_index import finished_metrics

log = logging.getLogger(__name__)

# What a multirun repeats a configuration over: its rows are the other overrides.
SWEPT_OUT = ("seed", "data.split.fold")
# A table longer than this is written, not logged.
MAX_LOGGED_ROWS = 30


@dataclass(frozen=True)
class Spread:
    """Mean ± sample standard deviation over n values; one value is shown alone.

    Formats like a float: `f"{spread:.3f}"` gives "0.383 ± 0.012".
    """

    mean: float
    std: float
    n: int

    def __format__(self, spec: str) -> str:
        if self.n == 1:
            return format(self.mean, spec)
        return f"{self.mean:{spec}} ± {self.std:{spec}}"


def spread(values: Iterable[float]) -> Spread:
    """The mean, the sample standard deviation (NaN for one value) and the count."""
    values = [float(value) for value in values]
    if not values:
        raise ValueError("spread of no values")
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), std, len(values))


@dataclass(frozen=True)
class Job:
    """One finished run of a multirun: its overrides (key -> value) and its metrics.json."""

    overrides: dict[str, str]
    metrics: dict[str, Any]


def parse_overrides(lines: Iterable[str]) -> dict[str, str]:
    """`key=value` overrides as a mapping; `+`/`++` prefixes dropped, deletions (`~key`) left out."""
    parsed = {}
    for line in lines:
        key, _, value = line.partition("=")
        if not key.startswith("~"):
            parsed[key.lstrip("+")] = value
    return parsed


def natural_key(path: Path) -> list[Any]:
    """Job dirs in launch order: `2` before `10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def find_jobs(sweep_dir: Path) -> tuple[list[Job], int]:
    """Every job under `sweep_dir` that wrote metrics.json (or reused a run that did), and how many jobs did not
    (failed or running)."""
    jobs, unfinished = [], 0
    for overrides_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml"), key=natural_key):
        job_dir = overrides_file.parent.parent
        if job_dir.parent.name == "ranks":  # a DDP rank's own Hydra files inside its run dir
            continue
        metrics = finished_metrics(job_dir)  # a job that reused a finished run (reuse=true): that run's
        if metrics is None:
            unfinished += 1
            continue
        jobs.append(Job(parse_overrides(OmegaConf.load(overrides_file)), metrics))
    return jobs, unfinished


def aggregate(metrics: Sequence[dict[str, Any]]) -> dict[str, Spread]:
    """Each numeric metric (booleans count as 0/1: `pruned` gives the share pruned) over the runs that have a
    value for it."""
    values: dict[str, list[float]] = {}
    for run in metrics:
        for name, value in run.items():
            if isinstance(value, (int, float)) and not math.isnan(value):
                values.setdefault(name, []).append(value)
    return {name: spread(found) for name, found in values.items()}


def summarize(jobs: Sequence[Job], over: Sequence[str] = SWEPT_OUT) -> pd.DataFrame:
    """One row per configuration (the overrides other than `over`), in order of first appearance.

    Columns: the configuration's overrides, `runs`, each swept-out key with its values ("0 1 2"), and
    `<metric>_mean`, `<metric>_std`, `<metric>_n` for every numeric metric.
    """
    groups: dict[tuple[tuple[str, str], ...], list[Job]] = {}
    for job in jobs:
        config = tuple((key, value) for key, value in job.overrides.items() if key not in over)
        groups.setdefault(config, []).append(job)
    rows = []
    for config, members in groups.items():
        row: dict[str, Any] = {**dict(config), "runs": len(members)}
        for key in over:
            values = [job.overrides[key] for job in members if key in job.overrides]
            if values:
                row[key] = " ".join(values)
        for name, value in aggregate([job.metrics for job in members]).items():
            row.update({f"{name}_mean": value.mean, f"{name}_std": value.std, f"{name}_n": value.n})
        rows.append(row)
    return pd.DataFrame(rows)


def config_columns(table: pd.DataFrame, over: Sequence[str]) -> list[str]:
    """The override columns that tell rows apart: more than one value among the rows that set them (all of
    them for a single row)."""
    columns = [c for c in table.columns if c != "runs" and c not in over and not c.endswith(("_mean", "_std", "_n"))]
    if len(table) < 2:
        return columns
    return [c for c in columns if table[c].nunique() > 1]


def markdown(table: pd.DataFrame, objective: str, over: Sequence[str] = SWEPT_OUT) -> str:
    """The configurations, their runs and swept-out values, the objective, the test metrics and the epochs."""
    metrics = [objective, *sorted(c[:-5] for c in table.columns if c.startswith("test_") and c.endswith("_mean")),
               "epochs"]
    metrics = list(dict.fromkeys(m for m in metrics if f"{m}_mean" in table.columns))
    swept = [key for key in over if key in table.columns]
    header = [*config_columns(table, over), "runs", *swept, *metrics]
    lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [*("" if pd.isna(row[c]) else str(row[c]) for c in header[:-len(metrics) or None]),
                 *(format(Spread(row[f"{m}_mean"], row[f"{m}_std"], int(row[f"{m}_n"])), ".4g")
                   if not pd.isna(row[f"{m}_n"]) else "–" for m in metrics)]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def write_summary(sweep_dir: Path, over: Sequence[str], objective: str) -> pd.DataFrame:
    """summary.csv and summary.md in `sweep_dir` from the jobs under it; the table (empty: nothing written)."""
    jobs, unfinished = find_jobs(sweep_dir)
    if unfinished:
        log.warning("%d job(s) under %s wrote no metrics.json (failed, or still running): not in the summary",
                    unfinished, sweep_dir)
    table = summarize(jobs, over)
    if table.empty:
        return table
    atomic_write(sweep_dir / "summary.csv", table.to_csv(index=False))
    atomic_write(sweep_dir / "summary.md", markdown(table, objective, over) + "\n")
    return table


def print_summary(table: pd.DataFrame, sweep_dir: Path, title: str) -> None:
    if table.empty:
        log.info("%s: no finished run to summarise under %s", title, sweep_dir)
    elif len(table) > MAX_LOGGED_ROWS:
        log.info("%s: %d configurations, see %s", title, len(table), sweep_dir / "summary.md")
    else:
        log.info("%s (%s):\n%s", title, sweep_dir / "summary.csv", (sweep_dir / "summary.md").read_text())


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class MultirunSummary(Callback):
    """`hydra.callbacks.summary`: at the end of every multirun, summary.csv and summary.md in its sweep dir.

    `over`: the override keys that repeat a configuration rather than make a new one.
    """

    def __init__(self, over: Sequence[str] = SWEPT_OUT) -> None:
        self.over = tuple(over)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        objective = str(OmegaConf.select(config, "objective.metric", default="val_loss"))
        table = write_summary(sweep_dir, self.over, objective)
        print_summary(table, sweep_dir, f"summary over {', '.join(self.over)}")

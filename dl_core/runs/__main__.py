"""The finished runs under a folder: `python -m dl_core.runs list [outputs]`, `compare` and `ensemble`.

`list` prints one line per finished run (its metrics.json written): where it is, when it started, its task, the
preset, model and data it was composed with, its seed and its key metrics (the objective and the test metrics).
`compare` puts chosen runs side by side (a run dir, or a folder such as a multirun's sweep dir for all the runs
under it): the config keys in which they differ (those a run's numbers depend on, dl_core/tracking/identity.py)
and their metrics, as a Markdown table, and with `--plot` as bar charts, one per metric. A job that reused a
finished run (reuse=true) is read through it. Both read run.json (or, for a run from before it, `.hydra/`).
`ensemble` combines chosen runs (or all the runs under a folder) into one predictor saved as a run directory, by
their mean or greedy selection on validation (dl_core/runs/ensemble.py), and prints each run's weight and
scores beside the ensemble's.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dl_core.errors import ConfigError, DLCoreError
from dl_core.runs.ensemble import METHODS, ROUNDS, Made, make_ensemble
from dl_core.tracking.identity import computed_config
from dl_core.tracking.run_index import finished_metrics, flatten, read_record, run_dirs, saved_choices, saved_config

# Metrics `list` shows besides the objective, those a run has, in this order.
SHOWN_METRICS = ("test_mse_scaled", "test_mae_scaled", "test_mse", "test_rmse", "test_mae", "test_accuracy",
                 "test_loss")
# At most this many metrics per run in `list`, and config columns in `compare` (the rest are counted).
MAX_METRICS = 4
MAX_DIFFERENCES = 8


@dataclass(frozen=True)
class Run:
    """A finished run as the listing reads it."""

    path: Path
    config: dict[str, Any]
    choices: dict[str, str]
    metrics: dict[str, Any]
    started: str
    reused: bool

    @property
    def objective(self) -> str:
        return str((self.config.get("objective") or {}).get("metric", "val_loss"))


def finished_runs(roots: Sequence[Path]) -> list[Run]:
    """Every finished run under the folders (or the run dirs themselves), in path order."""
    runs = []
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"{root}: no such folder; name a run dir or a folder of runs (outputs/)")
        for path in run_dirs(root):
            metrics = finished_metrics(path)
            if metrics is not None:
                record = read_record(path) or {}
                runs.append(Run(path.resolve(), saved_config(path), saved_choices(path), metrics,
                                str(record.get("started", "")), "reused" in record))
    return runs


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}" if not math.isnan(value) else "nan"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) and path != root else str(path)


def list_table(runs: Sequence[Run], root: Path) -> str:
    rows = []
    for run in runs:
        keys = [run.objective, *(key for key in SHOWN_METRICS if key != run.objective)]
        shown = [f"{key} {_number(run.metrics[key])}" for key in keys if key in run.metrics][:MAX_METRICS]
        data = run.config.get("data") or {}
        name = data.get("name") or Path(str(data.get("path") or "")).stem or run.choices.get("data", "")
        rows.append([_relative(run.path, root) + (" (reused)" if run.reused else ""), run.started,
                     run.config.get("task_name", ""), run.choices.get("experiment", "–"), run.choices.get("model", ""),
                     name, run.config.get("seed", ""), ", ".join(shown)])
    return _markdown(["run", "started", "task", "experiment", "model", "data", "seed", "metrics"], rows)


def differences(runs: Sequence[Run]) -> list[str]:
    """The config keys whose values differ between the runs (ignoring where they wrote and how they were shown)."""
    flat = [flatten(computed_config(run.config, ("benchmark",))) for run in runs]
    keys = sorted({key for one in flat for key in one})
    return [key for key in keys if len({repr(one.get(key)) for one in flat}) > 1]


def compared_metrics(runs: Sequence[Run], asked: Sequence[str]) -> list[str]:
    """The metrics asked for, else the objective and the test metrics every run has."""
    if asked:
        missing = [key for key in asked if all(key not in run.metrics for run in runs)]
        if missing:
            raise ConfigError(f"--metrics: no run has {missing[0]}; the runs' metrics.json keys are e.g. "
                             + ", ".join(sorted(runs[0].metrics)[:8]))
        return list(asked)
    shared = set.intersection(*(set(run.metrics) for run in runs))
    objective = runs[0].objective
    tests = sorted(key for key in shared if key.startswith("test_") and isinstance(runs[0].metrics[key], (int, float)))
    return [key for key in dict.fromkeys([objective, *tests]) if key in shared]


def compare_table(runs: Sequence[Run], metrics: Sequence[str], root: Path) -> str:
    keys = differences(runs)
    shown, hidden = keys[:MAX_DIFFERENCES], len(keys) - MAX_DIFFERENCES
    rows = []
    for run in runs:
        flat = flatten(computed_config(run.config, ("benchmark",)))
        rows.append([_relative(run.path, root), *(flat.get(key, "–") for key in shown),
                     *(_number(run.metrics.get(key, math.nan)) for key in metrics)])
    text = _markdown(["run", *shown, *metrics], rows)
    return text + (f"\n\n{hidden} more config key(s) differ: " + ", ".join(keys[MAX_DIFFERENCES:]) if hidden > 0
                   else "")


def plot(runs: Sequence[Run], metrics: Sequence[str], root: Path, path: Path) -> None:
    """One horizontal bar chart per metric, a bar per run (matplotlib loads only here)."""
    from matplotlib.figure import Figure

    labels = [_relative(run.path, root) for run in runs]
    figure = Figure(figsize=(4 * len(metrics), 0.6 + 0.35 * len(runs)), layout="constrained")
    for axis, key in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics, strict=True):
        values = [float(run.metrics.get(key, math.nan)) for run in runs]
        axis.barh(range(len(runs)), values)
        axis.set_yticks(range(len(runs)), labels if axis is figure.axes[0] else [""] * len(runs))
        axis.invert_yaxis()
        axis.set_title(key)
    figure.savefig(path, dpi=100)


def ensemble_table(made: Made) -> str:
    """Each candidate's weight and scores on the selection metric, then the ensemble's: a Markdown table."""
    name = made.record["selection_metric"].removeprefix("val_")
    keys = [f"val_{name}", f"test_{name}"]
    root = Path(os.path.commonpath([Path(c["run_dir"]).parent for c in made.record["candidates"]]))
    rows = [[_relative(Path(c["run_dir"]), root), c["model"], f"{c['weight']:.3g}", *(_number(c[key]) for key in keys)]
            for c in made.record["candidates"]]
    rows.append([f"**ensemble ({made.record['method']})**", f"{made.metrics['n_members']} members", "1",
                 *(_number(made.metrics[key]) for key in keys)])
    return _markdown(["run", "model", "weight", *keys], rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dl_core.runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the finished runs under a folder, with their key config and metrics")
    listing.add_argument("root", nargs="?", type=Path, default=Path("outputs"))
    comparing = commands.add_parser("compare", help="runs (or all the runs under a folder) side by side")
    comparing.add_argument("runs", nargs="+", type=Path)
    comparing.add_argument("--metrics", nargs="+", default=[], help="default: the objective and the test metrics")
    comparing.add_argument("--plot", type=Path, help="also draw the metrics as bar charts into this PNG")
    ensembling = commands.add_parser("ensemble", help="runs (or all the runs under a folder) combined into one "
                                                      "predictor, saved as a run predict.py and serve.py load")
    ensembling.add_argument("runs", nargs="+", type=Path)
    ensembling.add_argument("--method", choices=METHODS, default="greedy",
                            help="greedy: ensemble selection on validation (Caruana et al. 2004); mean: equal weights")
    ensembling.add_argument("--rounds", type=int, default=ROUNDS, help="greedy selection rounds")
    ensembling.add_argument("--metric", help="the validation metric greedy selection minimizes (or maximizes: r2, "
                                             "accuracy, f1_macro, roc_auc); default rmse, or log_loss for classes")
    ensembling.add_argument("--output", type=Path, help="the ensemble's new directory; default "
                                                        "outputs/ensembles/<time>_<method>")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensemble":
            made = make_ensemble(args.runs, args.method, args.rounds, args.metric, args.output)
            print(ensemble_table(made))
            print(f"wrote {made.run_dir}")
            return
        if args.command == "list":
            runs = finished_runs([args.root])
            print(list_table(runs, args.root.resolve()) if runs else f"no finished runs under {args.root}")
            return
        runs = finished_runs(args.runs)
        if not runs:
            raise ConfigError(f"{' '.join(map(str, args.runs))}: no finished run (metrics.json) there")
        root = Path(os.path.commonpath([run.path.parent for run in runs]))  # labels: the paths below it
        metrics = compared_metrics(runs, args.metrics)
        print(compare_table(runs, metrics, root))
        if args.plot:
            plot(runs, metrics, root, args.plot)
            print(f"wrote {args.plot}")
    except DLCoreError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""Final evaluation: the metrics of a split, named `<split>_<metric>`, from the estimator's raw outputs; for a
forecast, besides, its metrics per series (dl_core/task/series_metrics.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dl_core.data.bundle import DataBundle
from dl_core.task import Forecast
from dl_core.task.series_metrics import per_series, summary, summary_names


def split_metrics(bundle: DataBundle, split: str, outputs: np.ndarray) -> dict[str, float]:
    """`{split}_<metric>` for the bundle's task, in the units the task reports: exactly the names
    `split_metric_names` gave before training (a task whose two disagree is a bug, and fails every run)."""
    actual = _targets(bundle, split)
    metrics = bundle.split_task(split).metrics(outputs, actual)
    names = bundle.task.metric_names(actual)
    if sorted(metrics) != sorted(names):
        raise RuntimeError(f"{type(bundle.task).__name__}: metrics gave {sorted(metrics)} but metric_names "
                           f"{sorted(names)}")
    return {f"{split}_{name}": value for name, value in metrics.items()}


def split_metric_names(bundle: DataBundle, split: str) -> list[str]:
    """The names `split_metrics` will give `split`, known before training."""
    return [f"{split}_{name}" for name in bundle.task.metric_names(_targets(bundle, split))]


def series_metric_names(bundle: DataBundle, split: str) -> list[str]:
    """The names `write_series_metrics` will give `split`: a forecast's, none for a table."""
    return summary_names(split) if isinstance(bundle.task, Forecast) else []


def _targets(bundle: DataBundle, split: str) -> np.ndarray:
    return bundle.splits[split].targets().cpu().numpy()


def write_series_metrics(bundle: DataBundle, split: str, table: pd.DataFrame, run_dir: Path) -> dict[str, Any]:
    """A forecast's metrics per series of `split` from its predictions table, into `series_metrics_<split>.csv`
    (one row per series and target: entity, target, n, mse, mae, mase, smape), and their summary for
    metrics.json (`<split>_mase`, `<split>_smape`, ...); nothing for another task. MASE scales each series by
    its own training part, the training split's rows of it."""
    if not isinstance(bundle.task, Forecast):
        return {}
    m = int(bundle.spec["seasonality"])
    train = bundle.splits["train"].series_values(bundle.task)
    series = per_series(table, train, bundle.task.target_columns, m)
    series.to_csv(run_dir / f"series_metrics_{split}.csv", index=False)
    return summary(series, split, m)

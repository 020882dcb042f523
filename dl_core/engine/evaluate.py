"""Final evaluation: the metrics of a split, named `<split>_<metric>`, from the estimator's raw outputs."""

from __future__ import annotations

import numpy as np

from dl_core.data.bundle import DataBundle


def split_metrics(bundle: DataBundle, split: str, outputs: np.ndarray) -> dict[str, float]:
    """`{split}_<metric>` for the bundle's task, in the units the task reports: exactly the names
    `split_metric_names` gave before training (a task whose two disagree is a bug, and fails every run)."""
    actual = _targets(bundle, split)
    metrics = bundle.task.metrics(outputs, actual)
    names = bundle.task.metric_names(actual)
    if sorted(metrics) != sorted(names):
        raise RuntimeError(f"{type(bundle.task).__name__}: metrics gave {sorted(metrics)} but metric_names "
                           f"{sorted(names)}")
    return {f"{split}_{name}": value for name, value in metrics.items()}


def split_metric_names(bundle: DataBundle, split: str) -> list[str]:
    """The names `split_metrics` will give `split`, known before training."""
    return [f"{split}_{name}" for name in bundle.task.metric_names(_targets(bundle, split))]


def _targets(bundle: DataBundle, split: str) -> np.ndarray:
    return bundle.splits[split].targets().cpu().numpy()

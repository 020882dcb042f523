"""Final evaluation: the metrics of a split, named `<split>_<metric>`, from the estimator's raw outputs."""

from __future__ import annotations

import numpy as np

from dl_core.data.bundle import DataBundle


def split_metrics(bundle: DataBundle, split: str, outputs: np.ndarray) -> dict[str, float]:
    """`{split}_<metric>` for the bundle's task, in the units the task reports."""
    metrics = bundle.task.metrics(outputs, bundle.splits[split].targets().cpu().numpy())
    return {f"{split}_{name}": value for name, value in metrics.items()}

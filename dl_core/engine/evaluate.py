"""Final evaluation: metrics per split from model outputs, in the units the task reports."""

from __future__ import annotations

import numpy as np

from dl_core.data.bundle import DataBundle
from dl_core.engine.metrics import classification_metrics, regression_metrics, tabular_regression_metrics


def split_metrics(bundle: DataBundle, split: str, outputs: np.ndarray) -> dict[str, float]:
    """`{split}_<metric>` for the bundle's task, computed from the model's raw outputs."""
    actual = bundle.splits[split].targets().cpu().numpy()
    metrics = {"forecast": forecast_metrics, "regression": regression_task_metrics,
               "classification": classification_task_metrics}[bundle.task](bundle, outputs, actual)
    return {f"{split}_{name}": value for name, value in metrics.items()}


def forecast_metrics(bundle: DataBundle, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """MSE/MAE/RMSE in original units, and `_scaled` on the standardised scale.

    The scaled figures are what forecasting papers report (ETT protocol); the original-unit
    figures are what a user of the forecast cares about.
    """
    actual = actual.astype(np.float32)
    scaled = regression_metrics(outputs, actual, suffix="_scaled")
    original = regression_metrics(bundle.preprocessor.inverse_target(outputs),
                                  bundle.preprocessor.inverse_target(actual))
    return {**original, **scaled}


def regression_task_metrics(bundle: DataBundle, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MSE, R² in the target's original units (what tabular papers report)."""
    inverse = bundle.preprocessor.inverse_target
    return tabular_regression_metrics(inverse(outputs), inverse(actual))


def classification_task_metrics(bundle: DataBundle, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    from dl_core.data.tabular import output_probabilities

    return classification_metrics(output_probabilities(outputs), actual)

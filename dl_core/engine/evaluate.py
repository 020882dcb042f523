"""Final evaluation: metrics per split from model outputs, in the units the task reports."""

from __future__ import annotations

import numpy as np

from dl_core.data.bundle import DataBundle
from dl_core.engine.metrics import regression_metrics


def split_metrics(bundle: DataBundle, split: str, outputs: np.ndarray) -> dict[str, float]:
    """`{split}_mse` etc. in original units; `{split}_mse_scaled` on the standardised scale.

    The scaled figures are what forecasting papers report (ETT protocol); the original-unit
    figures are what a user of the forecast cares about.
    """
    actual = bundle.splits[split].targets().float().cpu().numpy()
    scaled = regression_metrics(outputs, actual, suffix="_scaled")
    original = regression_metrics(bundle.preprocessor.inverse_target(outputs),
                                  bundle.preprocessor.inverse_target(actual))
    return {f"{split}_{name}": value for name, value in {**original, **scaled}.items()}

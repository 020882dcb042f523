"""The forecast task: a window of a series -> horizon x targets, standardized on the training rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import pandas as pd
from torch.nn import functional as F

from dl_core.models.outputs import MEDIAN, POINT, OutputKind, quantile_metric_names, quantile_metrics
from dl_core.task.base import LossFn, OutputLosses, Task, regression_metric_names, regression_metrics

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler


class ForecastTask(Task, Protocol):
    """What the time-series data step and its windows need of a forecast task."""

    target_columns: list[str]

    def fit(self, train_rows: pd.DataFrame) -> ForecastTask:
        """This task with its target encoding learned from the training rows."""

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """The rows' targets as the model is trained on them, (rows, targets)."""

    def prediction_columns(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The forecast columns of a predictions table, each (windows, horizon, targets)."""


@dataclass(frozen=True, eq=False)
class Forecast(OutputLosses):
    """Forecast `target_columns` over the horizon; targets are standardized on the training rows."""

    name: ClassVar[str] = "forecast"
    probabilistic: ClassVar[bool] = True

    target_columns: list[str]
    target_scaler: StandardScaler | None = None
    outputs: OutputKind = POINT

    def fit(self, train_rows: pd.DataFrame) -> Forecast:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(train_rows[self.target_columns].to_numpy(np.float64))
        return replace(self, target_scaler=scaler)

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """Standardized float32 targets, (rows, targets)."""
        return self.target_scaler.transform(rows[self.target_columns].to_numpy(np.float64)).astype(np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Undo the scaling on an array whose last axis is the targets."""
        flat = y.reshape(-1, len(self.target_columns)).astype(np.float64)
        return self.target_scaler.inverse_transform(flat).reshape(y.shape)

    def point_loss(self) -> LossFn:
        return F.mse_loss

    def decode_quantiles(self, quantiles: np.ndarray) -> np.ndarray:
        """Undo the scaling on (..., targets, levels): every level like a value (the scaling is increasing)."""
        return np.moveaxis(self.decode(np.moveaxis(quantiles, -1, 0)), 0, -1)

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """MSE/MAE/RMSE in original units, and `_scaled` on the standardised scale; for quantile or
        distribution outputs, of the median, and besides: the mean pinball loss, the CRPS estimated over
        the quantiles, and the coverage and mean width of each central interval (`coverage_80`, `width_80`).

        The scaled figures are what forecasting papers report (ETT protocol); the original-unit
        figures are what a user of the forecast cares about.
        """
        actual = actual.astype(np.float32)
        if self.outputs.is_point:
            scaled = regression_metrics(outputs, actual, suffix="_scaled")
            return {**regression_metrics(self.decode(outputs), self.decode(actual)), **scaled}
        levels = self.outputs.levels
        quantiles = self.outputs.quantiles(outputs)
        median = quantiles[..., levels.index(MEDIAN)]
        decoded, decoded_actual = self.decode_quantiles(quantiles), self.decode(actual)
        return {**regression_metrics(decoded[..., levels.index(MEDIAN)], decoded_actual),
                **regression_metrics(median, actual, suffix="_scaled"),
                **quantile_metrics(decoded, decoded_actual, levels),
                **quantile_metrics(quantiles, actual, levels, suffix="_scaled")}

    def metric_names(self, actual: np.ndarray) -> list[str]:
        names = [*regression_metric_names(), *regression_metric_names("_scaled")]
        if self.outputs.is_point:
            return names
        return [*names, *quantile_metric_names(self.outputs.levels),
                *quantile_metric_names(self.outputs.levels, "_scaled")]

    def prediction_columns(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The forecast columns of a predictions table in original units, each (windows, horizon, targets):
        `predicted`, and for quantile or distribution outputs one column per level (`q0.1`), `predicted`
        being the median."""
        if self.outputs.is_point:
            return {"predicted": self.decode(outputs)}
        levels = self.outputs.levels
        quantiles = self.decode_quantiles(self.outputs.quantiles(outputs))
        return {"predicted": quantiles[..., levels.index(MEDIAN)],
                **{quantile_column(level): quantiles[..., k] for k, level in enumerate(levels)}}


def quantile_column(level: float) -> str:
    """The predictions table's column of a quantile level: 0.1 -> `q0.1`."""
    return f"q{level:g}"

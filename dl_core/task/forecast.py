"""The forecast task: a window of a series -> horizon x targets, standardized on the training rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import pandas as pd
from torch.nn import functional as F

from dl_core.models.outputs import MEDIAN, POINT, OutputKind, quantile_metric_names, quantile_metrics
from dl_core.task.base import LossFn, Probabilistic, Task, regression_metric_names, regression_metrics
from dl_core.task.conformal import IntervalCalibration
from dl_core.task.scaling import SeriesScaler

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

    def for_series(self, labels: np.ndarray) -> ForecastTask:
        """This task decoding arrays whose first axis is one series each, named by `labels`."""


@dataclass(frozen=True, eq=False)
class Forecast(Probabilistic):
    """Forecast `target_columns` over the horizon; targets are standardized on the training rows, of all
    series together, or of each series by its own (`target_scaler` a `SeriesScaler`: data.scaler=per_series).
    The central intervals of quantile or distribution outputs are calibrated per horizon step and target."""

    name: ClassVar[str] = "forecast"

    target_columns: list[str]
    target_scaler: StandardScaler | SeriesScaler | None = None
    outputs: OutputKind = POINT
    # With a scale per series: the series of each entry of the first axis of what `decode` is given.
    series: np.ndarray | None = None
    calibration: IntervalCalibration | None = None

    def fit(self, train_rows: pd.DataFrame) -> Forecast:
        from sklearn.preprocessing import StandardScaler

        if isinstance(self.target_scaler, SeriesScaler):
            return replace(self, target_scaler=self.target_scaler.fit(train_rows, self.target_columns))
        scaler = StandardScaler().fit(train_rows[self.target_columns].to_numpy(np.float64))
        return replace(self, target_scaler=scaler)

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """Standardized float32 targets, (rows, targets)."""
        if isinstance(self.target_scaler, SeriesScaler):
            return self.target_scaler.transform(rows, self.target_columns)
        return self.target_scaler.transform(rows[self.target_columns].to_numpy(np.float64)).astype(np.float32)

    def for_series(self, labels: np.ndarray) -> Forecast:
        """This task decoding arrays whose first axis is one series each (a window's, a row's), named by
        `labels`: what a scale per series needs; the same task otherwise."""
        return replace(self, series=labels) if isinstance(self.target_scaler, SeriesScaler) else self

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Undo the scaling on an array whose last axis is the targets."""
        if isinstance(self.target_scaler, SeriesScaler):
            if self.series is None or len(self.series) != len(y):
                raise RuntimeError("Forecast.decode: a scale per series decodes only after for_series(labels) "
                                   "names the series of each entry of the first axis")
            return self.target_scaler.inverse(y, self.series)
        flat = y.reshape(-1, len(self.target_columns)).astype(np.float64)
        return self.target_scaler.inverse_transform(flat).reshape(y.shape)

    def point_loss(self) -> LossFn:
        return F.mse_loss

    def decode_quantiles(self, quantiles: np.ndarray) -> np.ndarray:
        """Undo the scaling on (..., targets, levels): every level like a value (the scaling is increasing)."""
        levels = np.moveaxis(quantiles, -1, 1)  # (first axis, levels, ..., targets): the first axis kept in place
        return np.moveaxis(self.decode(levels), 1, -1)

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """MSE/MAE/RMSE in original units, and `_scaled` on the standardised scale; for quantile or
        distribution outputs, of the median, and besides: the mean pinball loss, the CRPS estimated over
        the quantiles, and the coverage and mean width of each central interval (`coverage_80`, `width_80`).

        The scaled figures are what forecasting papers report (ETT protocol); the original-unit
        figures are what a user of the forecast cares about. The interval metrics are those of the calibrated
        quantiles, and again of the model's own as `_raw` (the same when the intervals are not calibrated).
        """
        actual = actual.astype(np.float32)
        if self.outputs.is_point:
            scaled = regression_metrics(outputs, actual, suffix="_scaled")
            return {**regression_metrics(self.decode(outputs), self.decode(actual)), **scaled}
        levels = self.outputs.levels
        quantiles = self.calibrate(self.outputs.quantiles(outputs))
        median = quantiles[..., levels.index(MEDIAN)]
        return {**regression_metrics(self.decode(median), self.decode(actual)),
                **regression_metrics(median, actual, suffix="_scaled"),
                **self.interval_metrics(outputs, actual),
                **quantile_metrics(quantiles, actual, levels, suffix="_scaled")}

    def metric_names(self, actual: np.ndarray) -> list[str]:
        names = [*regression_metric_names(), *regression_metric_names("_scaled")]
        if self.outputs.is_point:
            return names
        return [*names, *self.interval_metric_names(), *quantile_metric_names(self.outputs.levels, "_scaled")]

    def prediction_columns(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The forecast columns of a predictions table in original units, each (windows, horizon, targets):
        `predicted`, and for quantile or distribution outputs one column per level (`q0.1`), `predicted`
        being the median; calibrated, the model's own quantiles besides, but for the median that calibration
        never moves (`raw_q0.1`)."""
        return {"predicted": self.decode(outputs)} if self.outputs.is_point else self.quantile_columns(outputs)

"""What every task shares: the protocol the engine, the evaluation and prediction see, the losses a task
gets from the kind of its model's outputs, and what a task that reads quantiles (a forecast, a table's
regression) reports of them."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

import numpy as np
import torch

from dl_core.errors import ConfigError
from dl_core.models.outputs import (
    MEDIAN,
    MembersOutput,
    OutputKind,
    interval_pairs,
    quantile_metric_names,
    quantile_metrics,
)
from dl_core.task.conformal import IntervalCalibration, fit_calibration

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
T = TypeVar("T", bound="OutputLosses")
P = TypeVar("P", bound="Probabilistic")
RAW, RAW_PREFIX = "_raw", "raw_"  # the metrics and the predictions columns of the uncalibrated quantiles


class Task(Protocol):
    """What the engine, the evaluation and prediction need of a task, whatever its kind."""

    name: ClassVar[str]
    # What the run's model outputs; the task reads them and trains with the loss of this kind.
    outputs: OutputKind

    def with_outputs(self, kind: OutputKind) -> Task:
        """The task for a model whose outputs are of `kind`."""

    def loss(self) -> LossFn:
        """The training loss, between the outputs and the encoded targets."""

    def prediction_loss(self) -> LossFn:
        """The loss of what the model predicts (its outputs in eval mode), on which validation selects."""

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """The metrics of a split, from raw model outputs and the split's encoded targets."""

    def metric_names(self, actual: np.ndarray) -> list[str]:
        """The names `metrics` gives a split with these encoded targets, known before training, so that
        `objective.metric` is checked before any work (engine/evaluate.py holds the two to each other)."""

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Encoded targets (or point outputs) in the target's own units or labels."""

    def calibrated(self, outputs: np.ndarray, actual: np.ndarray) -> Task:
        """This task with the central intervals of its outputs calibrated on held-out samples' raw outputs and
        encoded targets (dl_core/task/conformal.py); itself when its outputs have none."""


class OutputLosses(ABC):
    """The part of a task that follows from its outputs' kind (`outputs`, a field of every task, fixed when the
    task is built): which losses it trains and selects with, and which kinds it can take at all."""

    name: ClassVar[str]
    # Whether the task can train and read quantile or distribution outputs besides point ones.
    probabilistic: ClassVar[bool] = False
    outputs: OutputKind

    def with_outputs(self: T, kind: OutputKind) -> T:
        """This task for a model whose outputs are of `kind`; a kind the task has no loss for is refused."""
        self.loss_of(kind)
        return dataclasses.replace(self, outputs=kind)  # type: ignore[type-var]

    def loss(self) -> LossFn:
        return self.loss_of(self.outputs)

    def calibrated(self: T, outputs: np.ndarray, actual: np.ndarray) -> T:
        """Point outputs have no intervals to calibrate (only a `Probabilistic` task takes others)."""
        return self

    def prediction_loss(self) -> LossFn:
        return self.loss_of(self.outputs.predicted)

    def loss_of(self, kind: OutputKind) -> LossFn:
        """The training loss for outputs of `kind`: an ensemble's members each on their own point loss."""
        if isinstance(kind, MembersOutput):
            return members_loss(self.point_loss())
        if kind.is_point:
            return self.point_loss()
        if not self.probabilistic:
            raise ConfigError(f"model.quantiles: the {self.name} task has no loss for {kind.name!r} outputs (quantiles "
                              f"are for a regression or a forecast); leave model.quantiles and model.distribution null")
        return kind.loss

    @abstractmethod
    def point_loss(self) -> LossFn:
        """The loss between point outputs and encoded targets."""


class Probabilistic(OutputLosses):
    """A task that trains and reads quantile or distribution outputs besides point ones (a forecast, a table's
    regression), and reports their quantiles as `calibration` moves them once it is fitted on the validation
    split (`calibrated`; dl_core/task/conformal.py), on the encoded target scale: the model's own quantiles
    beside them as `raw_q<level>` columns and `_raw` metrics. A subclass is a dataclass with the field
    `calibration: IntervalCalibration | None = None`, and says how quantiles map to original units."""

    probabilistic: ClassVar[bool] = True
    calibration: IntervalCalibration | None

    @abstractmethod
    def decode_quantiles(self, quantiles: np.ndarray) -> np.ndarray:
        """Quantiles (..., levels) on the encoded scale in the target's original units."""

    def calibrated(self: P, outputs: np.ndarray, actual: np.ndarray) -> P:
        levels = self.outputs.levels
        if not interval_pairs(levels):
            return self
        calibration = fit_calibration(self.outputs.quantiles(outputs), actual, levels)
        return dataclasses.replace(self, calibration=calibration)  # type: ignore[type-var]

    def calibrate(self, quantiles: np.ndarray) -> np.ndarray:
        """The quantiles this task reports: the model's own, moved by `calibration` when there is one."""
        return quantiles if self.calibration is None else self.calibration.apply(quantiles)

    def quantile_columns(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The predictions' columns of quantile or distribution outputs, in original units: `predicted`, the
        median, and one column per level (`q0.1`); calibrated, the model's own quantiles besides, but for the
        median that calibration never moves (`raw_q0.1`)."""
        levels = self.outputs.levels
        raw = self.outputs.quantiles(outputs)
        quantiles = self.decode_quantiles(self.calibrate(raw))
        columns = {"predicted": quantiles[..., levels.index(MEDIAN)],
                   **{quantile_column(level): quantiles[..., k] for k, level in enumerate(levels)}}
        if self.calibration is None:
            return columns
        raw = self.decode_quantiles(raw)
        return {**columns, **{RAW_PREFIX + quantile_column(level): raw[..., k]
                              for k, level in enumerate(levels) if level != MEDIAN}}

    def interval_metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """The quantile metrics (`quantile_metrics`) in original units of the reported quantiles, and of the model's
        own as `_raw` (the same when the intervals are not calibrated), against encoded targets `actual`."""
        levels, decoded_actual = self.outputs.levels, self.decode(actual)
        raw = self.outputs.quantiles(outputs)
        return {**quantile_metrics(self.decode_quantiles(self.calibrate(raw)), decoded_actual, levels),
                **quantile_metrics(self.decode_quantiles(raw), decoded_actual, levels, suffix=RAW)}

    def interval_metric_names(self) -> list[str]:
        levels = self.outputs.levels
        return [*quantile_metric_names(levels), *quantile_metric_names(levels, RAW)]


def quantile_column(level: float) -> str:
    """The predictions table's column of a quantile level: 0.1 -> `q0.1`."""
    return f"q{level:g}"


def members_loss(point: LossFn) -> LossFn:
    """The mean of the members' losses, as TabM trains (Gorishniy et al. 2025): each member is scored on every
    sample of the batch, not the loss of their average. The point losses average over samples, so scoring
    the (batch * k) member outputs against each target repeated k times is exactly that mean."""

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return point(output.flatten(0, 1), target.repeat_interleave(output.shape[1], dim=0))

    return loss


def regression_metrics(predicted: np.ndarray, actual: np.ndarray, suffix: str = "") -> dict[str, float]:
    err = predicted.astype(np.float64) - actual.astype(np.float64)
    mse = float(np.mean(err**2))
    values = (mse, float(np.mean(np.abs(err))), float(np.sqrt(mse)))
    return dict(zip(regression_metric_names(suffix), values, strict=True))


def regression_metric_names(suffix: str = "") -> list[str]:
    return [f"mse{suffix}", f"mae{suffix}", f"rmse{suffix}"]


"""What every task shares: the protocol the engine, the evaluation and prediction see, and the losses a
task gets from the kind of its model's outputs."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

import numpy as np
import torch

from dl_core.errors import ConfigError
from dl_core.models.outputs import MembersOutput, OutputKind

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
T = TypeVar("T", bound="OutputLosses")


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

    def prediction_loss(self) -> LossFn:
        return self.loss_of(self.outputs.predicted)

    def loss_of(self, kind: OutputKind) -> LossFn:
        """The training loss for outputs of `kind`: an ensemble's members each on their own point loss."""
        if isinstance(kind, MembersOutput):
            return members_loss(self.point_loss())
        if kind.is_point:
            return self.point_loss()
        if not self.probabilistic:
            raise ConfigError(f"model: its outputs are {kind.name!r}, for which the {self.name} task has no "
                              f"loss; leave model.quantiles and model.distribution null")
        return kind.loss

    @abstractmethod
    def point_loss(self) -> LossFn:
        """The loss between point outputs and encoded targets."""


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


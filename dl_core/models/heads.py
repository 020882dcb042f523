"""The output heads models share: point values, quantiles or a distribution, from one place.

A forecaster's schema inherits `ForecastOutputConfig` (the keys `quantiles` and `distribution`), and
its last layer is a `ForecastHead`: a linear map to horizon x outputs x the kind's parameters, whose
values then take the kind's meaning (dl_core/models/outputs.py). The model exposes the head's kind as
`output_kind`, from which the task picks the loss and reads the outputs; instance normalisation maps
outputs back with `ForecastHead.rescale`, which moves each kind's values as that kind needs.

A table model that can predict quantiles (a regression's) inherits `QuantileOutputConfig` (the key
`quantiles`): its own last layer outputs the kind's parameters for each of its outputs, and `table_outputs`
gives them the kind's meaning. A model without the key predicts points only; asking it for quantiles is
refused at composition, naming the models that have the key (dl_core/runs/config.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import require
from dl_core.models.outputs import DISTRIBUTIONS, MEDIAN, POINT, OutputKind, QuantileOutput

# The levels a distribution head reports when `quantiles` is null: the median and the central 80 % interval.
DISTRIBUTION_LEVELS = (0.1, 0.5, 0.9)


@dataclass
class QuantileOutputConfig:
    """What a table model outputs (shared by the table models that can predict quantiles).

    Attributes:
        quantiles: levels to predict for a regression, ascending, e.g. [0.1, 0.5, 0.9] (trained with the pinball
            loss); must include 0.5, the median that `predicted` and the point metrics use. Null: point
            predictions.
    """

    quantiles: list[float] | None = None

    def validate(self, prefix: str) -> None:
        """Levels the harness reports as written: a level twice, outside (0, 1) or out of order is refused rather
        than deduplicated, clipped or sorted behind the user's back."""
        if self.quantiles is None:
            return
        key = f"{prefix}.quantiles"
        require(len(set(self.quantiles)) == len(self.quantiles), key, f"lists a level twice ({self.quantiles})")
        for level in self.quantiles:
            require(0.0 < level < 1.0, key, f"levels must lie strictly between 0 and 1 (got {level})")
        require(list(self.quantiles) == sorted(self.quantiles), key,
                f"levels must be ascending (got {self.quantiles}), e.g. {key}=[0.1,0.5,0.9]")
        require(MEDIAN in self.quantiles, key, f"must include 0.5, the median that is the point prediction (got "
                                               f"{self.quantiles}), e.g. {key}=[0.1,0.5,0.9]")


@dataclass
class ForecastOutputConfig(QuantileOutputConfig):
    """What a forecaster outputs (shared by every model built on the common output head).

    Attributes:
        quantiles: levels to forecast, ascending, e.g. [0.1, 0.5, 0.9] (trained with the pinball loss); must include
            0.5, the median that `predicted` and the point metrics use. With `distribution`: the levels
            derived for reporting (null: 0.1, 0.5, 0.9). Null without a distribution: point forecasts.
        distribution: `normal` or `student_t`: forecast a distribution's parameters, trained by negative
            log-likelihood; null: point values, or the `quantiles`.
    """

    distribution: Literal["normal", "student_t"] | None = None


def output_kind(quantiles: list[float] | None, distribution: str | None) -> OutputKind:
    """The kind a model's `quantiles` and `distribution` settings ask for."""
    if distribution is not None:
        return DISTRIBUTIONS[distribution](tuple(quantiles or DISTRIBUTION_LEVELS))
    if quantiles is not None:
        return QuantileOutput(tuple(quantiles))
    return POINT


def table_outputs(raw: torch.Tensor, kind: OutputKind) -> torch.Tensor:
    """A table model's last layer, d_out x `kind.n_params` values per row, as outputs of `kind`: (batch, d_out)
    points, exactly the layer's values (a point model keeps its results), or (batch, d_out, levels) quantiles."""
    return kind.finish(raw.unflatten(-1, (-1, kind.n_params)))


class ForecastHead(nn.Linear):
    """The last layer of a forecaster: features (..., d_in) -> outputs (..., horizon, n_outputs[, n_params]).

    A linear map whose outputs mean what `kind` says. For point outputs it is exactly the linear layer
    a point forecaster ends with, so point models keep their parameters and their results.
    """

    def __init__(self, d_in: int, horizon: int, n_outputs: int, kind: OutputKind):
        super().__init__(d_in, horizon * n_outputs * kind.n_params)
        self.horizon, self.n_outputs, self.kind = horizon, n_outputs, kind

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.finish(self.project(features))

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """The raw linear outputs, for a model that adds several maps before they take their meaning (DLinear)."""
        return F.linear(features, self.weight, self.bias)

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        shaped = raw.view(*raw.shape[:-1], self.horizon, self.n_outputs, self.kind.n_params)
        return self.kind.finish(shaped)

    def rescale(self, outputs: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Outputs on a window standardised by `loc`, `scale` (batch, 1, n_outputs) back on the window's scale."""
        return self.kind.rescale(outputs, loc, scale)

"""The output head every forecaster shares: point values, quantiles or a distribution, from one place.

A forecaster's schema inherits `ForecastOutputConfig` (the keys `quantiles` and `distribution`), and
its last layer is a `ForecastHead`: a linear map to horizon x outputs x the kind's parameters, whose
values then take the kind's meaning (dl_core/models/outputs.py). The model exposes the head's kind as
`output_kind`, from which the task picks the loss and reads the outputs; instance normalisation maps
outputs back with `ForecastHead.rescale`, which moves each kind's values as that kind needs.
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
class ForecastOutputConfig:
    """What a forecaster outputs (shared by every model built on the common output head).

    Attributes:
        quantiles: levels to forecast, e.g. [0.1, 0.5, 0.9] (trained with the pinball loss); must include
            0.5, the median that `predicted` and the point metrics use. With `distribution`: the levels
            derived for reporting (null: 0.1, 0.5, 0.9). Null without a distribution: point forecasts.
        distribution: `normal` or `student_t`: forecast a distribution's parameters, trained by negative
            log-likelihood; null: point values, or the `quantiles`.
    """

    quantiles: list[float] | None = None
    distribution: Literal["normal", "student_t"] | None = None

    def validate(self, prefix: str) -> None:
        if self.quantiles is None:
            return
        key = f"{prefix}.quantiles"
        require(len(set(self.quantiles)) == len(self.quantiles), key, f"lists a level twice ({self.quantiles})")
        for level in self.quantiles:
            require(0.0 < level < 1.0, key, f"levels must lie strictly between 0 and 1 (got {level})")
        require(MEDIAN in self.quantiles, key,
                f"must include 0.5, the median forecast (got {self.quantiles}), e.g. {key}=[0.1,0.5,0.9]")


def output_kind(quantiles: list[float] | None, distribution: str | None) -> OutputKind:
    """The kind a model's `quantiles` and `distribution` settings ask for."""
    if distribution is not None:
        return DISTRIBUTIONS[distribution](tuple(quantiles or DISTRIBUTION_LEVELS))
    if quantiles is not None:
        return QuantileOutput(tuple(quantiles))
    return POINT


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

"""Naive (persistence) forecaster: every horizon step repeats the last observed value of each target.

It has no parameters; it is the floor every forecasting table should beat. It reads the targets' past
only, so it declares no known-future or static covariates (asking for them is refused), and it
forecasts points only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dl_core.models import require_target_inputs


@dataclass
class NaiveConfig:
    """Repeat the last observed value of each target over the horizon: the floor of every table."""

    _target_: str = "dl_core.models.naive.NaiveForecaster"


class NaiveForecaster(nn.Module):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets), the last value repeated."""

    data_kind = "timeseries"
    accepts_future_covariates = False
    accepts_static_covariates = False

    def __init__(self, horizon: int, target_index: list[int] | None):
        super().__init__()
        self.horizon = horizon
        self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, "naive")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, -1:, :].index_select(2, self.target_index)
        return last.expand(-1, self.horizon, -1)

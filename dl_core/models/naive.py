"""Naive (persistence) forecaster: every horizon step repeats the last observed value of each target.

It has no parameters; it is the floor every forecasting table should beat.
"""

from __future__ import annotations

import torch
from torch import nn

from dl_core.errors import ConfigError


def require_target_inputs(target_index: list[int] | None, model: str) -> list[int]:
    """Models that forecast a target from its own history need that target among the inputs."""
    if target_index is None:
        raise ConfigError(f"model={model} forecasts each target from its own past values; set "
                          f"data.include_target_in_inputs=true")
    return list(target_index)


class NaiveForecaster(nn.Module):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets), the last value repeated."""

    data_kind = "timeseries"

    def __init__(self, horizon: int, target_index: list[int] | None):
        super().__init__()
        self.horizon = horizon
        self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, "naive")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x[:, -1:, :].index_select(2, self.target_index)
        return last.expand(-1, self.horizon, -1)

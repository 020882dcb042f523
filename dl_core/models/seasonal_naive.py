"""Seasonal naive forecaster: every horizon step repeats the value of the same season in the last observed
cycle, y[t+h] = y[t+h-m*ceil(h/m)], m the seasonal period (`data.seasonality`).

It has no parameters; it is the floor of a seasonal series, and the forecast whose in-sample error MASE
scales by. With m = 1 it is the naive forecast. Like the naive one it reads the targets' past only
and forecasts points only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dl_core.errors import ConfigError
from dl_core.models import require_target_inputs


@dataclass
class SeasonalNaiveConfig:
    """Repeat the last observed seasonal cycle (of `data.seasonality` steps) of each target over the horizon."""

    _target_: str = "dl_core.models.seasonal_naive.SeasonalNaiveForecaster"


class SeasonalNaiveForecaster(nn.Module):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets), the last cycle repeated."""

    data_kind = "timeseries"
    accepts_future_covariates = False
    accepts_static_covariates = False

    def __init__(self, horizon: int, sequence_length: int, seasonality: int, target_index: list[int] | None,
                 name: str = "seasonal_naive"):
        super().__init__()
        if sequence_length < seasonality:
            raise ConfigError(f"model=seasonal_naive repeats the last cycle of data.seasonality={seasonality} steps, "
                              f"but data.sequence_length={sequence_length} holds less; set data.sequence_length >= "
                              f"{seasonality} or a shorter data.seasonality")
        self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, name)))
        # Step h (1-based) reads the input row of its season in the last cycle: L - m*ceil(h/m) + h - 1.
        steps = torch.arange(1, horizon + 1)
        self.register_buffer("source", sequence_length - seasonality * torch.ceil(steps / seasonality).long()
                             + steps - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.source).index_select(2, self.target_index)

"""Naive (persistence) forecaster: every horizon step repeats the last observed value of each target.

It has no parameters; it is the floor every forecasting table should beat. It reads the targets' past
only, so it declares no known-future or static covariates (asking for them is refused), and it
forecasts points only.
"""

from __future__ import annotations

from dataclasses import dataclass

from dl_core.models.seasonal_naive import SeasonalNaiveForecaster


@dataclass
class NaiveConfig:
    """Repeat the last observed value of each target over the horizon: the floor of every table."""

    _target_: str = "dl_core.models.naive.NaiveForecaster"


class NaiveForecaster(SeasonalNaiveForecaster):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets), the last value repeated: the seasonal
    naive forecast of a one-step season."""

    def __init__(self, horizon: int, sequence_length: int, target_index: list[int] | None):
        super().__init__(horizon, sequence_length, 1, target_index, name="naive")

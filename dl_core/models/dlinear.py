"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).

The look-back window of each channel is split into a trend (moving average) and a seasonal
remainder; one linear layer over time maps each part to the horizon, and the two are added.
Channels are forecast independently with weights shared across them (`individual=False`, the
paper's default) or one pair of layers per channel (`individual=True`). Each linear layer is an
output head (dl_core/models/heads.py), so the two maps may forecast quantiles or a distribution's
parameters instead of values; their sum takes that meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import require
from dl_core.models import require_target_inputs
from dl_core.models.heads import ForecastHead, ForecastOutputConfig, output_kind


@dataclass
class DLinearConfig(ForecastOutputConfig):
    """DLinear (Zeng et al. 2023): moving-average trend + seasonal remainder, one linear map each over
    the look-back window.

    Attributes:
        kernel_size: moving-average window of the trend (odd).
        individual: one pair of linear maps per channel instead of one pair shared by all channels (false,
            the paper's default).
    """

    _target_: str = "dl_core.models.dlinear.DLinear"
    kernel_size: int = 25
    individual: bool = False

    def validate(self, prefix: str) -> None:
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, f"{prefix}.kernel_size",
                f"must be an odd integer >= 1 (got {self.kernel_size}), e.g. 25")
        super().validate(prefix)


class MovingAverage(nn.Module):
    """Centred moving average over time, edges padded with the first/last value so length is kept."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time) -> trend of the same shape."""
        pad = (self.kernel_size - 1) // 2
        padded = torch.cat([x[..., :1].expand(-1, -1, pad), x, x[..., -1:].expand(-1, -1, pad)], dim=-1)
        return F.avg_pool1d(padded, self.kernel_size, stride=1)


class DLinear(nn.Module):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets).

    Every input channel is forecast; the targets are picked out by `target_index`, so the
    multivariate mode predicts all channels and the MS/S modes their target channel. It reads the
    channels' past only: known-future and static covariates are not part of the model (the paper's
    linear maps over the look-back have no place for them), and asking for them is refused.
    """

    data_kind = "timeseries"
    accepts_future_covariates = False
    accepts_static_covariates = False

    def __init__(self, sequence_length: int, horizon: int, n_features: int, target_index: list[int] | None, *,
                 kernel_size: int, individual: bool, quantiles: list[float] | None, distribution: str | None):
        super().__init__()
        self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, "dlinear")))
        self.decompose = MovingAverage(kernel_size)
        heads = n_features if individual else 1
        self.individual = individual
        self.output_kind = output_kind(quantiles, distribution)
        self.seasonal = nn.ModuleList(ForecastHead(sequence_length, horizon, 1, self.output_kind) for _ in range(heads))
        self.trend = nn.ModuleList(ForecastHead(sequence_length, horizon, 1, self.output_kind) for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        series = x.transpose(1, 2)
        trend = self.decompose(series)
        seasonal = series - trend
        if self.individual:
            raw = torch.stack([s.project(seasonal[:, i]) + t.project(trend[:, i])
                               for i, (s, t) in enumerate(zip(self.seasonal, self.trend, strict=False))], dim=1)
        else:
            raw = self.seasonal[0].project(seasonal) + self.trend[0].project(trend)
        out = self.seasonal[0].finish(raw).squeeze(3)  # (batch, channels, horizon[, parameters])
        return out.transpose(1, 2).index_select(2, self.target_index)

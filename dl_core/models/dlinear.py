"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).

The look-back window of each channel is split into a trend (moving average) and a seasonal
remainder; one linear layer over time maps each part to the horizon, and the two are added.
Channels are forecast independently with weights shared across them (`individual=False`, the
paper's default) or one pair of layers per channel (`individual=True`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import require
from dl_core.models import require_target_inputs


@dataclass
class DLinearConfig:
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
    multivariate mode predicts all channels and the MS/S modes their target channel.
    """

    data_kind = "timeseries"

    def __init__(self, sequence_length: int, horizon: int, n_features: int, target_index: list[int] | None, *,
                 kernel_size: int, individual: bool):
        super().__init__()
        self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, "dlinear")))
        self.decompose = MovingAverage(kernel_size)
        heads = n_features if individual else 1
        self.individual = individual
        self.seasonal = nn.ModuleList(nn.Linear(sequence_length, horizon) for _ in range(heads))
        self.trend = nn.ModuleList(nn.Linear(sequence_length, horizon) for _ in range(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        series = x.transpose(1, 2)
        trend = self.decompose(series)
        seasonal = series - trend
        if self.individual:
            out = torch.stack([s(seasonal[:, i]) + t(trend[:, i])
                               for i, (s, t) in enumerate(zip(self.seasonal, self.trend, strict=False))], dim=1)
        else:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)
        return out.transpose(1, 2).index_select(2, self.target_index)

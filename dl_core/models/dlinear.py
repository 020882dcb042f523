"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023).

The look-back window of each channel is split into a trend (moving average) and a seasonal
remainder; one linear layer over time maps each part to the horizon, and the two are added.
Channels are forecast independently with weights shared across them (`individual=False`, the
paper's default) or one pair of layers per channel (`individual=True`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.models.naive import require_target_inputs


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

    def __init__(self, sequence_length: int, horizon: int, n_features: int, target_index: list[int] | None,
                 kernel_size: int = 25, individual: bool = False):
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
                               for i, (s, t) in enumerate(zip(self.seasonal, self.trend))], dim=1)
        else:
            out = self.seasonal[0](seasonal) + self.trend[0](trend)
        return out.transpose(1, 2).index_select(2, self.target_index)

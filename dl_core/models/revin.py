"""RevIN (Kim et al., "Reversible Instance Normalization for Accurate Time-Series Forecasting against
Distribution Shift", ICLR 2022), for every forecaster that offers `instance_norm` (the LSTM, PatchTST)."""

from __future__ import annotations

import torch
from torch import nn

from dl_core.models.heads import ForecastHead

Stats = tuple[torch.Tensor, torch.Tensor]


class RevIN(nn.Module):
    """Each window of each channel standardised by its own statistics, which the forecast gets back, so a
    level or scale the training months never saw looks familiar. `affine`: a learnable scale and shift per
    channel after standardising (RevIN's affine part); without it the module has no parameters."""

    def __init__(self, n_channels: int, affine: bool, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(n_channels)) if affine else None

    def normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """(batch, time, channels) -> standardised x and the (mean, std) that `restore` needs."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = (x.var(dim=1, keepdim=True, unbiased=False) + self.eps).sqrt().detach()
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x, (mean, std)

    def restore(self, y: torch.Tensor, stats: Stats, head: ForecastHead) -> torch.Tensor:
        """Outputs of `head` on the normalised scale back on the window's, as one map that `head.rescale` applies
        the way its kind needs (quantiles and locations move and stretch, a distribution's scale stretches).
        `stats` are those of the channels the head forecasts (a model that forecasts some of the channels it
        normalised picks theirs)."""
        mean, std = stats
        if self.weight is None:
            return head.rescale(y, mean, std)
        # (y - bias) / weight * std + mean, written as y * scale + loc.
        scale = std / (self.weight + self.eps * self.eps)
        return head.rescale(y, mean - self.bias * scale, scale)

"""LSTM forecaster: encode the window, map the last hidden state to every horizon step at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dl_core.errors import require
from dl_core.models import require_target_inputs


@dataclass
class LSTMConfig:
    """LSTM forecaster: the last hidden state maps to all horizon steps at once.

    Attributes:
        hidden_dim: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the output layer.
        bidirectional: read each window in both directions.
        instance_norm: standardise each window by its own mean and std and map the forecast back
            (RevIN; helps when levels drift); needs the targets among the inputs.
        channel_independent: forecast each target from its own past alone, all targets through one
            shared LSTM (as PatchTST and DLinear do); needs the targets among the inputs and leaves
            the other inputs unused.
    """

    _target_: str = "dl_core.models.lstm.LSTMForecaster"
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False
    instance_norm: bool = False
    channel_independent: bool = False

    def validate(self, prefix: str) -> None:
        require(self.hidden_dim >= 1, f"{prefix}.hidden_dim", f"must be >= 1 (got {self.hidden_dim})")
        require(self.num_layers >= 1, f"{prefix}.num_layers", f"must be >= 1 (got {self.num_layers})")
        require(0.0 <= self.dropout < 1.0, f"{prefix}.dropout", f"must be in [0, 1) (got {self.dropout})")


class LSTMForecaster(nn.Module):
    """Direct multi-step forecaster: (batch, sequence_length, n_features) -> (batch, horizon, n_targets).

    Predicting all steps from one encoding (rather than feeding predictions back in) avoids
    compounding errors and keeps training a single forward pass per window.

    `instance_norm` standardises each window by its own per-channel mean and std and maps the
    forecast back with the target channels' statistics (RevIN without the affine part, Kim et al.
    2022): a series whose level drifts away from the training period (ETT's test months) then looks
    like the windows the model was trained on.

    `channel_independent` forecasts each target from its own history alone, every target through
    the same LSTM (the channel independence of PatchTST, Nie et al. 2023, and of DLinear): the
    model sees n_targets times as many series of one channel each instead of learning a joint
    map over all channels, which over-fits on small multivariate sets such as ETT. Inputs that are
    not targets are then unused.
    """

    data_kind = "timeseries"

    def __init__(self, n_features: int, n_targets: int, horizon: int, target_index: list[int] | None, *,
                 hidden_dim: int, num_layers: int, dropout: float, bidirectional: bool, instance_norm: bool,
                 channel_independent: bool):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        self.instance_norm, self.channel_independent = instance_norm, channel_independent
        if instance_norm or channel_independent:
            option = "instance_norm" if instance_norm else "channel_independent"
            targets = require_target_inputs(target_index, f"lstm with model.{option}")
            self.register_buffer("target_index", torch.tensor(targets))
        n_inputs, n_outputs = (1, 1) if channel_independent else (n_features, n_targets)
        self.lstm = nn.LSTM(n_inputs, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim * directions, horizon * n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.instance_norm:
            mean = x.mean(dim=1, keepdim=True).detach()
            std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt().detach()
            x = (x - mean) / std
        out = self._forecast_each_target(x) if self.channel_independent else self._forecast(x, self.n_targets)
        if self.instance_norm:
            out = out * std.index_select(2, self.target_index) + mean.index_select(2, self.target_index)
        return out

    def _forecast(self, x: torch.Tensor, n_outputs: int) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        directions = 2 if self.lstm.bidirectional else 1
        last = h_n[-directions:].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(self.dropout(last)).view(-1, self.horizon, n_outputs)

    def _forecast_each_target(self, x: torch.Tensor) -> torch.Tensor:
        series = x.index_select(2, self.target_index)
        batch, length, n_series = series.shape
        one_channel = series.transpose(1, 2).reshape(batch * n_series, length, 1)
        return self._forecast(one_channel, 1).view(batch, n_series, self.horizon).transpose(1, 2)

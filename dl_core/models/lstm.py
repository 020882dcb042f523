"""LSTM forecaster: encode the window, map the last hidden state to every horizon step at once."""

from __future__ import annotations

import torch
from torch import nn

from dl_core.models.naive import require_target_inputs


class LSTMForecaster(nn.Module):
    """Direct multi-step forecaster: (batch, sequence_length, n_features) -> (batch, horizon, n_targets).

    Predicting all steps from one encoding (rather than feeding predictions back in) avoids
    compounding errors and keeps training a single forward pass per window.

    `instance_norm` standardises each window by its own per-channel mean and std and maps the
    forecast back with the target channels' statistics (RevIN without the affine part, Kim et al.
    2022): a series whose level drifts away from the training period (ETT's test months) then looks
    like the windows the model was trained on.
    """

    data_kind = "timeseries"

    def __init__(self, n_features: int, n_targets: int, horizon: int = 1, hidden_dim: int = 64,
                 num_layers: int = 2, dropout: float = 0.2, bidirectional: bool = False,
                 instance_norm: bool = False, target_index: list[int] | None = None):
        super().__init__()
        self.horizon, self.n_targets, self.instance_norm = horizon, n_targets, instance_norm
        if instance_norm:
            self.register_buffer("target_index", torch.tensor(require_target_inputs(target_index, "lstm")))
        self.lstm = nn.LSTM(n_features, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim * directions, horizon * n_targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.instance_norm:
            mean = x.mean(dim=1, keepdim=True).detach()
            std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt().detach()
            x = (x - mean) / std
        _, (h_n, _) = self.lstm(x)
        directions = 2 if self.lstm.bidirectional else 1
        last = h_n[-directions:].transpose(0, 1).reshape(x.shape[0], -1)
        out = self.head(self.dropout(last)).view(-1, self.horizon, self.n_targets)
        if self.instance_norm:
            out = out * std.index_select(2, self.target_index) + mean.index_select(2, self.target_index)
        return out

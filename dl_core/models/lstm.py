"""LSTM forecaster: encode the window, map the last hidden state to every horizon step at once."""

from __future__ import annotations

import torch
from torch import nn


class LSTMForecaster(nn.Module):
    """Direct multi-step forecaster: (batch, sequence_length, n_features) -> (batch, horizon, n_targets).

    Predicting all steps from one encoding (rather than feeding predictions back in) avoids
    compounding errors and keeps training a single forward pass per window.
    """

    data_kind = "timeseries"

    def __init__(self, n_features: int, n_targets: int, horizon: int = 1, hidden_dim: int = 64,
                 num_layers: int = 2, dropout: float = 0.2, bidirectional: bool = False):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        self.lstm = nn.LSTM(n_features, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_dim * directions, horizon * n_targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        directions = 2 if self.lstm.bidirectional else 1
        last = h_n[-directions:].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(self.dropout(last)).view(-1, self.horizon, self.n_targets)

"""LSTM forecaster: encode the window, map the last hidden state to every horizon step at once, or decode
the horizon over its known-future covariates."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dl_core.errors import ConfigError, require_at_least, require_dropout
from dl_core.models import require_target_inputs
from dl_core.models.heads import ForecastHead, ForecastOutputConfig, output_kind
from dl_core.models.revin import RevIN


@dataclass
class LSTMConfig(ForecastOutputConfig):
    """LSTM forecaster: the last hidden state maps to all horizon steps at once; with future covariates a
    decoder LSTM reads them over the horizon.

    Attributes:
        hidden_dim: LSTM hidden units per direction.
        num_layers: stacked LSTM layers (the encoder's, and the decoder's when there is one).
        dropout: dropout between LSTM layers and before the output layer.
        bidirectional: read each window in both directions (not with future covariates, whose decoder
            continues the encoder's final state).
        instance_norm: standardise each window by its own mean and std and map the forecast back
            (RevIN; on by default, as neuralforecast scales each window of its RNNs: on the built-in data
            it halves the validation MSE, since levels drift); needs the targets among the inputs.
        channel_independent: forecast each target from its own past alone, all targets through one
            shared LSTM (as PatchTST and DLinear do); needs the targets among the inputs and leaves
            the other inputs unused.
        static_embedding_dim: width of the embedding of each categorical static column.
    """

    _target_: str = "dl_core.models.lstm.LSTMForecaster"
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False
    instance_norm: bool = True
    channel_independent: bool = False
    static_embedding_dim: int = 4

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, hidden_dim=1, num_layers=1, static_embedding_dim=1)
        require_dropout(self, prefix, "dropout")
        super().validate(prefix)


class LSTMForecaster(nn.Module):
    """Direct multi-step forecaster: (batch, sequence_length, n_features) -> (batch, horizon, n_targets), with
    a last axis of quantiles or distribution parameters when the output head forecasts those.

    Predicting all steps from one encoding (rather than feeding predictions back in) avoids
    compounding errors and keeps training a single forward pass per window.

    Covariates: the encoder reads the past inputs, the known-future covariates over the look-back
    and the per-series (static) inputs at every step. With future covariates, a decoder LSTM starts
    from the encoder's final state and reads the covariates of each horizon step (and the static
    inputs), and the head maps each of its steps to that step's outputs (the encoder-decoder of
    Sutskever et al. 2014, as in DeepAR and the MQ-RNN family, without feeding outputs back).

    `instance_norm` standardises each window by its own per-channel mean and std and maps the
    forecast back with the target channels' statistics (RevIN without the affine part, Kim et al.
    2022): a series whose level drifts away from the training period (ETT's test months) then looks
    like the windows the model was trained on. Covariates are left as they are.

    `channel_independent` forecasts each target from its own history alone, every target through
    the same LSTM (the channel independence of PatchTST, Nie et al. 2023, and of DLinear): the
    model sees n_targets times as many series of one channel each instead of learning a joint
    map over all channels, which over-fits on small multivariate sets such as ETT. Inputs that are
    not targets are then unused; covariates reach every target's series.
    """

    data_kind = "timeseries"
    accepts_future_covariates = True
    accepts_static_covariates = True

    def __init__(self, n_features: int, n_targets: int, horizon: int, target_index: list[int] | None,
                 n_future: int = 0, n_static: int = 0, static_cardinalities: list[int] | None = None, *,
                 hidden_dim: int, num_layers: int, dropout: float, bidirectional: bool, instance_norm: bool,
                 channel_independent: bool, static_embedding_dim: int, quantiles: list[float] | None,
                 distribution: str | None):
        super().__init__()
        self.horizon, self.n_targets = horizon, n_targets
        self.channel_independent = channel_independent
        if instance_norm and target_index is None:
            raise ConfigError("model.instance_norm: RevIN (on by default) standardises each window by its targets' "
                              "own mean and std, so the targets must be inputs; set data.include_target_in_inputs="
                              "true, or model.instance_norm=false")
        if instance_norm or channel_independent:
            targets = require_target_inputs(target_index, "lstm with model.channel_independent")
            self.register_buffer("target_index", torch.tensor(targets))
        if n_future and bidirectional:
            raise ConfigError("model.bidirectional: the decoder over future covariates continues the encoder's "
                              "final state, which a bidirectional encoder does not end in; set "
                              "model.bidirectional=false")
        cardinalities = list(static_cardinalities or [])
        self.static_embeddings = nn.ModuleList(nn.Embedding(n, static_embedding_dim) for n in cardinalities)
        n_context = n_static + len(cardinalities) * static_embedding_dim
        n_inputs, n_outputs = (1, 1) if channel_independent else (n_features, n_targets)
        self.lstm = nn.LSTM(n_inputs + n_future + n_context, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0, bidirectional=bidirectional)
        directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.revin = RevIN(n_features, affine=False) if instance_norm else None
        kind = output_kind(quantiles, distribution)
        if n_future:
            self.decoder = nn.LSTM(n_future + n_context, hidden_dim, num_layers=num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
            self.head = ForecastHead(hidden_dim, 1, n_outputs, kind)
        else:
            self.decoder = None
            self.head = ForecastHead(hidden_dim * directions, horizon, n_outputs, kind)
        self.output_kind = kind

    def forward(self, x: torch.Tensor, future: torch.Tensor | None = None, static: torch.Tensor | None = None,
                static_codes: torch.Tensor | None = None) -> torch.Tensor:
        """`future`: (batch, sequence_length + horizon, n_future) known-future covariates; `static`: (batch,
        n_static) numbers and `static_codes`: (batch, n_categorical) category indices of each window's series."""
        if self.revin is not None:
            x, (mean, std) = self.revin.normalise(x)
        context = self._context(static, static_codes)
        if self.channel_independent:
            out = self._forecast_each_target(x, future, context)
        else:
            out = self._forecast(x, future, context)
        if self.revin is not None:
            targets = self.target_index
            out = self.revin.restore(out, (mean.index_select(2, targets), std.index_select(2, targets)), self.head)
        return out

    def _context(self, static: torch.Tensor | None, codes: torch.Tensor | None) -> torch.Tensor | None:
        """The per-series inputs, numbers and category embeddings side by side (batch, n_context)."""
        parts = [] if static is None else [static]
        if codes is not None:
            parts += [embedding(codes[:, i]) for i, embedding in enumerate(self.static_embeddings)]
        return torch.cat(parts, dim=-1) if parts else None

    def _forecast(self, series: torch.Tensor, future: torch.Tensor | None,
                  context: torch.Tensor | None) -> torch.Tensor:
        length = series.shape[1]
        _, (h_n, c_n) = self.lstm(_steps([series] + ([] if future is None else [future[:, :length]]), context))
        if self.decoder is None:
            directions = 2 if self.lstm.bidirectional else 1
            last = h_n[-directions:].transpose(0, 1).reshape(series.shape[0], -1)
            return self.head(self.dropout(last))
        decoded, _ = self.decoder(_steps([future[:, length:]], context), (h_n, c_n))
        return self.head(self.dropout(decoded)).squeeze(2)

    def _forecast_each_target(self, x: torch.Tensor, future: torch.Tensor | None,
                              context: torch.Tensor | None) -> torch.Tensor:
        series = x.index_select(2, self.target_index)
        batch, length, n_series = series.shape
        one_channel = series.transpose(1, 2).reshape(batch * n_series, length, 1)
        each = None if future is None else future.repeat_interleave(n_series, dim=0)
        shared = None if context is None else context.repeat_interleave(n_series, dim=0)
        out = self._forecast(one_channel, each, shared).squeeze(2)
        return out.reshape(batch, n_series, *out.shape[1:]).transpose(1, 2)


def _steps(parts: list[torch.Tensor], context: torch.Tensor | None) -> torch.Tensor:
    """Each step's inputs: the step's values of `parts` (batch, steps, ...) side by side, then the series'
    static context, the same at every step."""
    if context is not None:
        parts = [*parts, context.unsqueeze(1).expand(-1, parts[0].shape[1], -1)]
    return torch.cat(parts, dim=-1)

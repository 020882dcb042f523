"""PatchTST (Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers",
ICLR 2023, arXiv:2211.14730): channel-independent patches of each series as the tokens of a
Transformer encoder, with instance normalisation and a flatten head. The flatten head ends in the shared
output head (dl_core/models/heads.py), so PatchTST forecasts points, quantiles or a distribution's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import ConfigError, require, require_at_least, require_dropout
from dl_core.models import require_target_inputs
from dl_core.models.heads import ForecastHead, ForecastOutputConfig, output_kind
from dl_core.models.revin import RevIN


@dataclass
class PatchTSTConfig(ForecastOutputConfig):
    """PatchTST (Nie et al. 2023): patches of each channel's look-back, a Transformer encoder over them
    and a linear head over the flattened encoding; every target channel through the same weights.

    The defaults are the paper's default model (3 layers, 16 heads, D=128, F=256, dropout 0.2);
    the paper's reduced model for the small ETTh sets is `experiment=ett_patchtst`.

    Attributes:
        patch_length: time steps per patch (P).
        stride: steps between the starts of consecutive patches (S); the look-back is also padded at
            its end with its last value repeated `stride` times, so there are (L - P) / S + 2 patches.
        d_model: width of the patch embeddings and of the encoder (D).
        n_heads: attention heads per layer (H); must divide d_model.
        n_layers: encoder layers.
        d_ff: hidden units of each layer's feed-forward network (F).
        dropout: dropout on the embedded patches and on the output of each attention and feed-forward
            block (also inside the feed-forward network).
        head_dropout: dropout on the flattened encoding before the linear head.
        instance_norm: standardise each window of each channel by its own mean and std and map the
            forecast back (RevIN, Kim et al. 2022), as the paper does.
        affine: with instance_norm, a learnable scale and shift per channel after standardising
            (RevIN's affine part, off in the paper's runs).
    """

    _target_: str = "dl_core.models.patchtst.PatchTST"
    patch_length: int = 16
    stride: int = 8
    d_model: int = 128
    n_heads: int = 16
    n_layers: int = 3
    d_ff: int = 256
    dropout: float = 0.2
    head_dropout: float = 0.0
    instance_norm: bool = True
    affine: bool = False

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, patch_length=1, stride=1, d_model=1, n_heads=1, n_layers=1, d_ff=1)
        require(self.d_model % self.n_heads == 0, f"{prefix}.n_heads",
                f"must divide {prefix}.d_model={self.d_model} (got {self.n_heads}), e.g. {prefix}.n_heads=4")
        require_dropout(self, prefix, "dropout", "head_dropout")
        super().validate(prefix)


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the model dimension, statistics over every patch of every series in the batch:
    the paper's choice over LayerNorm for time-series Transformers (after Zerveas et al. 2021)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view_as(x)


class MultiHeadAttention(nn.Module):
    """Scaled dot-product self-attention over the patches of one series, several heads.

    Written out rather than `nn.MultiheadAttention`, whose training path costs a third more per step
    at these sizes (4 heads of 4 dimensions) on a CPU.
    """

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, width // self.n_heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class EncoderLayer(nn.Module):
    """A vanilla post-norm Transformer encoder layer with BatchNorm: attention, add, norm; feed-forward
    (GELU), add, norm."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        # NOTE[DIFF]: no dropout on the attention weights themselves (the paper names none); dropout
        # acts on the attention block's output instead.
        self.attention = MultiHeadAttention(d_model, n_heads)
        self.attention_dropout = nn.Dropout(dropout)
        self.attention_norm = TokenBatchNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout),
                                          nn.Linear(d_ff, d_model), nn.Dropout(dropout))
        self.feed_forward_norm = TokenBatchNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention_dropout(self.attention(x)))
        return self.feed_forward_norm(x + self.feed_forward(x))


class PatchTST(nn.Module):
    """(batch, sequence_length, n_features) -> (batch, horizon, n_targets[, parameters]).

    Nie et al., "A Time Series is Worth 64 Words: Long-term Forecasting with Transformers", ICLR 2023
    (arXiv:2211.14730), the supervised model of its Section 3.1:

    - channel independence: each target channel is a univariate series of its own, and all of them
      go through the same embedding, encoder and head. Input channels that are not targets are
      unused (mode MS reads its target alone; mode M forecasts every channel).
    - instance normalisation of each series' look-back (`RevIN`, dl_core/models/revin.py), undone on the
      forecast.
    - patching: the look-back of length L, padded at its end with its last value repeated S times,
      is cut into N = (L - P) / S + 2 patches of length P starting every S steps.
    - a linear projection of each patch to D dimensions plus a learnable positional encoding.
    - a vanilla Transformer encoder with BatchNorm instead of LayerNorm (`EncoderLayer`).
    - the flatten head (`self.head`): the N x D encoding of a series, flattened, through one linear
      layer to the H forecast values of that series. That layer is the shared `ForecastHead`, so with
      `quantiles` or `distribution` it forecasts H x (the kind's parameters) values instead, which
      RevIN maps back as their kind needs.

    It reads the target channels' past only: known-future and static covariates have no place in the
    paper's model, and asking for them is refused.

    BatchNorm makes a training step's normalisation depend on the other series of the batch, as in
    the paper; in evaluation (running statistics) each channel's forecast depends on its own past
    alone.
    """

    data_kind = "timeseries"
    accepts_future_covariates = False
    accepts_static_covariates = False

    def __init__(self, sequence_length: int, horizon: int, target_index: list[int] | None, *, patch_length: int,
                 stride: int, d_model: int, n_heads: int, n_layers: int, d_ff: int, dropout: float,
                 head_dropout: float, instance_norm: bool, affine: bool, quantiles: list[float] | None,
                 distribution: str | None):
        super().__init__()
        targets = require_target_inputs(target_index, "patchtst")
        if sequence_length + stride < patch_length:
            raise ConfigError(f"model.patch_length: {patch_length} is longer than the padded look-back "
                              f"(data.sequence_length={sequence_length} + model.stride={stride}); "
                              f"lower it or raise data.sequence_length")
        self.register_buffer("target_index", torch.tensor(targets))
        self.patch_length, self.stride = patch_length, stride
        self.n_patches = (sequence_length - patch_length) // stride + 2
        self.revin = RevIN(len(targets), affine) if instance_norm else None
        self.patch_embedding = nn.Linear(patch_length, d_model)
        # Learnable, one vector per patch position. NOTE[DIFF]: the initial values (uniform in
        # +-0.02) are a choice of ours; the paper only says the encoding is learnable.
        self.position_embedding = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.embedding_dropout = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.output_kind = output_kind(quantiles, distribution)
        self.head = nn.Sequential(nn.Dropout(head_dropout),
                                  ForecastHead(self.n_patches * d_model, horizon, 1, self.output_kind))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NOTE[DIFF]: only the target channels are read. The paper forecasts every input channel (mode
        # M); in modes S and MS the same forecasts of the targets come out (channels are independent),
        # but training batches' BatchNorm statistics see only the targets' series.
        series = x.index_select(2, self.target_index)
        if self.revin is not None:
            series, stats = self.revin.normalise(series)
        encoded = self.encode(series)
        # (batch, channels, horizon, 1[, parameters]) -> (batch, horizon, channels[, parameters])
        out = self.head(encoded.flatten(start_dim=2)).squeeze(3).transpose(1, 2)
        return self.revin.restore(out, stats, self.head[-1]) if self.revin is not None else out

    def patches(self, series: torch.Tensor) -> torch.Tensor:
        """(batch, time, channels) -> (batch, channels, n_patches, patch_length), after end padding."""
        by_channel = series.transpose(1, 2)
        padded = torch.cat([by_channel, by_channel[..., -1:].expand(-1, -1, self.stride)], dim=-1)
        return padded.unfold(-1, self.patch_length, self.stride)

    def encode(self, series: torch.Tensor) -> torch.Tensor:
        """(batch, time, channels) -> (batch, channels, n_patches, d_model); channels are folded into
        the batch, so the encoder never mixes them."""
        patches = self.patches(series)
        batch, channels = patches.shape[:2]
        tokens = self.embedding_dropout(self.patch_embedding(patches) + self.position_embedding)
        tokens = tokens.reshape(batch * channels, self.n_patches, -1)
        for layer in self.encoder:
            tokens = layer(tokens)
        return tokens.view(batch, channels, self.n_patches, -1)

"""FT-Transformer (Gorishniy et al. 2021) from rtdl-revisiting-models, fitted to the harness's conventions.

The math is rtdl's; this subclass only adds what the harness needs: `data_kind`, the data-derived
sizes (`n_cont_features`, `cat_cardinalities`, `d_out`) as constructor arguments next to the
hyperparameters under rtdl's own names, a forward that accepts empty feature blocks (a table
with no numeric or no categorical columns) as the tabular split produces them, and a regression's
quantiles from the head when `quantiles` asks for them (dl_core/models/heads.py). rtdl's
`make_parameter_groups` (no weight decay on embeddings, normalization and biases) is inherited,
and the engine uses it for AdamW.
"""

from __future__ import annotations

from dataclasses import dataclass

import rtdl_revisiting_models as rtdl
import torch

from dl_core.errors import require, require_at_least, require_dropout
from dl_core.models.heads import QuantileOutputConfig, output_kind, table_outputs


@dataclass
class FTTransformerConfig(QuantileOutputConfig):
    """rtdl's FTTransformer arguments, under rtdl's own names; the defaults are the paper's default
    3-block model (rtdl `FTTransformer.get_default_kwargs(3)`), which the paper trains with AdamW
    lr=1e-4, weight_decay=1e-5 (conf/experiment/california_ft_transformer.yaml).

    Attributes:
        n_blocks: transformer blocks.
        d_block: token (embedding) size; a multiple of `attention_n_heads`.
        attention_n_heads: attention heads per block.
        attention_dropout: dropout on attention weights.
        ffn_d_hidden_multiplier: feed-forward hidden size as a multiple of `d_block`.
        ffn_dropout: dropout inside the feed-forward layers.
        residual_dropout: dropout on the residual branches.
    """

    _target_: str = "dl_core.models.ft_transformer.FTTransformer"
    n_blocks: int = 3
    d_block: int = 192
    attention_n_heads: int = 8
    attention_dropout: float = 0.2
    ffn_d_hidden_multiplier: float = 4 / 3
    ffn_dropout: float = 0.1
    residual_dropout: float = 0.0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_blocks=1, attention_n_heads=1)
        require(self.d_block >= 1 and self.d_block % self.attention_n_heads == 0, f"{prefix}.d_block",
                f"must be a positive multiple of model.attention_n_heads={self.attention_n_heads} "
                f"(got {self.d_block}), e.g. {prefix}.d_block=192")
        require(self.ffn_d_hidden_multiplier > 0, f"{prefix}.ffn_d_hidden_multiplier",
                f"must be > 0 (got {self.ffn_d_hidden_multiplier}), e.g. 1.3333")
        require_dropout(self, prefix, "attention_dropout", "ffn_dropout", "residual_dropout")
        super().validate(prefix)


class FTTransformer(rtdl.FTTransformer):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64) -> (batch, d_out) outputs, or
    (batch, d_out, levels) quantiles."""

    data_kind = "tabular"

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, *, n_blocks: int,
                 d_block: int, attention_n_heads: int, attention_dropout: float, ffn_d_hidden_multiplier: float,
                 ffn_dropout: float, residual_dropout: float, quantiles: list[float] | None):
        kind = output_kind(quantiles, None)
        super().__init__(n_cont_features=n_cont_features, cat_cardinalities=list(cat_cardinalities),
                         d_out=d_out * kind.n_params, n_blocks=n_blocks, d_block=d_block,
                         attention_n_heads=attention_n_heads, attention_dropout=attention_dropout,
                         ffn_d_hidden_multiplier=ffn_d_hidden_multiplier, ffn_dropout=ffn_dropout,
                         residual_dropout=residual_dropout)
        self.output_kind = kind

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """rtdl wants None for an absent feature block; the splits hand over zero-width tensors."""
        raw = super().forward(x_num if x_num.shape[-1] else None, x_cat if x_cat.shape[-1] else None)
        return table_outputs(raw, self.output_kind)

"""FT-Transformer (Gorishniy et al. 2021) from rtdl-revisiting-models, fitted to the harness's conventions.

The math is rtdl's; this subclass only adds what the harness needs: `data_kind`, the data-derived
sizes (`n_cont_features`, `cat_cardinalities`, `d_out`) as constructor arguments next to the
hyperparameters under rtdl's own names, and a forward that accepts empty feature blocks (a table
with no numeric or no categorical columns) as the tabular split produces them. rtdl's
`make_parameter_groups` (no weight decay on embeddings, normalization and biases) is inherited,
and the engine uses it for AdamW.
"""

from __future__ import annotations

import rtdl_revisiting_models as rtdl
import torch


class FTTransformer(rtdl.FTTransformer):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64) -> (batch, d_out) outputs."""

    data_kind = "tabular"

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, n_blocks: int = 3,
                 d_block: int = 192, attention_n_heads: int = 8, attention_dropout: float = 0.2,
                 ffn_d_hidden_multiplier: float = 4 / 3, ffn_dropout: float = 0.1, residual_dropout: float = 0.0):
        super().__init__(n_cont_features=n_cont_features, cat_cardinalities=list(cat_cardinalities), d_out=d_out,
                         n_blocks=n_blocks, d_block=d_block, attention_n_heads=attention_n_heads,
                         attention_dropout=attention_dropout, ffn_d_hidden_multiplier=ffn_d_hidden_multiplier,
                         ffn_dropout=ffn_dropout, residual_dropout=residual_dropout)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """rtdl wants None for an absent feature block; the splits hand over zero-width tensors."""
        return super().forward(x_num if x_num.shape[-1] else None, x_cat if x_cat.shape[-1] else None)

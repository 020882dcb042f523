"""MLP (Gorishniy et al. 2021, Section 3.1) from rtdl-revisiting-models, optionally with numeric embeddings.

rtdl's MLP is the math (blocks of Linear-ReLU-Dropout, a linear head). The harness adds what a table
row needs: numeric features as they are or embedded (`num_embeddings=periodic` is MLP-PLR of
Gorishniy et al. 2022; `piecewise_linear` is the TabM paper's MLP with piecewise-linear embeddings),
categories one-hot, both flattened into the MLP's input (dl_core/models/features.py), and a regression's
quantiles from the last layer when `quantiles` asks for them (dl_core/models/heads.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rtdl_revisiting_models as rtdl
import torch
from torch import nn

from dl_core.errors import require_at_least, require_dropout
from dl_core.models.features import (
    NumEmbeddingsConfig,
    flat_features,
    flat_size,
    make_num_embeddings,
    no_decay_parameter_groups,
)
from dl_core.models.heads import QuantileOutputConfig, output_kind, table_outputs


@dataclass
class MLPConfig(NumEmbeddingsConfig, QuantileOutputConfig):
    """rtdl's MLP arguments under rtdl's names, plus numeric embeddings; the defaults are a mid-sized
    model of the TabM paper's search space (its tuned California MLPs have 3-4 blocks of 400-900).

    Attributes:
        n_blocks: hidden blocks (Linear-ReLU-Dropout).
        d_block: width of every block.
        dropout: dropout after every block.
    """

    _target_: str = "dl_core.models.mlp.MLP"
    n_blocks: int = 3
    d_block: int = 256
    dropout: float = 0.1

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_blocks=1, d_block=1)
        require_dropout(self, prefix, "dropout")
        NumEmbeddingsConfig.validate(self, prefix)
        QuantileOutputConfig.validate(self, prefix)


class MLP(nn.Module):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64) -> (batch, d_out) outputs, or
    (batch, d_out, levels) quantiles."""

    data_kind = "tabular"

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, x_num_train: torch.Tensor, *,
                 n_blocks: int, d_block: int, dropout: float, num_embeddings: str, d_embedding: int, n_bins: int,
                 n_frequencies: int, frequency_init_scale: float, quantiles: list[float] | None):
        super().__init__()
        self.cat_cardinalities = list(cat_cardinalities)
        self.output_kind = output_kind(quantiles, None)
        self.num_embeddings = make_num_embeddings(num_embeddings, x_num_train, d_embedding=d_embedding, n_bins=n_bins,
                                                  n_frequencies=n_frequencies,
                                                  frequency_init_scale=frequency_init_scale)
        self.backbone = rtdl.MLP(d_in=flat_size(n_cont_features, self.cat_cardinalities, self.num_embeddings),
                                 d_out=d_out * self.output_kind.n_params, n_blocks=n_blocks, d_block=d_block,
                                 dropout=dropout)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        raw = self.backbone(flat_features(x_num, x_cat, self.num_embeddings, self.cat_cardinalities))
        return table_outputs(raw, self.output_kind)

    def make_parameter_groups(self) -> list[dict[str, Any]]:
        return no_decay_parameter_groups(self)

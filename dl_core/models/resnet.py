"""ResNet (Gorishniy et al. 2021, Section 3.2) from rtdl-revisiting-models, over a flat table row.

rtdl's ResNet is the math (a linear stem, residual blocks of BatchNorm-Linear-ReLU-Dropout-Linear-
Dropout, a BatchNorm-ReLU-Linear head). The harness adds the row: numeric features as they are,
categories one-hot (dl_core/models/features.py), and a regression's quantiles from the head when `quantiles`
asks for them (dl_core/models/heads.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import rtdl_revisiting_models as rtdl
import torch
from torch import nn

from dl_core.errors import require, require_at_least, require_dropout
from dl_core.models.features import flat_features, flat_size
from dl_core.models.heads import QuantileOutputConfig, output_kind, table_outputs


@dataclass
class ResNetConfig(QuantileOutputConfig):
    """rtdl's ResNet arguments under rtdl's names; the defaults are a mid-sized model of the paper's
    search space (Gorishniy et al. 2021, Table 10).

    Attributes:
        n_blocks: residual blocks.
        d_block: width of the residual stream (each block's input and output).
        d_hidden_multiplier: hidden width inside a block, as a multiple of `d_block`.
        dropout1: dropout on a block's hidden layer.
        dropout2: dropout on a block's output, before the residual addition.
    """

    _target_: str = "dl_core.models.resnet.ResNet"
    n_blocks: int = 2
    d_block: int = 192
    d_hidden_multiplier: float = 2.0
    dropout1: float = 0.15
    dropout2: float = 0.0

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_blocks=1, d_block=1)
        require(self.d_hidden_multiplier > 0, f"{prefix}.d_hidden_multiplier",
                f"must be > 0 (got {self.d_hidden_multiplier}), e.g. 2.0")
        require_dropout(self, prefix, "dropout1", "dropout2")
        super().validate(prefix)


class ResNet(nn.Module):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64) -> (batch, d_out) outputs, or
    (batch, d_out, levels) quantiles."""

    data_kind = "tabular"

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, *, n_blocks: int,
                 d_block: int, d_hidden_multiplier: float, dropout1: float, dropout2: float,
                 quantiles: list[float] | None):
        super().__init__()
        self.cat_cardinalities = list(cat_cardinalities)
        self.output_kind = output_kind(quantiles, None)
        self.backbone = rtdl.ResNet(d_in=flat_size(n_cont_features, self.cat_cardinalities, None),
                                    d_out=d_out * self.output_kind.n_params, n_blocks=n_blocks, d_block=d_block,
                                    d_hidden_multiplier=d_hidden_multiplier, dropout1=dropout1, dropout2=dropout2)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        raw = self.backbone(flat_features(x_num, x_cat, None, self.cat_cardinalities))
        return table_outputs(raw, self.output_kind)

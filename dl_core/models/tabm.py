"""TabM (Gorishniy et al., ICLR 2025): k MLPs in one, from the `tabm` package (the `tabular` extra).

The math is the package's `tabm.TabM`: k members that share the MLP's weights and differ by small
per-member adapters (`tabm`: BatchEnsemble adapters in every layer; `tabm-mini`: one adapter at the
input; `tabm-packed`: k independent MLPs), optionally over numeric embeddings
(dl_core/models/features.py; `piecewise_linear` bins are fit on the training split only).

As the paper trains and predicts: while training the model outputs every member's prediction,
(batch, k, d_out) (`output_kind = MEMBERS`), and the loss is the mean of the k members' losses
(`dl_core.task.base.members_loss`), not the loss of their mean; in eval mode it outputs the members'
average, (batch, d_out), on which validation selects the best epoch and the run is scored. A
regression averages the members' values; a classification averages their probabilities, returned
as log-probabilities so that the outputs stay logits of the task's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import ConfigError, require, require_at_least, require_dropout
from dl_core.models.features import NumEmbeddingsConfig, make_num_embeddings, no_decay_parameter_groups
from dl_core.models.outputs import MEMBERS


@dataclass
class TabMConfig(NumEmbeddingsConfig):
    """`tabm.TabM`'s arguments under its names; the defaults are the starting point the package's authors
    suggest (k=32, 3 blocks of 512, dropout 0.1; with AdamW lr 2e-3, weight decay 3e-4: the
    experiment presets set those).

    Attributes:
        arch_type: `tabm` (adapters in every layer), `tabm-mini` (one adapter at the input) or `tabm-packed`
            (k independent MLPs).
        k: ensemble members, trained together and averaged when predicting.
        n_blocks: hidden blocks of the shared MLP (the paper uses 2 with numeric embeddings).
        d_block: width of every block.
        dropout: dropout after every block.
    """

    _target_: str = "dl_core.models.tabm.TabM"
    arch_type: Literal["tabm", "tabm-mini", "tabm-packed"] = "tabm"
    k: int = 32
    n_blocks: int = 3
    d_block: int = 512
    dropout: float = 0.1

    def validate(self, prefix: str) -> None:
        require(self.k >= 1, f"{prefix}.k", f"must be >= 1 (got {self.k}), e.g. {prefix}.k=32")
        require_at_least(self, prefix, n_blocks=1, d_block=1)
        require_dropout(self, prefix, "dropout")
        super().validate(prefix)


class TabM(nn.Module):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64) -> (batch, k, d_out) while
    training, (batch, d_out) (the members' average) in eval mode."""

    data_kind = "tabular"
    output_kind = MEMBERS

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, predicts_classes: bool,
                 x_num_train: torch.Tensor, *, arch_type: str, k: int, n_blocks: int, d_block: int, dropout: float,
                 num_embeddings: str, d_embedding: int, n_bins: int, n_frequencies: int, frequency_init_scale: float):
        super().__init__()
        try:
            import tabm
        except ImportError:
            raise ConfigError("model=tabm: needs the tabm package; install the tabular extra: "
                              "pip install -e '.[tabular]'") from None
        self.predicts_classes = predicts_classes
        embeddings = make_num_embeddings(num_embeddings, x_num_train, d_embedding=d_embedding, n_bins=n_bins,
                                         n_frequencies=n_frequencies, frequency_init_scale=frequency_init_scale)
        # The first adapter's initialization, as the package's `TabM.make` chooses it: random signs over raw
        # features, normal over embeddings; tabm-packed has no adapters.
        start = None if arch_type == "tabm-packed" else "random-signs" if embeddings is None else "normal"
        self.net = tabm.TabM(n_num_features=n_cont_features, cat_cardinalities=list(cat_cardinalities), d_out=d_out,
                             num_embeddings=embeddings, arch_type=arch_type, k=k, n_blocks=n_blocks, d_block=d_block,
                             dropout=dropout, activation="ReLU", start_scaling_init=start)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        members = self.net(x_num if x_num.shape[-1] else None, x_cat if x_cat.shape[-1] else None)
        return members if self.training else self.average(members)

    def average(self, members: torch.Tensor) -> torch.Tensor:
        """(batch, k, d_out) members' outputs -> (batch, d_out): their mean value, or for classes the logits of
        their mean probability, computed in log space so that confident members do not overflow."""
        if not self.predicts_classes:
            return members.mean(dim=1)
        log_k = math.log(members.shape[1])
        if members.shape[-1] == 1:  # one logit: mean P(positive) and mean P(negative), as a log-odds
            positive = torch.logsumexp(F.logsigmoid(members), dim=1) - log_k
            negative = torch.logsumexp(F.logsigmoid(-members), dim=1) - log_k
            return positive - negative
        return torch.logsumexp(F.log_softmax(members, dim=-1), dim=1) - log_k

    def make_parameter_groups(self) -> list[dict[str, Any]]:
        return no_decay_parameter_groups(self)

"""TabR (Gorishniy et al., ICLR 2024, "TabR: Tabular Deep Learning Meets Nearest Neighbors", arXiv 2307.14338).

A feed-forward network with a k-nearest-neighbours-like retrieval in the middle. The encoder E maps a
row to x (numeric features, optionally embedded, and one-hot categories, then a linear layer and
`encoder_n_blocks` residual blocks) and its key k = W_K(x) (after a LayerNorm when E has blocks). The
candidates are the training rows: their keys are computed by the same E on every forward pass, so
gradients reach E through them too. For each row the `context_size` candidates nearest to k (squared
Euclidean distance) are retrieved, weighted by softmax(-||k - k_i||^2) (with dropout on the weights,
`context_dropout`), and their values W_Y(y_i) + T(k - k_i), with T = Linear(Dropout(ReLU(Linear(.))))
(the last linear without bias), are summed into x; the predictor P (`predictor_n_blocks` pre-norm
residual blocks) and the head (LayerNorm, ReLU, Linear) turn x into the outputs. W_Y is a linear map of
the (standardised) value for a regression and an embedding table of the class for a classification.

Training never lets a row see its own label: in training mode each row of the batch is excluded from its
own candidates. The epoch engine calls `net(*split.inputs(idx))` and knows nothing of this, so TabR
trains through `TabREstimator`, whose training split (`TrainingRows`) hands the model the batch's row
indices as a third input. Validation, test, prediction and serving use every training row as a candidate.

What retrieval needs after training, the training split's encoded inputs and targets, comes from the
data bundle's spec (`x_num_train`, `x_cat_train`, `y_train`), which every checkpoint keeps: a run
predicts and serves from its checkpoint alone. They are buffers of the module, so they follow it to its
device, but not saved in its state dict: the spec already holds them once, and each checkpoint would
otherwise store them twice more (`model` and `best_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from dl_core.data.bundle import DataBundle, Split
from dl_core.engine.estimator import TorchEstimator
from dl_core.engine.loop import FitContext, FitResult, fit
from dl_core.errors import ConfigError, require, require_at_least, require_dropout
from dl_core.models.features import (
    NumEmbeddingsConfig,
    flat_features,
    flat_size,
    make_num_embeddings,
    no_decay_parameter_groups,
    num_embeddings_library,
)
from dl_core.models.heads import QuantileOutputConfig, output_kind, table_outputs

# Distances computed at once in the search: batch x candidates per chunk. 2**24 float32 are 64 MiB; California's
# 13,209 candidates fit in one chunk for batches up to 1,270 rows.
SEARCH_CHUNK = 2**24


@dataclass
class TabRConfig(NumEmbeddingsConfig, QuantileOutputConfig):
    """TabR's arguments under the paper's names; the defaults are the paper's default TabR-S (no numeric
    embeddings, a linear encoder, one predictor block; d_main 265, dropouts 0.389), which the paper trains
    with AdamW lr 3.1e-4, weight decay 1.2e-6, batch 256 (the experiment presets set those). The paper's
    TabR adds periodic embeddings with a linear layer shared by the features: `num_embeddings: periodic`
    with `lite: true`.

    Attributes:
        d_main: width of x and of the keys.
        d_multiplier: the blocks' and T's hidden width, as a multiple of d_main.
        encoder_n_blocks: residual blocks of the encoder E after its linear layer (0: E is linear, and the
            keys are taken without normalization).
        predictor_n_blocks: pre-norm residual blocks of the predictor P.
        context_size: candidates retrieved for each row (m in the paper); fewer than the training rows.
        context_dropout: dropout on the retrieved candidates' attention weights.
        dropout0: dropout after the first linear layer of every block and of T.
        dropout1: dropout after the second linear layer of every block.
        lite: `periodic` embeddings: one linear layer shared by all features ("PLR(lite)", as TabR uses
            them); false: one per feature (MLP-PLR's).
    """

    _target_: str = "dl_core.models.tabr.TabR"
    d_main: int = 265
    d_multiplier: float = 2.0
    encoder_n_blocks: int = 0
    predictor_n_blocks: int = 1
    context_size: int = 96
    context_dropout: float = 0.389
    dropout0: float = 0.389
    dropout1: float = 0.0
    lite: bool = True

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, d_main=1, encoder_n_blocks=0, predictor_n_blocks=0, context_size=1)
        require(self.d_multiplier > 0, f"{prefix}.d_multiplier", f"must be > 0 (got {self.d_multiplier}), e.g. 2.0")
        require_dropout(self, prefix, "context_dropout", "dropout0", "dropout1")
        NumEmbeddingsConfig.validate(self, prefix)
        QuantileOutputConfig.validate(self, prefix)


class TrainingRows:
    """The training split whose inputs end with the batch's row indices: TabR's candidates are these rows,
    and a row must not retrieve itself while training."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return *self.split.inputs(idx), idx

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        inputs, target = self.split.batch(idx)
        return (*inputs, idx), target

    def to(self, device: torch.device) -> TrainingRows:
        return TrainingRows(self.split.to(device))

    def targets(self) -> torch.Tensor:
        return self.split.targets()

    def table(self, task: Any, outputs: np.ndarray) -> pd.DataFrame:
        return self.split.table(task, outputs)


class TabREstimator(TorchEstimator):
    """TabR trained by the epoch engine (early stopping, checkpoints, exact resume, AMP, DDP as for any
    module), on a training split that also gives the batch's row indices; prediction is the engine's."""

    def fit(self, bundle: DataBundle, context: FitContext) -> FitResult:
        splits = {**bundle.splits, "train": TrainingRows(bundle.splits["train"])}
        return fit(self.module, DataBundle(bundle.task, splits, bundle.spec, bundle.preprocessor), context)


class NearestCandidates(nn.Module):
    """(keys (batch, d), candidate keys (n, d), rows (batch,) or None) -> (batch, context_size) indices of the
    candidates nearest to each key by squared Euclidean distance, a row's own index (`rows`) left out.

    An exact search (as the paper's faiss `IndexFlatL2`), with no gradient: the attention weights are
    computed again from the chosen keys, with one. Candidates are searched in chunks so that the distance
    matrix stays within `SEARCH_CHUNK` elements, in float32 whatever the autocast precision (bf16 distances
    reorder close neighbours).
    """

    def __init__(self, context_size: int):
        super().__init__()
        self.context_size = context_size

    @torch.no_grad()
    def forward(self, keys: torch.Tensor, candidates: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        with torch.autocast(keys.device.type, enabled=False):
            keys, candidates = keys.float(), candidates.float()
            chunk = max(1, SEARCH_CHUNK // len(keys))
            best = best_index = None
            for start in range(0, len(candidates), chunk):
                part = candidates[start:start + chunk]
                # ||k - c||^2 less ||k||^2, which is the same for every candidate of a row.
                distance = part.square().sum(1) - 2 * keys @ part.T
                if rows is not None:
                    own = (rows >= start) & (rows < start + len(part))
                    distance[own.nonzero().squeeze(1), rows[own] - start] = torch.inf
                index = torch.arange(start, start + len(part), device=keys.device).expand_as(distance)
                if best is not None:
                    distance, index = torch.cat([best, distance], 1), torch.cat([best_index, index], 1)
                best, position = distance.topk(min(self.context_size, distance.shape[1]), dim=1, largest=False)
                best_index = index.gather(1, position)
            return best_index


def block(d_main: int, d_block: int, dropout0: float, dropout1: float, prenorm: bool) -> nn.Sequential:
    """The residual branch of the encoder's and the predictor's blocks."""
    return nn.Sequential(*([nn.LayerNorm(d_main)] if prenorm else []), nn.Linear(d_main, d_block), nn.ReLU(),
                         nn.Dropout(dropout0), nn.Linear(d_block, d_main), nn.Dropout(dropout1))


def tabr_num_embeddings(kind: str, x_num_train: torch.Tensor, lite: bool, **sizes: Any) -> nn.Module | None:
    """The numeric embeddings of `kind`; `periodic` with `lite` shares its linear layer between the features."""
    # NOTE[DIFF] rtdl_num_embeddings draws the initial frequencies from a normal truncated at 3 sigma; the paper's
    # code from the normal itself.
    if kind == "periodic" and lite and x_num_train.shape[1]:
        return num_embeddings_library().PeriodicEmbeddings(
            x_num_train.shape[1], sizes["d_embedding"], n_frequencies=sizes["n_frequencies"],
            frequency_init_scale=sizes["frequency_init_scale"], lite=True)
    return make_num_embeddings(kind, x_num_train, **sizes)


class TabR(nn.Module):
    """(x_num (batch, n_cont_features) float, x_cat (batch, n_cat) int64[, rows (batch,) int64]) -> (batch, d_out)
    outputs, or (batch, d_out, levels) quantiles; `rows`, the batch's indices in the training split, are left
    out of their own candidates in training mode (`TabREstimator` passes them; without them, as in the engine's
    batch-size probe, no candidate is left out)."""

    data_kind = "tabular"
    estimator_class = TabREstimator

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, predicts_classes: bool,
                 x_num_train: torch.Tensor, x_cat_train: torch.Tensor, y_train: torch.Tensor, *, d_main: int,
                 d_multiplier: float, encoder_n_blocks: int, predictor_n_blocks: int, context_size: int,
                 context_dropout: float, dropout0: float, dropout1: float, num_embeddings: str, d_embedding: int,
                 n_bins: int, n_frequencies: int, frequency_init_scale: float, lite: bool,
                 quantiles: list[float] | None):
        super().__init__()
        n_candidates = len(y_train)
        if context_size >= n_candidates:
            raise ConfigError(f"model.context_size: {context_size} neighbours need more than the {n_candidates} "
                              f"training rows (a row never retrieves itself while training); set it below "
                              f"{n_candidates}")
        self.cat_cardinalities = list(cat_cardinalities)
        self.output_kind = output_kind(quantiles, None)
        self.num_embeddings = tabr_num_embeddings(num_embeddings, x_num_train, lite, d_embedding=d_embedding,
                                                  n_bins=n_bins, n_frequencies=n_frequencies,
                                                  frequency_init_scale=frequency_init_scale)
        d_block = int(d_main * d_multiplier)
        # E: a linear layer, then residual blocks (the first without normalization: the linear layer precedes it).
        # NOTE[DIFF] each category's one-hot code has a column for missing or unseen values, the harness's
        # reserved index (dl_core/models/features.py), which the paper's one-hot encoding has not.
        self.linear = nn.Linear(flat_size(n_cont_features, self.cat_cardinalities, self.num_embeddings), d_main)
        self.encoder_blocks = nn.ModuleList([block(d_main, d_block, dropout0, dropout1, prenorm=i > 0)
                                             for i in range(encoder_n_blocks)])
        # R: keys, the search, the labels' embedding W_Y, T, and dropout on the attention weights. The paper's
        # "auto" normalization: a LayerNorm before W_K only when E has blocks.
        self.normalization = nn.LayerNorm(d_main) if encoder_n_blocks > 0 else None
        self.K = nn.Linear(d_main, d_main)
        self.search = NearestCandidates(context_size)
        self.label_encoder = nn.Embedding(max(d_out, 2), d_main) if predicts_classes else nn.Linear(1, d_main)
        self.T = nn.Sequential(nn.Linear(d_main, d_block), nn.ReLU(), nn.Dropout(dropout0),
                               nn.Linear(d_block, d_main, bias=False))
        self.context_dropout = nn.Dropout(context_dropout)
        # P and the head.
        self.predictor_blocks = nn.ModuleList([block(d_main, d_block, dropout0, dropout1, prenorm=True)
                                               for _ in range(predictor_n_blocks)])
        self.head = nn.Sequential(nn.LayerNorm(d_main), nn.ReLU(), nn.Linear(d_main, d_out * self.output_kind.n_params))
        self.register_buffer("candidate_x_num", x_num_train, persistent=False)
        self.register_buffer("candidate_x_cat", x_cat_train, persistent=False)
        self.register_buffer("candidate_y", y_train, persistent=False)
        self.reset_label_encoder()

    def reset_label_encoder(self) -> None:
        """The paper's initialization of W_Y: uniform in [-1, 1] for the classes' embeddings, in
        [-1/sqrt(2), 1/sqrt(2)] for the linear map of a value (weight and bias)."""
        if isinstance(self.label_encoder, nn.Embedding):
            nn.init.uniform_(self.label_encoder.weight, -1.0, 1.0)
            return
        bound = 2 ** -0.5
        nn.init.uniform_(self.label_encoder.weight, -bound, bound)
        nn.init.uniform_(self.label_encoder.bias, -bound, bound)

    def encode(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E: rows -> (x, k), their representation and their key."""
        x = self.linear(flat_features(x_num, x_cat, self.num_embeddings, self.cat_cardinalities))
        for branch in self.encoder_blocks:
            x = x + branch(x)
        return x, self.K(x if self.normalization is None else self.normalization(x))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        x, k = self.encode(x_num, x_cat)
        # In eval mode the candidates' keys could be computed once; as in the paper's code they are computed on
        # every call, which keeps one path for training and prediction, and nothing stale to save or invalidate.
        candidate_k = self.encode(self.candidate_x_num, self.candidate_x_cat)[1]
        context = self.search(k, candidate_k, rows if self.training else None)
        difference = k[:, None] - candidate_k[context]  # (batch, context_size, d_main)
        weights = self.context_dropout(F.softmax(-difference.square().sum(-1), dim=-1))
        values = self.label_embedding(self.candidate_y[context]) + self.T(difference)
        x = x + (weights[:, None] @ values).squeeze(1)
        for branch in self.predictor_blocks:
            x = x + branch(x)
        return table_outputs(self.head(x), self.output_kind)

    def label_embedding(self, y: torch.Tensor) -> torch.Tensor:
        """W_Y(y) of the context's targets: (batch, context_size) classes or (batch, context_size, 1) values."""
        return self.label_encoder(y.long() if isinstance(self.label_encoder, nn.Embedding) else y.float())

    def make_parameter_groups(self) -> list[dict[str, Any]]:
        """The paper's rule: no weight decay on biases, normalization, the embeddings' periodic part and W_Y."""
        decay, exempt = no_decay_parameter_groups(self)
        labels = {id(p) for p in self.label_encoder.parameters()}
        exempt["params"] += [p for p in decay["params"] if id(p) in labels]
        decay["params"] = [p for p in decay["params"] if id(p) not in labels]
        return [decay, exempt]

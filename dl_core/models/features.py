"""How the MLP and TabM read a table row: numeric features, optionally embedded, and one-hot categories.

Numeric embeddings are those of Gorishniy et al. 2022 ("On Embeddings for Numerical Features in
Tabular Deep Learning"), from `rtdl_num_embeddings` (the `tabular` extra): `periodic` (with the
linear layer and ReLU, the "PLR" of MLP-PLR) and `piecewise_linear` (version "B", as TabM uses
them). Piecewise-linear embeddings need bins, the quantiles of each numeric feature over the training
split only. The tabular data step passes that split's numeric features in the spec (`x_num_train`,
as the model sees them) and the model computes its bins in its constructor, so `n_bins` stays a
model hyperparameter and validation or test rows never move a bin. The bins live in the module's
buffers; rebuilding the model from a checkpoint computes the same bins from the same training
features (the checkpoint's spec keeps them), then loads the buffers.

Categories are one-hot encoded over their cardinality (index 0, missing or unseen, is a category of
its own), as the TabM paper does for both models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from dl_core.errors import ConfigError, DataError, require, require_at_least


@dataclass
class NumEmbeddingsConfig:
    """Embeddings of numeric features, for the models that offer them.

    Attributes:
        num_embeddings: `none` (numbers as they are), `periodic` (periodic + linear + ReLU, "PLR") or
            `piecewise_linear` (bins fit on the training split only; version "B" of the TabM paper).
        d_embedding: size of each numeric feature's embedding.
        n_bins: `piecewise_linear`: quantile bins per feature (fewer where a feature has fewer distinct values).
        n_frequencies: `periodic`: frequencies per feature.
        frequency_init_scale: `periodic`: scale of the initial frequencies (sigma in the paper; its most
            important hyper-parameter).
    """

    num_embeddings: Literal["none", "periodic", "piecewise_linear"] = "none"
    d_embedding: int = 16
    n_bins: int = 48
    n_frequencies: int = 48
    frequency_init_scale: float = 0.01

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, d_embedding=1, n_bins=2, n_frequencies=1)
        require(self.frequency_init_scale > 0, f"{prefix}.frequency_init_scale",
                f"must be > 0 (got {self.frequency_init_scale}), e.g. 0.01")


def num_embeddings_library() -> Any:
    try:
        import rtdl_num_embeddings
    except ImportError:
        raise ConfigError("model.num_embeddings: needs the rtdl_num_embeddings package; install the tabular "
                          "extra: pip install -e '.[tabular]'") from None
    return rtdl_num_embeddings


def make_num_embeddings(kind: str, x_num_train: torch.Tensor, *, d_embedding: int, n_bins: int, n_frequencies: int,
                        frequency_init_scale: float) -> nn.Module | None:
    """The embedding module of `kind` for the numeric features of `x_num_train`; None for `none` or no numbers."""
    n_features = int(x_num_train.shape[1])
    if kind == "none" or n_features == 0:
        return None
    library = num_embeddings_library()
    if kind == "periodic":
        return library.PeriodicEmbeddings(n_features, d_embedding, n_frequencies=n_frequencies,
                                          frequency_init_scale=frequency_init_scale, lite=False)
    return library.PiecewiseLinearEmbeddings(training_bins(x_num_train, n_bins), d_embedding, activation=False,
                                             version="B")


def training_bins(x_num_train: torch.Tensor, n_bins: int) -> list[torch.Tensor]:
    """Quantile bin edges of each numeric feature over the training rows (rtdl_num_embeddings.compute_bins)."""
    x = x_num_train.detach().float().cpu()
    constant = [i for i in range(x.shape[1]) if bool((x[:, i] == x[0, i]).all())]
    if constant:
        raise DataError(f"model.num_embeddings: numeric feature(s) at position(s) {constant} have a single value on "
                        f"the training rows, so they have no bins; drop them from data.feature_columns or use "
                        f"model.num_embeddings=periodic")
    return num_embeddings_library().compute_bins(x, n_bins=min(n_bins, len(x) - 1))


def flat_features(x_num: torch.Tensor, x_cat: torch.Tensor, num_embeddings: nn.Module | None,
                  cat_cardinalities: list[int]) -> torch.Tensor:
    """(batch, d_in): the numeric features (embedded and flattened, or as they are), then each category one-hot."""
    parts = [x_num if num_embeddings is None else num_embeddings(x_num).flatten(1)]
    parts += [F.one_hot(x_cat[:, i], n).to(x_num.dtype) for i, n in enumerate(cat_cardinalities)]
    return torch.cat(parts, dim=1)


def flat_size(n_cont_features: int, cat_cardinalities: list[int], num_embeddings: nn.Module | None) -> int:
    d_num = n_cont_features if num_embeddings is None else n_cont_features * num_embeddings.get_output_shape()[1]
    return d_num + sum(cat_cardinalities)


def no_decay_parameter_groups(model: nn.Module) -> list[dict[str, Any]]:
    """The TabM paper's weight-decay rule: none on biases, normalization layers, and the numeric embeddings'
    linear and periodic parts (their piecewise-linear part decays); the engine's AdamW sets the decay."""
    exempt = {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    library = None
    for module in model.modules():
        if isinstance(module, nn.LayerNorm | nn.BatchNorm1d):
            exempt.update(id(p) for p in module.parameters())
        elif type(module).__module__ == "rtdl_num_embeddings":
            library = library or num_embeddings_library()
            if isinstance(module, library.LinearEmbeddings | library.LinearReLUEmbeddings):
                exempt.update(id(p) for p in module.parameters())
            elif isinstance(module, library.PeriodicEmbeddings):
                exempt.update(id(p) for p in module.periodic.parameters())
    params = list(model.parameters())
    return [{"params": [p for p in params if id(p) not in exempt]},
            {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0}]

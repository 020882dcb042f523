"""LightGBM (Ke et al. 2017) as an estimator of the harness (the `gbdt` extra).

Leaf-wise histogram trees; categories natively (`categorical_feature`, the reserved code 0 as a
missing category, NaN to LightGBM); missing numbers as NaN, which LightGBM routes to the better side
of each split. Deterministic on the CPU (`deterministic`, row-wise histograms). This LightGBM trains
on the CPU only: `hardware.device=cuda` is ignored with one line. What all tree models share:
dl_core/models/trees.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from dl_core.engine.hardware import Hardware
from dl_core.errors import require, require_at_least
from dl_core.models.trees import (
    BINARY,
    MULTICLASS,
    VALUES,
    BoostingConfig,
    Fitted,
    GradientBoosting,
    RoundClock,
    require_shares,
)

log = logging.getLogger(__name__)

OBJECTIVES = {VALUES: ("l2", "rmse"), BINARY: ("binary", "binary_logloss"),
              MULTICLASS: ("multiclass", "multi_logloss")}


@dataclass
class LightGBMConfig(BoostingConfig):
    """LightGBM's parameters under its names; the defaults are LightGBM's own.

    Attributes:
        learning_rate: step size.
        num_leaves: most leaves of a tree (trees grow leaf-wise).
        min_data_in_leaf: fewest rows in a leaf.
        min_sum_hessian_in_leaf: smallest hessian sum in a leaf.
        feature_fraction: share of features sampled for each tree.
        bagging_fraction: share of rows sampled, every `bagging_freq` rounds.
        bagging_freq: rounds between row samplings (0: no bagging, `bagging_fraction` unused).
        lambda_l2: L2 regularization of the leaf values.
    """

    _target_: str = "dl_core.models.lightgbm.LightGBM"
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_data_in_leaf: int = 20
    min_sum_hessian_in_leaf: float = 1e-3
    feature_fraction: float = 1.0
    bagging_fraction: float = 1.0
    bagging_freq: int = 0
    lambda_l2: float = 0.0

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        require(self.learning_rate > 0, f"{prefix}.learning_rate", f"must be > 0 (got {self.learning_rate})")
        require_at_least(self, prefix, num_leaves=2, min_data_in_leaf=1, min_sum_hessian_in_leaf=0, lambda_l2=0,
                         bagging_freq=0)
        require_shares(self, prefix, "feature_fraction", "bagging_fraction")


class LightGBM(GradientBoosting):
    """Gradient-boosted leaf-wise trees; raw outputs are LightGBM's raw scores."""

    library = "LightGBM"
    package = "lightgbm"

    def count_parameters(self) -> int:
        """Nodes of every tree: num_leaves leaf values and num_leaves - 1 splits each."""
        return sum(2 * tree["num_leaves"] - 1 for tree in self.booster.dump_model()["tree_info"])

    def device_params(self, hw: Hardware) -> dict[str, Any]:
        if hw.device.type == "cuda":
            log.warning("hardware.device=%s: this LightGBM trains on the CPU only; ignored", hw.device)
        return {"device_type": "cpu", "num_threads": hw.threads}

    def library_params(self, hw: Hardware, seed: int) -> dict[str, Any]:
        """Everything `lightgbm.train` gets as its parameters."""
        objective, metric = OBJECTIVES[self.objective]
        classes = {"num_class": self.d_out} if self.objective == MULTICLASS else {}
        return {"objective": objective, "metric": metric, "seed": seed, "deterministic": True,
                "force_row_wise": True, "verbosity": -1, **classes, **self.params, **self.device_params(hw)}

    def dataset(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray, reference: Any = None) -> Any:
        import lightgbm

        features = np.concatenate([x_num.astype(np.float64), self.categories_as_missing(x_cat)], axis=1)
        categorical = list(range(x_num.shape[1], features.shape[1]))
        return lightgbm.Dataset(features, self.targets(y), categorical_feature=categorical, reference=reference,
                                free_raw_data=False)

    def fit_library(self, train: tuple, val: tuple, hw: Hardware, seed: int, clock: RoundClock) -> Fitted:
        import lightgbm

        results: dict[str, dict[str, list[float]]] = {}
        train_set = self.dataset(*train)
        booster = lightgbm.train(self.library_params(hw, seed), train_set, self.n_estimators,
                                 valid_sets=[train_set, self.dataset(*val, reference=train_set)],
                                 valid_names=["train", "val"],
                                 callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False),
                                            lightgbm.record_evaluation(results), lambda env: clock.lap()])
        metric = OBJECTIVES[self.objective][1]
        best = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
        return self.fitted(best, results["train"][metric], results["val"][metric])

    def predict_library(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        features = np.concatenate([x_num.astype(np.float64), self.categories_as_missing(x_cat)], axis=1)
        return self.booster.predict(features, raw_score=True)

    def to_bytes(self) -> bytes:
        return self.booster.model_to_string().encode()

    def from_bytes(self, data: bytes) -> Any:
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())

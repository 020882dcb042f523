"""XGBoost (Chen & Guestrin 2016) as an estimator of the harness (the `gbdt` extra).

Histogram trees (`tree_method=hist`); categories natively (`enable_categorical`, a pandas category
column per categorical feature, the reserved code 0 as a missing category); missing numbers as NaN,
which XGBoost routes to a learned default direction. What all tree models share:
dl_core/models/trees.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

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
    gpu_index,
    require_shares,
)

OBJECTIVES = {VALUES: ("reg:squarederror", "rmse"), BINARY: ("binary:logistic", "logloss"),
              MULTICLASS: ("multi:softprob", "mlogloss")}


@dataclass
class XGBoostConfig(BoostingConfig):
    """XGBoost's parameters under its names; the defaults are XGBoost's own.

    Attributes:
        learning_rate: step size (eta).
        max_depth: maximum depth of a tree.
        min_child_weight: minimum hessian sum in a leaf.
        subsample: share of rows sampled for each tree.
        colsample_bytree: share of features sampled for each tree.
        gamma: minimum loss reduction to split a leaf.
        reg_lambda: L2 regularization of the leaf values (XGBoost's `lambda`).
    """

    _target_: str = "dl_core.models.xgboost.XGBoost"
    learning_rate: float = 0.3
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    gamma: float = 0.0
    reg_lambda: float = 1.0

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        require(self.learning_rate > 0, f"{prefix}.learning_rate", f"must be > 0 (got {self.learning_rate})")
        require_at_least(self, prefix, max_depth=1, min_child_weight=0, gamma=0, reg_lambda=0)
        require_shares(self, prefix, "subsample", "colsample_bytree")


class XGBoost(GradientBoosting):
    """Gradient-boosted trees; raw outputs are XGBoost's margins."""

    library = "XGBoost"
    package = "xgboost"
    library_names: ClassVar[dict[str, str]] = {"learning_rate": "eta", "reg_lambda": "lambda"}

    def count_parameters(self) -> int:
        """Nodes of every tree: a split (feature and threshold) or a leaf value each."""
        return len(self.booster.trees_to_dataframe())

    def device_params(self, hw: Hardware) -> dict[str, Any]:
        if hw.device.type == "cuda":
            return {"device": f"cuda:{gpu_index(hw)}", "nthread": hw.threads}
        return {"device": "cpu", "nthread": hw.threads}

    def library_params(self, hw: Hardware, seed: int) -> dict[str, Any]:
        """Everything `xgboost.train` gets as its parameters."""
        objective, metric = OBJECTIVES[self.objective]
        classes = {"num_class": self.d_out} if self.objective == MULTICLASS else {}
        return {"objective": objective, "eval_metric": metric, "tree_method": "hist", "seed": seed, "verbosity": 0,
                **classes, **self.params, **self.device_params(hw)}

    def matrix(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray | None = None) -> Any:
        import xgboost

        frame = pd.DataFrame(x_num, columns=[f"num_{i}" for i in range(x_num.shape[1])])
        for j, cardinality in enumerate(self.cat_cardinalities):
            frame[f"cat_{j}"] = pd.Categorical.from_codes(x_cat[:, j] - 1, categories=list(range(1, cardinality)))
        return xgboost.DMatrix(frame, None if y is None else self.targets(y), enable_categorical=True)

    def fit_library(self, train: tuple, val: tuple, hw: Hardware, seed: int, clock: RoundClock) -> Fitted:
        import xgboost

        class Lap(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                clock.lap()
                return False  # go on: XGBoost stops on True, and its early stopping decides

        results: dict[str, dict[str, list[float]]] = {}
        booster = xgboost.train(self.library_params(hw, seed), self.matrix(*train), self.n_estimators,
                                evals=[(self.matrix(*train), "train"), (self.matrix(*val), "val")],
                                early_stopping_rounds=self.early_stopping_rounds, evals_result=results,
                                verbose_eval=False, callbacks=[Lap()])
        metric = OBJECTIVES[self.objective][1]
        best = booster[: booster.best_iteration + 1]  # the rounds after the best one are dropped
        return self.fitted(best, results["train"][metric], results["val"][metric])

    def predict_library(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return self.booster.predict(self.matrix(x_num, x_cat), output_margin=True)

    def to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw(raw_format="ubj"))

    def from_bytes(self, data: bytes) -> Any:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return booster

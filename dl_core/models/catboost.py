"""CatBoost (Prokhorenkova et al. 2018) as an estimator of the harness (the `gbdt` extra).

Symmetric (oblivious) trees; categories as CatBoost prefers them, its own ordered target statistics
over the category codes (code 0, missing or unseen, is a category of its own, as CatBoost treats a
missing category); missing numbers as NaN (CatBoost's `Min` mode). What all tree models share:
dl_core/models/trees.py.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dl_core.engine.hardware import Hardware
from dl_core.errors import require
from dl_core.models.trees import (
    BINARY,
    MULTICLASS,
    VALUES,
    BoostingConfig,
    Fitted,
    GradientBoosting,
    RoundClock,
    gpu_index,
)

LOSSES = {VALUES: "RMSE", BINARY: "Logloss", MULTICLASS: "MultiClass"}


@dataclass
class CatBoostConfig(BoostingConfig):
    """CatBoost's parameters under its names; the defaults are CatBoost's own (with 4000 rounds and early
    stopping on validation, the "default" CatBoost of the TabR and TabM papers).

    Attributes:
        learning_rate: step size; null lets CatBoost choose it from the data and the number of rounds.
        depth: depth of every (symmetric) tree.
        l2_leaf_reg: L2 regularization of the leaf values.
        bagging_temperature: Bayesian bootstrap intensity (0: no bagging).
        leaf_estimation_iterations: gradient steps per leaf value; null is CatBoost's choice per loss.
    """

    _target_: str = "dl_core.models.catboost.CatBoost"
    learning_rate: float | None = None
    depth: int = 6
    l2_leaf_reg: float = 3.0
    bagging_temperature: float = 1.0
    leaf_estimation_iterations: int | None = None

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        require(self.learning_rate is None or self.learning_rate > 0, f"{prefix}.learning_rate",
                f"must be > 0 or null for CatBoost's choice (got {self.learning_rate})")
        require(1 <= self.depth <= 16, f"{prefix}.depth", f"must be in [1, 16] (got {self.depth})")
        require(self.l2_leaf_reg >= 0, f"{prefix}.l2_leaf_reg", f"must be >= 0 (got {self.l2_leaf_reg})")
        require(self.bagging_temperature >= 0, f"{prefix}.bagging_temperature",
                f"must be >= 0 (got {self.bagging_temperature})")
        require(self.leaf_estimation_iterations is None or self.leaf_estimation_iterations >= 1,
                f"{prefix}.leaf_estimation_iterations", f"must be >= 1 or null (got {self.leaf_estimation_iterations})")


class CatBoost(GradientBoosting):
    """Gradient-boosted symmetric trees; raw outputs are CatBoost's raw formula values."""

    library = "CatBoost"
    package = "catboost"

    def count_parameters(self) -> int:
        """Leaf values, plus one split per level of every symmetric tree (a tree of 2^d leaves has d)."""
        splits = sum(int(n).bit_length() - 1 for n in self.booster.get_tree_leaf_counts())
        return len(self.booster.get_leaf_values()) + splits

    def device_params(self, hw: Hardware) -> dict[str, Any]:
        if hw.device.type == "cuda":
            return {"task_type": "GPU", "devices": str(gpu_index(hw)), "thread_count": hw.threads}
        return {"task_type": "CPU", "thread_count": hw.threads}

    def library_params(self, hw: Hardware, seed: int) -> dict[str, Any]:
        """Everything the CatBoost model is built with."""
        return {"loss_function": LOSSES[self.objective], "iterations": self.n_estimators,
                "early_stopping_rounds": self.early_stopping_rounds, "use_best_model": True, "random_seed": seed,
                "allow_writing_files": False, "verbose": False,
                **{k: v for k, v in self.params.items() if v is not None}, **self.device_params(hw)}

    def pool(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray | None = None) -> Any:
        from catboost import Pool

        frame = pd.DataFrame(x_num, columns=[f"num_{i}" for i in range(x_num.shape[1])])
        cats = [f"cat_{j}" for j in range(x_cat.shape[1])]
        for j, name in enumerate(cats):
            frame[name] = x_cat[:, j]
        return Pool(frame, None if y is None else self.targets(y), cat_features=cats)

    def fit_library(self, train: tuple, val: tuple, hw: Hardware, seed: int, clock: RoundClock) -> Fitted:
        from catboost import CatBoost as Booster

        params = self.library_params(hw, seed)
        booster = Booster(params)
        # CatBoost refuses a callback on a GPU ("not supported for GPU"): its rounds' times are then unknown.
        booster.fit(self.pool(*train), eval_set=self.pool(*val),
                    callbacks=None if params["task_type"] == "GPU" else [Lap(clock)])
        results = booster.get_evals_result()
        metric = LOSSES[self.objective]
        return self.fitted(booster, results["learn"][metric], results["validation"][metric])

    def predict_library(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        return self.booster.predict(self.pool(x_num, x_cat), prediction_type="RawFormulaVal")

    def to_bytes(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.cbm"
            self.booster.save_model(str(path))
            return path.read_bytes()

    def from_bytes(self, data: bytes) -> Any:
        from catboost import CatBoost as Booster

        booster = Booster()
        booster.load_model(blob=data)
        return booster


class Lap:
    """CatBoost's callback: `clock.lap()` after every round. CatBoost goes on while it returns True, and its own
    early stopping decides."""

    def __init__(self, clock: RoundClock):
        self.clock = clock

    def after_iteration(self, info: Any) -> bool:
        self.clock.lap()
        return True

"""Losses for training and metrics for reporting, chosen by the bundle's task."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score, roc_auc_score
from torch.nn import functional as F


def loss_for(task: str, d_out: int | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE for real-valued targets; for classes, binary cross-entropy on one logit (`d_out == 1`) or
    cross-entropy on one logit per class. Class targets arrive as indices of any dtype."""
    if task in ("forecast", "regression"):
        return F.mse_loss
    if task == "classification" and d_out == 1:
        return lambda output, target: F.binary_cross_entropy_with_logits(output.squeeze(-1), target.float())
    if task == "classification":
        return lambda output, target: F.cross_entropy(output, target.long())
    raise ValueError(f"no loss for task {task!r}")


def regression_metrics(predicted: np.ndarray, actual: np.ndarray, suffix: str = "") -> dict[str, float]:
    err = predicted.astype(np.float64) - actual.astype(np.float64)
    mse = float(np.mean(err**2))
    return {f"mse{suffix}": mse, f"mae{suffix}": float(np.mean(np.abs(err))), f"rmse{suffix}": float(np.sqrt(mse))}


def tabular_regression_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MSE and R² in whatever units the arrays are in."""
    return {**regression_metrics(predicted, actual), "r2": float(r2_score(actual.ravel(), predicted.ravel()))}


def classification_metrics(probabilities: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Accuracy, log-loss, macro-F1, and ROC-AUC when there are two classes."""
    labels = np.arange(probabilities.shape[1])
    predicted = probabilities.argmax(axis=1)
    out = {"accuracy": float(accuracy_score(actual, predicted)),
           "log_loss": float(log_loss(actual, probabilities, labels=labels)),
           "f1_macro": float(f1_score(actual, predicted, labels=labels, average="macro", zero_division=0))}
    if len(labels) == 2 and len(np.unique(actual)) == 2:
        out["roc_auc"] = float(roc_auc_score(actual, probabilities[:, 1]))
    return out

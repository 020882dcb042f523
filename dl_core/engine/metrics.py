"""Losses for training and metrics for reporting, chosen by the bundle's task."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F


def loss_for(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task in ("forecast", "regression"):
        return F.mse_loss
    if task == "classification":
        return F.cross_entropy
    raise ValueError(f"no loss for task {task!r}")


def regression_metrics(predicted: np.ndarray, actual: np.ndarray, suffix: str = "") -> dict[str, float]:
    err = predicted.astype(np.float64) - actual.astype(np.float64)
    mse = float(np.mean(err**2))
    return {f"mse{suffix}": mse, f"mae{suffix}": float(np.mean(np.abs(err))), f"rmse{suffix}": float(np.sqrt(mse))}

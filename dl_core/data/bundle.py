"""The data bundle: everything the model and the engine need from the data step, and nothing more.

A split is a set of samples that can be gathered in batches by index, so the engine batches by
slicing tensors with a permuted index instead of a per-sample DataLoader. Sizes the model needs
(feature counts, horizon, cardinalities) travel in `spec`; the fitted preprocessing travels with
the bundle so the checkpoint can turn new raw data into model inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch


class Split(Protocol):
    """Samples gathered by index: `batch(idx)` returns the model's positional inputs and the target."""

    def __len__(self) -> int: ...

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]: ...

    def to(self, device: torch.device) -> "Split": ...

    def targets(self) -> torch.Tensor: ...


class Preprocessor(Protocol):
    """Fitted on the training rows only; pickled into every checkpoint for prediction."""

    def inverse_target(self, y: np.ndarray) -> np.ndarray: ...


@dataclass
class DataBundle:
    task: str  # "forecast" | "regression" | "classification"
    splits: dict[str, Split]
    spec: dict[str, Any]
    preprocessor: Preprocessor
    describe: Any = None  # callable(split_name, predictions) -> pd.DataFrame of predictions with keys
    info: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device) -> "DataBundle":
        moved = {name: split.to(device) for name, split in self.splits.items()}
        return DataBundle(self.task, moved, self.spec, self.preprocessor, self.describe, self.info)

    def prediction_frame(self, split: str, predictions: np.ndarray) -> pd.DataFrame:
        return self.describe(split, predictions)

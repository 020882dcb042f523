"""The data bundle: everything the model and the engine need from the data step, and nothing more.

A split is a set of samples that can be gathered in batches by index, so the engine batches by
slicing tensors with a permuted index instead of a per-sample DataLoader. Sizes the model needs
(feature counts, horizon, cardinalities) travel in `spec`. The task (the target side: loss,
metrics, outputs -> predictions) and the fitted preprocessor (the input side: raw rows -> model
inputs) travel with the bundle, so the checkpoint can predict on new raw rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from dl_core.data.inputs import InputSchema, Unseen
from dl_core.task import Task


class Split(Protocol):
    """Samples gathered by index: `batch(idx)` returns the model's positional inputs and the target."""

    def __len__(self) -> int: ...

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]: ...

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]: ...

    def to(self, device: torch.device) -> Split: ...

    def targets(self) -> torch.Tensor: ...

    def table(self, task: Any, outputs: np.ndarray) -> pd.DataFrame:
        """The predictions table of the split's samples, from the model's raw outputs."""

    def sources(self) -> np.ndarray:
        """For new rows: the position of each `table` row's input row among the rows given (-1 for none)."""


class Preprocessor(Protocol):
    """Fitted on the training rows only; pickled into every checkpoint for prediction and serving."""

    @property
    def target_columns(self) -> list[str]:
        """The columns whose values the run predicts."""

    def input_schema(self) -> InputSchema:
        """The columns new rows must carry, and their types."""

    def unseen_categories(self, frame: pd.DataFrame) -> list[Unseen]:
        """Per categorical input of validated new rows, the values no training row had (read as unknown)."""

    def new_rows(self, frame: pd.DataFrame, task: Any) -> Split:
        """Validated new rows as a split to predict on (raises `InputError` naming what is wrong)."""

    def labelled_rows(self, frame: pd.DataFrame, task: Any) -> Split:
        """Validated new rows with their target columns as a split of the samples whose targets they hold,
        with those targets encoded as in training: what a run is scored on (`LoadedRun.evaluate`)."""

    def metadata(self) -> dict[str, Any]:
        """What a client of the prediction service should know about the inputs."""


@dataclass
class DataBundle:
    task: Task
    splits: dict[str, Split]
    spec: dict[str, Any]
    preprocessor: Preprocessor

    def to(self, device: torch.device) -> DataBundle:
        moved = {name: split.to(device) for name, split in self.splits.items()}
        return DataBundle(self.task, moved, self.spec, self.preprocessor)

    def predictions_table(self, split: str, outputs: np.ndarray) -> pd.DataFrame:
        """The predictions table of one split (e.g. the run's predictions_test.csv)."""
        return self.splits[split].table(self.task, outputs)

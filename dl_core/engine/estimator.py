"""The seam between the pipeline and what learns: an `Estimator` fits on a data bundle and predicts raw outputs.

The epoch engine trains `nn.Module`s through `TorchEstimator`. A model that learns some other way
(gradient-boosted trees) implements `Estimator` itself, in its own module under `dl_core/models/`,
and `build_estimator` returns it as it is: the pipeline, `load_run`, predict.py and the HTTP service
talk to the estimator only. Whatever the estimator, `fit` writes its checkpoints in the one format
of `checkpoint.py` (`checkpoint_payload` + `atomic_save`), which serves resume and inference alike.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from torch import nn

from dl_core.data.bundle import DataBundle, Split
from dl_core.engine.hardware import Hardware
from dl_core.engine.loop import FitContext, FitResult, fit, predict
from dl_core.models.outputs import OutputKind, declared_kind


class Estimator(Protocol):
    """A model that the pipeline can fit, evaluate, checkpoint and serve."""

    @property
    def name(self) -> str:
        """What the prediction service reports as the model's class."""

    @property
    def n_parameters(self) -> int:
        """Learned parameters (a run's metrics report them)."""

    def fit(self, bundle: DataBundle, context: FitContext) -> FitResult:
        """Train on `bundle.splits["train"]`, select on "val", keep the best state, and write `best.ckpt`
        and `last.ckpt` under `context.run_dir / "checkpoints"`.

        After each epoch or round it can be judged on, call every `context.trackers`' `log_epoch` with the
        history so far (dicts with `epoch`, `val_loss`, `time_s`): that logs it and, in an Optuna trial,
        reports it to the pruner, which stops the run by raising `dl_core.sweep.trials.RunPruned` (let it
        propagate). An estimator that never calls them is never pruned."""

    def predict(self, split: Split) -> np.ndarray:
        """Raw outputs for every sample of `split`, in order, in the task's convention (what its loss and
        `decode` take: values, or logits for classes)."""

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        """Take the learned state from a checkpoint written by `fit`, ready to predict."""


class TorchEstimator:
    """An `nn.Module` trained by the epoch engine (`loop.fit`) and predicting in fixed-size batches."""

    def __init__(self, module: nn.Module, hw: Hardware, eval_batch_size: int):
        self.module, self.hw, self.eval_batch_size = module, hw, eval_batch_size

    @property
    def name(self) -> str:
        return type(self.module).__name__

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def output_kind(self) -> OutputKind:
        return declared_kind(self.module)

    def fit(self, bundle: DataBundle, context: FitContext) -> FitResult:
        self.hw = context.hw  # predictions at the precision the model trained at
        return fit(self.module, bundle, context)

    def predict(self, split: Split) -> np.ndarray:
        return predict(self.module, split, self.hw, self.eval_batch_size).cpu().numpy()

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.module.load_state_dict(checkpoint["model"])
        self.module.eval()

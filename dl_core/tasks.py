"""The task of a run: what its targets are and what the model's outputs mean.

`Forecast` (a window of a series -> horizon x targets), `Regression` and `Classification` (one target
column of a table). A task owns the target side of a run: it encodes the targets for training and
decodes outputs back into the target's units or labels, chooses the training loss, computes the
metrics of a split, turns outputs into predictions (and class probabilities), and picks the test plot.
The preprocessor owns the input side. The data bundle builds the task, fitted on the training rows;
checkpoints store it, so prediction and serving decode outputs exactly as training did.

What differs between tasks is a method here, so no other module compares task names.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score, roc_auc_score
from sklearn.preprocessing import StandardScaler
from torch.nn import functional as F

from dl_core.checks import is_numeric, label_values, listing, near_duplicate_labels, refuse_stray_text, short
from dl_core.errors import ConfigError, DataError, InputError
from dl_core.outputs import MEDIAN, MEMBERS, POINT, OutputKind, quantile_metric_names, quantile_metrics
from dl_core.tracking.plots import plot_confusion_matrix, plot_forecast, plot_predicted_vs_actual

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TARGET_FIX = "fix or blank those cells (rows without a target are dropped)"


class Task(ABC):
    """One task: the loss, the metrics and the meaning of the model's outputs."""

    name: ClassVar[str]
    plot_file: ClassVar[str]
    # Whether the task can train and read quantile or distribution outputs besides point ones.
    probabilistic: ClassVar[bool] = False
    # What the run's model outputs (a model declares it in `output_kind`); `expect` sets it before training.
    outputs: OutputKind = POINT

    def expect(self, output_kind: OutputKind) -> None:
        """Read the model's outputs as `output_kind` from now on (the checkpoint keeps it with the task)."""
        self.loss(output_kind)
        self.outputs = output_kind

    def loss(self, output_kind: OutputKind = POINT) -> LossFn:
        """The training loss for a model whose outputs are of `output_kind`."""
        if output_kind is MEMBERS:
            return members_loss(self.point_loss())
        if output_kind.is_point:
            return self.point_loss()
        if not self.probabilistic:
            raise ConfigError(f"model: its outputs are {output_kind.name!r}, for which the {self.name} task has no "
                              f"loss; leave model.quantiles and model.distribution null")
        return output_kind.loss

    @abstractmethod
    def point_loss(self) -> LossFn:
        """The loss between point outputs and encoded targets."""

    @abstractmethod
    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """The metrics of a split, from raw model outputs and the split's encoded targets."""

    @abstractmethod
    def metric_names(self, actual: np.ndarray) -> list[str]:
        """The names `metrics` gives a split with these encoded targets, known before training, so that
        `objective.metric` is checked before any work (engine/evaluate.py holds the two to each other)."""

    @abstractmethod
    def decode(self, y: np.ndarray) -> np.ndarray:
        """Encoded targets (or point outputs) in the target's own units or labels."""

    @abstractmethod
    def plot(self, table: pd.DataFrame, path: Path) -> None:
        """Draw the test plot that fits the task from a predictions table."""

    def plot_test(self, table: pd.DataFrame, run_dir: Path) -> None:
        self.plot(table, run_dir / self.plot_file)

    def metadata(self) -> dict[str, Any]:
        """What a client of the prediction service should know about the targets."""
        return {}


class Forecast(Task):
    """Forecast `target_columns` over the horizon; targets are standardized on the training rows."""

    name = "forecast"
    plot_file = "forecast.png"
    probabilistic = True

    def __init__(self, target_columns: list[str]):
        self.target_columns = list(target_columns)
        self.target_scaler: StandardScaler | None = None

    def fit(self, train_rows: pd.DataFrame) -> Forecast:
        self.target_scaler = StandardScaler().fit(train_rows[self.target_columns].to_numpy(np.float64))
        return self

    def encode(self, rows: pd.DataFrame) -> np.ndarray:
        """Standardized float32 targets, (rows, targets)."""
        return self.target_scaler.transform(rows[self.target_columns].to_numpy(np.float64)).astype(np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Undo the scaling on an array whose last axis is the targets."""
        flat = y.reshape(-1, len(self.target_columns)).astype(np.float64)
        return self.target_scaler.inverse_transform(flat).reshape(y.shape)

    def point_loss(self) -> LossFn:
        return F.mse_loss

    def decode_quantiles(self, quantiles: np.ndarray) -> np.ndarray:
        """Undo the scaling on (..., targets, levels): every level like a value (the scaling is increasing)."""
        return np.moveaxis(self.decode(np.moveaxis(quantiles, -1, 0)), 0, -1)

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """MSE/MAE/RMSE in original units, and `_scaled` on the standardised scale; for quantile or
        distribution outputs, of the median, and besides: the mean pinball loss, the CRPS estimated over
        the quantiles, and the coverage and mean width of each central interval (`coverage_80`, `width_80`).

        The scaled figures are what forecasting papers report (ETT protocol); the original-unit
        figures are what a user of the forecast cares about.
        """
        actual = actual.astype(np.float32)
        if self.outputs.is_point:
            scaled = regression_metrics(outputs, actual, suffix="_scaled")
            return {**regression_metrics(self.decode(outputs), self.decode(actual)), **scaled}
        levels = self.outputs.levels
        quantiles = self.outputs.quantiles(outputs)
        median = quantiles[..., levels.index(MEDIAN)]
        decoded, decoded_actual = self.decode_quantiles(quantiles), self.decode(actual)
        return {**regression_metrics(decoded[..., levels.index(MEDIAN)], decoded_actual),
                **regression_metrics(median, actual, suffix="_scaled"),
                **quantile_metrics(decoded, decoded_actual, levels),
                **quantile_metrics(quantiles, actual, levels, suffix="_scaled")}

    def metric_names(self, actual: np.ndarray) -> list[str]:
        names = [*regression_metric_names(), *regression_metric_names("_scaled")]
        if self.outputs.is_point:
            return names
        return [*names, *quantile_metric_names(self.outputs.levels),
                *quantile_metric_names(self.outputs.levels, "_scaled")]

    def prediction_columns(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The forecast columns of a predictions table in original units, each (windows, horizon, targets):
        `predicted`, and for quantile or distribution outputs one column per level (`q0.1`), `predicted`
        being the median."""
        if self.outputs.is_point:
            return {"predicted": self.decode(outputs)}
        levels = self.outputs.levels
        quantiles = self.decode_quantiles(self.outputs.quantiles(outputs))
        return {"predicted": quantiles[..., levels.index(MEDIAN)],
                **{quantile_column(level): quantiles[..., k] for k, level in enumerate(levels)}}

    def metadata(self) -> dict[str, Any]:
        """The quantile levels of the forecast columns (empty for point forecasts)."""
        return {"quantiles": list(self.outputs.levels)}

    def plot(self, table: pd.DataFrame, path: Path) -> None:
        plot_forecast(table, path)


class TableTask(Task):
    """The target column of a table: how it is checked, encoded and decoded."""

    predicts_classes: ClassVar[bool] = False

    @classmethod
    def from_config(cls, data: Any) -> TableTask:
        """The unfitted task of a tabular data config."""
        return cls()

    def check_column(self, frame: pd.DataFrame, column: str) -> None:
        """Refuse a target column the task cannot read, before rows without a target are dropped."""

    @abstractmethod
    def check_target(self, target: pd.Series, column: str) -> None:
        """Refuse targets the task cannot learn, saying what to use instead."""

    @abstractmethod
    def fit(self, target: pd.Series) -> TableTask:
        """Learn the encoding from the training rows' targets."""

    @abstractmethod
    def encode(self, target: pd.Series) -> np.ndarray:
        """Targets as the model is trained on them."""

    @property
    @abstractmethod
    def d_out(self) -> int:
        """Outputs per row the model needs."""

    @abstractmethod
    def predictions(self, outputs: np.ndarray) -> pd.DataFrame:
        """One row per sample: the prediction (and whatever else the outputs tell, e.g. class probabilities)."""

    def stratify_labels(self, target: pd.Series) -> np.ndarray | None:
        """Labels a split keeps in proportion, or None."""
        return None

    def check_held_out(self, held: pd.Series, target: pd.Series, column: str) -> None:
        """Refuse validation or test targets the fitted encoding cannot represent."""

    @abstractmethod
    def check_new_targets(self, target: pd.Series, column: str) -> None:
        """Refuse the (present) targets of labelled new rows that the run cannot score, naming the column."""


class Regression(TableTask):
    """A real-valued target, standardized for training and reported in `target_unit`s."""

    name = "regression"
    plot_file = "predicted_vs_actual.png"

    def __init__(self, target_unit: float = 1.0):
        self.target_unit = target_unit
        self.target_scaler: StandardScaler | None = None

    @classmethod
    def from_config(cls, data: Any) -> Regression:
        return cls(float(data.target_unit))

    def check_column(self, frame: pd.DataFrame, column: str) -> None:
        refuse_stray_text(frame, column, "data.target_column", TARGET_FIX)

    def check_target(self, target: pd.Series, column: str) -> None:
        counts = target.value_counts()
        first = short(counts.index[0])
        if not is_numeric(target):
            raise DataError(f"data.task: target {column!r} is not numeric (e.g. {first}); use "
                            f"data.task=classification, or a numeric data.target_column")
        if len(counts) < 2:
            raise DataError(f"data.target_column: target {column!r} is constant ({first}), nothing to "
                            f"learn; pick a data.target_column whose values vary")

    def check_new_targets(self, target: pd.Series, column: str) -> None:
        """A word or a true/false is no quantity to compare a prediction with."""
        numbers = pd.to_numeric(target, errors="coerce") if not pd.api.types.is_bool_dtype(target) else None
        text = target if numbers is None else target[numbers.isna()]
        if len(text):
            raise InputError((), f"target column {column!r} holds {len(text)} value(s) that are not numbers (e.g. "
                                 f"{short(text.iloc[0])}); fix them, or leave them empty (a row without a target "
                                 f"is not scored)")

    def fit(self, target: pd.Series) -> Regression:
        self.target_scaler = StandardScaler().fit(self._units(target))
        return self

    def encode(self, target: pd.Series) -> np.ndarray:
        """Standardized float32, (n, 1)."""
        return self.target_scaler.transform(self._units(target)).astype(np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Back to original units (after `target_unit`)."""
        flat = np.asarray(y, np.float64).reshape(-1, 1)
        return self.target_scaler.inverse_transform(flat).reshape(np.shape(y))

    def _units(self, target: pd.Series) -> np.ndarray:
        return (target.to_numpy(np.float64) / self.target_unit).reshape(-1, 1)

    @property
    def d_out(self) -> int:
        return 1

    def point_loss(self) -> LossFn:
        return F.mse_loss

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """RMSE, MAE, MSE, R² in the target's original units (what tabular papers report)."""
        predicted, actual = self.decode(outputs), self.decode(actual)
        return {**regression_metrics(predicted, actual), "r2": float(r2_score(actual.ravel(), predicted.ravel()))}

    def metric_names(self, actual: np.ndarray) -> list[str]:
        return [*regression_metric_names(), "r2"]

    def predictions(self, outputs: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"predicted": np.asarray(self.decode(outputs)).reshape(-1)})

    def plot(self, table: pd.DataFrame, path: Path) -> None:
        plot_predicted_vs_actual(table, path)

    def metadata(self) -> dict[str, Any]:
        """No classes; the key is there so that clients read one shape for every table model."""
        return {"classes": []}


class Classification(TableTask):
    """Class labels (binary or multiclass) as indices in the order of `classes`; the model outputs one
    logit for two classes, one per class otherwise."""

    name = "classification"
    plot_file = "confusion_matrix.png"
    predicts_classes = True

    def __init__(self) -> None:
        self.classes: list = []

    def check_target(self, target: pd.Series, column: str) -> None:
        counts = target.value_counts()
        if len(counts) < 2:
            raise DataError(f"data.target_column: target {column!r} has a single class ({short(counts.index[0])}); "
                            f"classification needs at least two classes; pick another data.target_column")
        fractional = pd.api.types.is_float_dtype(target) and not np.all(np.mod(target.to_numpy(np.float64), 1.0) == 0.0)
        mostly_unique = is_numeric(target) and (counts == 1).sum() > len(counts) / 2
        if fractional or mostly_unique:
            examples = listing(map(short, target.head(3)), limit=3)
            raise DataError(f"data.task: target {column!r} has {len(counts)} distinct numbers, "
                            f"{'some fractional' if fractional else 'most seen once'} (e.g. {examples}), which "
                            f"looks continuous; use data.task=regression")
        for labels in near_duplicate_labels(target):
            log.warning("data: classes %s of target %r differ only in case or surrounding spaces and are "
                        "distinct classes; if they are one, write them alike in data.path",
                        listing(map(repr, labels)), column)

    def fit(self, target: pd.Series) -> Classification:
        self.classes = sorted(label_values(target).unique().tolist())
        return self

    def encode(self, target: pd.Series) -> np.ndarray:
        """Class indices, int64 (n,)."""
        index = {label: i for i, label in enumerate(self.classes)}
        return label_values(target).map(index).to_numpy(np.int64)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Class indices -> labels."""
        return np.array(self.classes, dtype=object)[y]

    def stratify_labels(self, target: pd.Series) -> np.ndarray:
        return label_values(target).to_numpy()

    def check_new_targets(self, target: pd.Series, column: str) -> None:
        """A class the run never trained on has no output to predict it, so its rows cannot be scored."""
        unseen = sorted(set(label_values(target)) - set(self.classes))
        if unseen:
            raise InputError((), f"target column {column!r} holds {len(unseen)} class(es) the run was not trained "
                                 f"on ({listing(map(repr, unseen), limit=3)}; its classes: "
                                 f"{listing(map(repr, self.classes), limit=10)}); leave those rows out")

    def check_held_out(self, held: pd.Series, target: pd.Series, column: str) -> None:
        """A class that no training row shows has no output to predict it: refuse before training on it."""
        unseen = sorted(set(label_values(held)) - set(self.classes))
        if unseen:
            raise DataError(f"data.split: {len(unseen)} of the {len(self.classes) + len(unseen)} classes of "
                            f"{column!r} are in validation or test rows but in no training row (e.g. "
                            f"{', '.join(unseen[:3])}); {quantity_hint(target)}set data.split.stratify=true or "
                            f"merge the rare classes")

    @property
    def d_out(self) -> int:
        return 1 if len(self.classes) == 2 else len(self.classes)

    def point_loss(self) -> LossFn:
        """Binary cross-entropy on one logit, or cross-entropy on one logit per class; targets arrive as
        class indices of any dtype."""
        if self.d_out == 1:
            return lambda output, target: F.binary_cross_entropy_with_logits(output.squeeze(-1), target.float())
        return lambda output, target: F.cross_entropy(output, target.long())

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes) from logits: one logit (binary, sigmoid) or one per class (softmax)."""
        logits = torch.as_tensor(np.asarray(outputs, np.float32))
        if logits.shape[-1] == 1:
            positive = torch.sigmoid(logits)
            return torch.cat([1 - positive, positive], dim=-1).numpy()
        return torch.softmax(logits, dim=-1).numpy()

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """Accuracy, log-loss, macro-F1, and ROC-AUC when there are two classes."""
        probabilities = self.probabilities(outputs)
        labels = np.arange(probabilities.shape[1])
        predicted = probabilities.argmax(axis=1)
        out = {"accuracy": float(accuracy_score(actual, predicted)),
               "log_loss": float(log_loss(actual, probabilities, labels=labels)),
               "f1_macro": float(f1_score(actual, predicted, labels=labels, average="macro", zero_division=0))}
        if self._has_roc_auc(actual):
            out["roc_auc"] = float(roc_auc_score(actual, probabilities[:, 1]))
        return out

    def metric_names(self, actual: np.ndarray) -> list[str]:
        return ["accuracy", "log_loss", "f1_macro", *(["roc_auc"] if self._has_roc_auc(actual) else [])]

    def _has_roc_auc(self, actual: np.ndarray) -> bool:
        """ROC-AUC is for two classes, and defined only where the split holds both."""
        return len(self.classes) == 2 and len(np.unique(actual)) == 2

    def predictions(self, outputs: np.ndarray) -> pd.DataFrame:
        """The most probable label, and the probability of each class."""
        probabilities = self.probabilities(outputs)
        result = pd.DataFrame({"predicted": self.decode(probabilities.argmax(axis=1))})
        for k, label in enumerate(self.classes):
            result[f"prob_{label}"] = probabilities[:, k].astype(np.float64)
        return result

    def plot(self, table: pd.DataFrame, path: Path) -> None:
        plot_confusion_matrix(table, path)

    def metadata(self) -> dict[str, Any]:
        return {"classes": list(self.classes)}


# The values of `data.task` for tables, and the task each names.
TABLE_TASKS: dict[str, type[TableTask]] = {task.name: task for task in (Regression, Classification)}


def quantity_hint(target: pd.Series) -> str:
    """Classes too rare to split are often the distinct values of a quantity asked as classification."""
    return "if the target is a quantity, use data.task=regression; otherwise " if is_numeric(target) else ""


def members_loss(point: LossFn) -> LossFn:
    """The mean of the members' losses, as TabM trains (Gorishniy et al. 2025): each member is scored on every
    sample of the batch, not the loss of their average. The point losses average over samples, so scoring
    the (batch * k) member outputs against each target repeated k times is exactly that mean."""

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return point(output.flatten(0, 1), target.repeat_interleave(output.shape[1], dim=0))

    return loss


def quantile_column(level: float) -> str:
    """The predictions table's column of a quantile level: 0.1 -> `q0.1`."""
    return f"q{level:g}"


def regression_metrics(predicted: np.ndarray, actual: np.ndarray, suffix: str = "") -> dict[str, float]:
    err = predicted.astype(np.float64) - actual.astype(np.float64)
    mse = float(np.mean(err**2))
    values = (mse, float(np.mean(np.abs(err))), float(np.sqrt(mse)))
    return dict(zip(regression_metric_names(suffix), values, strict=True))


def regression_metric_names(suffix: str = "") -> list[str]:
    return [f"mse{suffix}", f"mae{suffix}", f"rmse{suffix}"]

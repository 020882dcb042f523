"""The tasks of a table: one target column, a regression (`Regression`) or a classification (`Classification`).

A table task checks the target column before rows without a target are dropped, learns its encoding
from the training rows' targets (`fit` returns the fitted task: a task never changes once built), and
turns outputs into one prediction row per sample. A regression also reads quantile outputs (a model's
`quantiles`), calibrated on the validation split as a forecast's are (dl_core/task/conformal.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from dl_core.checks import is_numeric, label_values, listing, near_duplicate_labels, refuse_stray_text, short
from dl_core.errors import DataError, InputError
from dl_core.models.outputs import POINT, OutputKind
from dl_core.task.base import LossFn, OutputLosses, Probabilistic, Task, regression_metric_names, regression_metrics
from dl_core.task.conformal import IntervalCalibration

if TYPE_CHECKING:
    from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)

TARGET_FIX = "fix or blank those cells (rows without a target are dropped)"


class TableTask(Task, Protocol):
    """What the tabular data step, its splits and prediction need of a table's task."""

    # Whether the outputs are classes (the synthetic table then draws class labels).
    predicts_classes: ClassVar[bool]

    @classmethod
    def from_config(cls, data: Any) -> TableTask:
        """The unfitted task of a tabular data config."""

    def check_column(self, frame: pd.DataFrame, column: str) -> None:
        """Refuse a target column the task cannot read, before rows without a target are dropped."""

    def check_target(self, target: pd.Series, column: str) -> None:
        """Refuse targets the task cannot learn, saying what to use instead."""

    def fit(self, target: pd.Series) -> TableTask:
        """This task with its encoding learned from the training rows' targets."""

    def encode(self, target: pd.Series) -> np.ndarray:
        """Targets as the model is trained on them."""

    @property
    def d_out(self) -> int:
        """Outputs per row the model needs."""

    def predictions(self, outputs: np.ndarray) -> pd.DataFrame:
        """One row per sample: the prediction (and whatever else the outputs tell, e.g. class probabilities)."""

    def stratify_labels(self, target: pd.Series) -> np.ndarray | None:
        """Labels a split keeps in proportion, or None."""

    def check_held_out(self, held: pd.Series, target: pd.Series, column: str) -> None:
        """Refuse validation or test targets the fitted encoding cannot represent."""

    def check_new_targets(self, target: pd.Series, column: str) -> None:
        """Refuse the (present) targets of labelled new rows that the run cannot score, naming the column."""


class TableDefaults(OutputLosses):
    """What a table task does where it has nothing to check or keep in proportion."""

    predicts_classes: ClassVar[bool] = False

    @classmethod
    def from_config(cls, data: Any) -> TableTask:
        return cls()

    def check_column(self, frame: pd.DataFrame, column: str) -> None:
        """Nothing to refuse before rows without a target are dropped."""

    def stratify_labels(self, target: pd.Series) -> np.ndarray | None:
        return None

    def check_held_out(self, held: pd.Series, target: pd.Series, column: str) -> None:
        """Any held-out target can be represented."""


@dataclass(frozen=True, eq=False)
class Regression(Probabilistic, TableDefaults):
    """A real-valued target, standardized for training and reported in `target_unit`s; quantile outputs are
    reported as their median and one column per level, their central intervals calibrated with one offset
    each, on the standardized scale."""

    name: ClassVar[str] = "regression"

    target_unit: float = 1.0
    target_scaler: StandardScaler | None = None
    outputs: OutputKind = POINT
    calibration: IntervalCalibration | None = None

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
        from sklearn.preprocessing import StandardScaler

        return replace(self, target_scaler=StandardScaler().fit(self._units(target)))

    def encode(self, target: pd.Series) -> np.ndarray:
        """Standardized float32, (n, 1)."""
        return self.target_scaler.transform(self._units(target)).astype(np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Back to original units (after `target_unit`), whatever the shape: every value is one of the target."""
        flat = np.asarray(y, np.float64).reshape(-1, 1)
        return self.target_scaler.inverse_transform(flat).reshape(np.shape(y))

    def decode_quantiles(self, quantiles: np.ndarray) -> np.ndarray:
        """Every level like a value (the scaling is increasing)."""
        return self.decode(quantiles)

    def _units(self, target: pd.Series) -> np.ndarray:
        return (target.to_numpy(np.float64) / self.target_unit).reshape(-1, 1)

    @property
    def d_out(self) -> int:
        return 1

    def point_loss(self) -> LossFn:
        return F.mse_loss

    def metrics(self, outputs: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """RMSE, MAE, MSE, R² in the target's original units (what tabular papers report); for quantile outputs,
        of the median, and the interval metrics besides (`Probabilistic.interval_metrics`: pinball, CRPS, and the
        coverage and width of each central interval, calibrated and `_raw`)."""
        from sklearn.metrics import r2_score

        predicted, decoded = self.decode(self.outputs.median(outputs)), self.decode(actual)
        out = {**regression_metrics(predicted, decoded), "r2": float(r2_score(decoded.ravel(), predicted.ravel()))}
        return out if self.outputs.is_point else {**out, **self.interval_metrics(outputs, actual)}

    def metric_names(self, actual: np.ndarray) -> list[str]:
        names = [*regression_metric_names(), "r2"]
        return names if self.outputs.is_point else [*names, *self.interval_metric_names()]

    def predictions(self, outputs: np.ndarray) -> pd.DataFrame:
        """`predicted`; for quantile outputs the median, with a column per level (`q0.1`) and, calibrated, the
        model's own (`raw_q0.1`)."""
        columns = {"predicted": self.decode(outputs)} if self.outputs.is_point else self.quantile_columns(outputs)
        return pd.DataFrame({name: np.asarray(values).reshape(-1) for name, values in columns.items()})



@dataclass(frozen=True, eq=False)
class Classification(TableDefaults):
    """Class labels (binary or multiclass) as indices in the order of `classes`; the model outputs one
    logit for two classes, one per class otherwise."""

    name: ClassVar[str] = "classification"
    predicts_classes: ClassVar[bool] = True

    classes: list = field(default_factory=list)
    outputs: OutputKind = POINT

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
            log.warning("data: classes %s of target %r differ only in case, surrounding spaces or invisible "
                        "characters and are distinct classes; if they are one, write them alike in data.path",
                        listing(map(repr, labels)), column)

    def fit(self, target: pd.Series) -> Classification:
        return replace(self, classes=sorted(label_values(target).unique().tolist()))

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
        from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

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


# The values of `data.task` for tables, and the task each names.
TABLE_TASKS: dict[str, type[TableTask]] = {task.name: task for task in (Regression, Classification)}


def quantity_hint(target: pd.Series) -> str:
    """Classes too rare to split are often the distinct values of a quantity asked as classification."""
    return "if the target is a quantity, use data.task=regression; otherwise " if is_numeric(target) else ""



"""What the gradient-boosted tree estimators (CatBoost, XGBoost, LightGBM) share: one `Estimator` skeleton.

A tree library fits in one call, so the estimator (not the epoch engine) trains: on the tabular
bundle's training split, with early stopping on its validation split (the best round's model is
kept), from the same rows, split and categorical codes as every other table model. Numbers reach the
trees raw, missing ones as NaN, which each library routes itself (`data_options` makes the data
step skip imputation and the quantile transform: trees only see the order of a feature). Categories
arrive as the preprocessor's codes (0: missing or unseen); each library gets them as it prefers.
Targets are the task's encoding (a standardized regression target, class indices), and the model's
raw outputs follow the task's convention (values; one log-odds for two classes, one score per
class otherwise), so the task's metrics, predictions table and plots apply unchanged.

The fitted booster is serialized into the one checkpoint format (`model: {"booster": bytes}`),
with the early-stopping state and the per-round history (the library's train and validation loss,
in the task's loss: squared RMSE or log-loss; `time_s`, the seconds since the fit began when the
round ended, as an epoch's row has them), so `load_run`, predict.py and serve.py load it like
any run. `trainer.resume` of a GBDT run continues nothing: a fit is one call that writes its
checkpoint when it ends, so a resumed run reloads the finished booster and re-evaluates it, and a
run killed mid-fit has no checkpoint and runs again from the start (deterministically, with the
same seed and threads).

Hardware: `hardware.device=cuda` maps to each library's GPU training where it has one (`device_params`);
DDP is refused (a library fits in one process, on its own threads or GPU); mixed precision and
`torch.compile` do not apply and are ignored with one line. The trainer's optimizer settings do not
apply either: the boosting settings are the model's (`model.*`).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from dl_core.data.bundle import DataBundle, Split
from dl_core.data.tabular import RAW
from dl_core.engine.checkpoint import atomic_save, checkpoint_payload
from dl_core.engine.hardware import Hardware
from dl_core.engine.loop import EarlyStopping, FitContext, FitResult
from dl_core.errors import ConfigError, require, require_at_least

log = logging.getLogger(__name__)

VALUES, BINARY, MULTICLASS = "values", "binary", "multiclass"  # what the outputs are


@dataclass
class BoostingConfig:
    """What every gradient-boosted tree model sets.

    Attributes:
        n_estimators: most boosting rounds (the TabM and TabR papers use 4000 with early stopping).
        early_stopping_rounds: rounds without a better validation loss before fitting stops; the best
            round's model is kept.
    """

    n_estimators: int = 4000
    early_stopping_rounds: int = 200

    def validate(self, prefix: str) -> None:
        require_at_least(self, prefix, n_estimators=1, early_stopping_rounds=1)


class RoundClock:
    """When each boosting round ended, in seconds since the fit began: the library calls `lap` after every round
    (its evaluation on the train and validation rows done), so each round's row gets the time the library
    reached it, as an epoch's row does, and never the fit's total spread over its rounds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.ends: list[float] = []

    def lap(self) -> None:
        self.ends.append(self.elapsed())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@dataclass
class Fitted:
    """What a library's fit returns: the booster (its best rounds only) and the per-round loss history."""

    booster: Any
    train_loss: list[float]
    val_loss: list[float]


class GradientBoosting(ABC):
    """An `Estimator` over a library's booster; a subclass says how to fit, serialize and predict."""

    data_kind = "tabular"
    data_options: ClassVar[dict[str, str]] = {"numeric_transform": RAW}
    library: ClassVar[str]
    package: ClassVar[str]  # what to import
    library_names: ClassVar[dict[str, str]] = {}  # a setting of the schema -> the library's name, where they differ

    def __init__(self, n_cont_features: int, cat_cardinalities: list[int], d_out: int, predicts_classes: bool, *,
                 n_estimators: int, early_stopping_rounds: int, **params: Any):
        """`params` are the library's settings, the schema's fields besides the rounds (checked by its `validate`,
        so the schema stays their one list), kept under the library's names for its parameters."""
        if importlib.util.find_spec(self.package) is None:
            raise ConfigError(f"model={self.package}: needs the {self.package} package; install the gbdt extra: "
                              f"pip install -e '.[gbdt]'")
        self.n_cont_features, self.cat_cardinalities = n_cont_features, list(cat_cardinalities)
        self.d_out = d_out
        self.objective = MULTICLASS if d_out > 1 else BINARY if predicts_classes else VALUES
        self.n_estimators, self.early_stopping_rounds = n_estimators, early_stopping_rounds
        self.params = {self.library_names.get(name, name): value for name, value in params.items()}
        self.booster: Any = None

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def n_parameters(self) -> int:
        return 0 if self.booster is None else self.count_parameters()

    # -- what a library implements --------------------------------------------------------------------------

    @abstractmethod
    def fit_library(self, train: tuple[np.ndarray, np.ndarray, np.ndarray],
                    val: tuple[np.ndarray, np.ndarray, np.ndarray], hw: Hardware, seed: int,
                    clock: RoundClock) -> Fitted:
        """Fit on (x_num, x_cat, y) of the training rows with early stopping on the validation rows, calling
        `clock.lap()` after every round where the library can call back."""

    @abstractmethod
    def predict_library(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        """Raw scores of the booster: (n,) or (n, n_classes)."""

    @abstractmethod
    def to_bytes(self) -> bytes: ...

    @abstractmethod
    def from_bytes(self, data: bytes) -> Any: ...

    @abstractmethod
    def device_params(self, hw: Hardware) -> dict[str, Any]:
        """The library's device and thread parameters for `hw`."""

    @abstractmethod
    def count_parameters(self) -> int:
        """What the fitted booster learned, counted as its library's trees hold it."""

    # -- the Estimator ----------------------------------------------------------------------------------------

    def fit(self, bundle: DataBundle, context: FitContext) -> FitResult:
        check_hardware(context, self.library)
        if context.resume is not None:
            self.load_state(context.resume)
            return result_of(context.resume, len(bundle.splits["train"]))
        clock = RoundClock()
        fitted = self.fit_library(arrays(bundle.splits["train"], with_target=True),
                                  arrays(bundle.splits["val"], with_target=True), context.hw, context.seed, clock)
        self.booster = fitted.booster
        elapsed = clock.elapsed()
        val = bundle.splits["val"]
        val_loss = float(bundle.task.loss()(torch.from_numpy(self.predict(val)), val.targets().float().cpu()))
        rounds = len(fitted.val_loss)
        best_round = int(np.argmin(fitted.val_loss)) + 1
        stopper = EarlyStopping(self.early_stopping_rounds, 0.0, val_loss, best_round, rounds - best_round)
        history = [{"epoch": i + 1, "train_loss": train_loss, "val_loss": val_round}
                   for i, (train_loss, val_round) in enumerate(zip(fitted.train_loss, fitted.val_loss, strict=True))]
        if clock.ends:  # none where the library calls nothing back (CatBoost on a GPU): train_time_s is the fit's
            for row, seconds in zip(history, clock.ends, strict=True):
                row["time_s"] = seconds
        if context.ddp.is_main:
            state = {"booster": self.to_bytes()}
            payload = checkpoint_payload(rounds, True, state, state, {"early_stopping": stopper},
                                         torch.Generator().manual_seed(context.seed), history, elapsed,
                                         context.artifacts)
            checkpoints = context.run_dir / "checkpoints"
            atomic_save(payload, checkpoints / "best.ckpt", checkpoints / "last.ckpt")
            for tracker in context.trackers:
                tracker.log_epoch(history)
        log.info("%s: %d rounds, best round %d", self.library, rounds, best_round)
        return FitResult(best_round, rounds, val_loss, stopper.should_stop, len(bundle.splits["train"]), elapsed,
                         history)

    def predict(self, split: Split) -> np.ndarray:
        x_num, x_cat, _ = arrays(split, with_target=False)
        scores = np.asarray(self.predict_library(x_num, x_cat), np.float32)
        return scores.reshape(len(split), self.d_out)

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        self.booster = self.from_bytes(checkpoint["model"]["booster"])

    # -- shared by the libraries ------------------------------------------------------------------------------

    def categories_as_missing(self, x_cat: np.ndarray) -> np.ndarray:
        """Category codes as floats, the reserved code 0 (missing or unseen) as NaN, for a library that
        treats NaN as a missing category."""
        codes = x_cat.astype(np.float64)
        codes[x_cat == 0] = np.nan
        return codes

    def targets(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(-1).astype(np.float64 if self.objective == VALUES else np.int64)

    def fitted(self, booster: Any, train_metric: list[float], val_metric: list[float]) -> Fitted:
        """The best booster with the library's per-round metric in the task's loss: RMSE squared for
        regression, log-loss as it is."""
        def task_loss(values: list[float]) -> list[float]:
            return [float(v) ** 2 if self.objective == VALUES else float(v) for v in values]

        return Fitted(booster, task_loss(train_metric), task_loss(val_metric))


def require_shares(section: object, prefix: str, *names: str) -> None:
    """Sampling shares (of rows or features) are in (0, 1]."""
    for name in names:
        value = getattr(section, name)
        require(0 < value <= 1, f"{prefix}.{name}", f"must be in (0, 1] (got {value})")


def arrays(split: Split, with_target: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x_num float32, x_cat int64, y) of every row of a tabular split, on the CPU."""
    x_num, x_cat = split.inputs(torch.arange(len(split)))
    y = split.targets().cpu().numpy() if with_target else None
    return x_num.cpu().numpy(), x_cat.cpu().numpy(), y


def check_hardware(context: FitContext, library: str) -> None:
    """Refuse DDP; say in one line which settings of the torch engine are ignored."""
    if context.ddp.enabled:
        raise ConfigError(f"hardware.distributed: {library} fits in one process (on its own threads or GPU), not "
                          f"under DDP; run it without torchrun and hardware=ddp")
    ignored = [f"hardware.precision={context.hw.precision}"] if context.hw.precision != "32" else []
    ignored += ["hardware.compile=true"] if context.hw.compile else []
    if ignored:
        log.warning("%s does not apply to %s (trees have no mixed precision or torch graph): ignored",
                    " and ".join(ignored), library)


def result_of(checkpoint: dict[str, Any], n_train: int) -> FitResult:
    """The fit a finished checkpoint records, for a resumed run that has nothing left to fit."""
    stopper = checkpoint["early_stopping"]
    stopped = stopper["bad_epochs"] >= stopper["patience"]
    return FitResult(stopper["best_epoch"], checkpoint["epoch"], stopper["best"], stopped, n_train,
                     checkpoint["train_time_s"], checkpoint["history"])


def gpu_index(hw: Hardware) -> int:
    return hw.device.index or 0

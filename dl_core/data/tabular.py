"""Tabular data: one row per sample, a random seeded split, and preprocessing fit on train rows only.

Numeric features are imputed (train median or mean; an infinity counts as missing) and mapped through a quantile-normal
transform or standard scaling; categorical features are encoded with index 0 reserved for
missing values and categories never seen in training, so serving never fails on a new value.
Regression targets are standardized for training and reported in original units (divided by
`data.target_unit`, e.g. $100k for California Housing); classification targets become class
indices in the order of `classes`; rows whose target is missing or infinite are dropped. A split
holds whole tensors and is batched by index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder, QuantileTransformer, StandardScaler

from dl_core.data.bundle import DataBundle
from dl_core.data.checks import (INFINITE, counts_listing, infinite_as_missing, is_numeric, listing, one_line,
                                 refuse_stray_text, short)
from dl_core.data.loading import require_columns
from dl_core.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FEATURE_FIX = ("fix or blank those cells (blank numbers are imputed), or list the column in "
               "data.categorical_columns if it is a category")
TARGET_FIX = "fix or blank those cells (rows without a target are dropped)"
RESERVED_CATEGORY = 0  # missing or unseen in training


@dataclass
class TabularPreprocessor:
    """The fitted, picklable recipe from a raw frame to model inputs (and from outputs back to labels/units)."""

    task: str
    target_column: str
    numeric_columns: list[str]
    categorical_columns: list[str]
    numeric_transform: str
    impute: str
    target_unit: float = 1.0
    quantile_noise: float = 0.0
    noise_seed: int = 0
    classes: list = field(default_factory=list)
    impute_values: dict[str, float] = field(default_factory=dict)
    numeric_transformer: QuantileTransformer | StandardScaler | None = None
    category_encoder: OrdinalEncoder | None = None
    target_scaler: StandardScaler | None = None

    @property
    def cat_cardinalities(self) -> list[int]:
        """Known categories per column plus the reserved index."""
        if self.category_encoder is None:
            return []
        return [sum(1 for c in cats if not pd.isna(c)) + 1 for cats in self.category_encoder.categories_]

    def fit(self, train: pd.DataFrame) -> "TabularPreprocessor":
        """Learn imputation values, transforms, encodings and target scaling from the training rows."""
        numeric = train[self.numeric_columns].astype(np.float64)
        stat = numeric.median() if self.impute == "median" else numeric.mean()
        self.impute_values = {c: float(stat[c]) if np.isfinite(stat[c]) else 0.0 for c in self.numeric_columns}
        if self.numeric_columns:
            filled = numeric.fillna(self.impute_values).to_numpy()
            transformer = _numeric_transformer(self.numeric_transform, len(filled))
            self.numeric_transformer = transformer.fit(self._tie_breaking(filled))
        if self.categorical_columns:
            self.category_encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                   encoded_missing_value=-1)
            self.category_encoder.fit(_category_strings(train, self.categorical_columns))
        if self.task == "regression":
            self.target_scaler = StandardScaler().fit(self._target_units(train).reshape(-1, 1))
        else:
            self.classes = sorted(_label_values(train[self.target_column]).unique().tolist())
        return self

    def _tie_breaking(self, values: np.ndarray) -> np.ndarray:
        """Training values with a little noise, so that repeated values spread over their quantile range."""
        if self.numeric_transform != "quantile" or self.quantile_noise == 0:
            return values
        noise = np.random.default_rng(self.noise_seed).standard_normal(values.shape)
        return values + noise * self.quantile_noise * values.std(axis=0, keepdims=True)

    def transform_features(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(x_num float32 (n, n_num), x_cat int64 (n, n_cat)) for any frame with the feature columns."""
        require_columns(frame, [*self.numeric_columns, *self.categorical_columns], "data.feature_columns")
        n = len(frame)
        x_num = np.zeros((n, 0), np.float32)
        if self.numeric_columns:
            numeric = _numeric_values(frame, self.numeric_columns).fillna(self.impute_values).to_numpy()
            x_num = self.numeric_transformer.transform(numeric).astype(np.float32)
        x_cat = np.zeros((n, 0), np.int64)
        if self.categorical_columns:
            codes = self.category_encoder.transform(_category_strings(frame, self.categorical_columns))
            x_cat = (codes + 1).astype(np.int64)  # unknown/missing -1 -> RESERVED_CATEGORY
        return x_num, x_cat

    def transform_target(self, frame: pd.DataFrame) -> np.ndarray:
        """Regression: standardized float32 (n, 1); classification: class indices int64 (n,)."""
        if self.task == "regression":
            return self.target_scaler.transform(self._target_units(frame).reshape(-1, 1)).astype(np.float32)
        index = {label: i for i, label in enumerate(self.classes)}
        return _label_values(frame[self.target_column]).map(index).to_numpy(np.int64)

    def inverse_target(self, y: np.ndarray) -> np.ndarray:
        """Regression: back to original units (after `target_unit`); classification: identity."""
        if self.task != "regression":
            return y
        flat = np.asarray(y, np.float64).reshape(-1, 1)
        return self.target_scaler.inverse_transform(flat).reshape(np.shape(y))

    def _target_units(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.target_column].to_numpy(np.float64) / self.target_unit


class TabularSplit:
    """Rows of one split as whole tensors; `batch(idx)` gathers `((x_num, x_cat), y)`."""

    def __init__(self, x_num: torch.Tensor, x_cat: torch.Tensor, y: torch.Tensor, rows: np.ndarray):
        self.x_num, self.x_cat, self.y, self.rows = x_num, x_cat, y, rows

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return (self.x_num[idx], self.x_cat[idx]), self.y[idx]

    def to(self, device: torch.device) -> "TabularSplit":
        return TabularSplit(self.x_num.to(device), self.x_cat.to(device), self.y.to(device), self.rows)

    def targets(self) -> torch.Tensor:
        return self.y


def output_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities (n, n_classes) from logits: one logit (binary, sigmoid) or one per class (softmax)."""
    logits = torch.as_tensor(np.asarray(outputs, np.float32))
    if logits.shape[-1] == 1:
        positive = torch.sigmoid(logits)
        return torch.cat([1 - positive, positive], dim=-1).numpy()
    return torch.softmax(logits, dim=-1).numpy()


def build_tabular_bundle(cfg: Any, frame: pd.DataFrame) -> DataBundle:
    """Frame -> checked target -> seeded (stratified) split -> train-fit preprocessing -> tensors."""
    prep = _preprocessor_from_config(cfg, frame)
    frame, infinite = infinite_as_missing(frame, prep.numeric_columns)
    if not infinite.empty:
        log.warning("data: infinite values in %s are treated as missing and imputed with the training %s",
                    counts_listing(infinite), prep.impute)
    frame, dropped = _drop_missing_targets(frame, prep.target_column)
    _check_target(frame[prep.target_column], prep.task, prep.target_column)
    parts = _split_rows(frame, prep, cfg.split)
    prep.fit(frame.loc[parts["train"]])
    if prep.task == "classification":
        _refuse_unseen_classes(frame, parts, prep)
    splits = {name: _to_split(frame.loc[rows], prep) for name, rows in parts.items()}
    d_out = 1 if prep.task == "regression" or len(prep.classes) == 2 else len(prep.classes)
    spec = {"n_cont_features": len(prep.numeric_columns), "cat_cardinalities": prep.cat_cardinalities,
            "d_out": d_out}
    info = {"rows": len(frame), "rows_dropped_missing_target": dropped, "impute": prep.impute,
            "imputed_values": {c: int(frame[c].isna().sum()) for c in prep.numeric_columns if frame[c].isna().any()},
            **{f"n_{name}_samples": len(split) for name, split in splits.items()}}

    def describe(split: str, predictions: np.ndarray) -> pd.DataFrame:
        return prediction_frame(splits[split], predictions, prep)

    return DataBundle(prep.task, splits, spec, prep, describe, info)


def prediction_frame(split: TabularSplit, outputs: np.ndarray, prep: TabularPreprocessor) -> pd.DataFrame:
    """One row per sample: its row in the source file, actual and predicted (original units or labels),
    and for classification the probability of each class."""
    actual = split.targets().cpu().numpy()
    if prep.task == "regression":
        return pd.DataFrame({"row": split.rows, "actual": prep.inverse_target(actual).ravel(),
                             "predicted": prep.inverse_target(outputs).ravel()})
    probs = output_probabilities(outputs)
    classes = np.array(prep.classes, dtype=object)
    frame = pd.DataFrame({"row": split.rows, "actual": classes[actual], "predicted": classes[probs.argmax(1)]})
    for i, label in enumerate(prep.classes):
        frame[f"prob_{label}"] = probs[:, i]
    return frame


def _preprocessor_from_config(cfg: Any, frame: pd.DataFrame) -> TabularPreprocessor:
    target = cfg.target_column
    require_columns(frame, [target], "data.target_column")
    features = [c for c in frame.columns if c != target] if cfg.feature_columns is None \
        else [c for c in cfg.feature_columns if c != target]
    require_columns(frame, features, "data.feature_columns")
    if cfg.task == "regression":
        refuse_stray_text(frame, target, "data.target_column", TARGET_FIX)
    listed = cfg.categorical_columns is not None
    categorical = list(cfg.categorical_columns) if listed else []
    require_columns(frame, categorical, "data.categorical_columns")
    features = [*features, *(c for c in categorical if c not in features)]
    for column in features:  # a listed category is left alone; any other column of numbers with a typo is refused
        if column not in categorical:
            refuse_stray_text(frame, column, "data.feature_columns", FEATURE_FIX)
    if not listed:
        categorical = [c for c in features if not is_numeric(frame[c])]
    numeric = [c for c in features if c not in categorical]
    bad = [c for c in numeric if not is_numeric(frame[c])]
    if bad:
        raise DataError(f"data.categorical_columns: column(s) [{listing(map(repr, bad))}] are not numeric; "
                        f"add them to data.categorical_columns or drop them from data.feature_columns")
    if not features:
        raise DataError(f"data.feature_columns: no input columns besides the target {target!r}; list some")
    return TabularPreprocessor(cfg.task, target, numeric, categorical, cfg.numeric_transform, cfg.impute,
                               float(cfg.target_unit), float(cfg.quantile_noise), int(cfg.split.seed))


def _drop_missing_targets(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """Rows without a finite target cannot be trained or scored on; they are dropped (and counted in info)."""
    infinite = frame[target].isin(INFINITE)
    keep = frame[target].notna() & ~infinite
    if not keep.any():
        raise DataError(f"data.target_column: column {target!r} has no values (all {len(frame)} rows are missing "
                        f"or infinite); pick another target column")
    dropped = int((~keep).sum())
    if dropped:
        log.warning("data: %d row(s) without a target %s are dropped (%d missing, %d infinite)", dropped, target,
                    dropped - int(infinite.sum()), int(infinite.sum()))
    return frame[keep], dropped


def _check_target(target: pd.Series, task: str, name: str) -> None:
    """Refuse targets the task cannot learn, saying what to use instead."""
    counts = target.value_counts()
    first = short(counts.index[0])
    if task == "regression":
        if not is_numeric(target):
            raise DataError(f"data.task: target {name!r} is not numeric (e.g. {first}); use "
                            f"data.task=classification, or a numeric data.target_column")
        if len(counts) < 2:
            raise DataError(f"data.target_column: target {name!r} is constant ({first}), nothing to "
                            f"learn; pick a data.target_column whose values vary")
        return
    if len(counts) < 2:
        raise DataError(f"data.target_column: target {name!r} has a single class ({first}); "
                        f"classification needs at least two classes; pick another data.target_column")
    fractional = pd.api.types.is_float_dtype(target) and not np.all(np.mod(target.to_numpy(np.float64), 1.0) == 0.0)
    mostly_unique = is_numeric(target) and (counts == 1).sum() > len(counts) / 2
    if fractional or mostly_unique:
        examples = listing(map(short, target.head(3)), limit=3)
        raise DataError(f"data.task: target {name!r} has {len(counts)} distinct numbers, "
                        f"{'some fractional' if fractional else 'most seen once'} (e.g. {examples}), which "
                        f"looks continuous; use data.task=regression")


def _split_rows(frame: pd.DataFrame, prep: TabularPreprocessor, split: Any) -> dict[str, np.ndarray]:
    """Seeded random split of the frame's index labels; stratified by class for classification."""
    rows = frame.index.to_numpy()
    labels = _label_values(frame[prep.target_column]).to_numpy() \
        if prep.task == "classification" and split.stratify else None
    n_hold = split.val_fraction + split.test_fraction
    try:
        train, hold = train_test_split(rows, test_size=n_hold, random_state=split.seed, stratify=labels)
        hold_labels = None if labels is None else _label_values(frame.loc[hold, prep.target_column]).to_numpy()
        val, test = train_test_split(hold, test_size=split.test_fraction / n_hold, random_state=split.seed,
                                     stratify=hold_labels)
    except ValueError as exc:
        hint = _quantity_hint(frame[prep.target_column]) if labels is not None else ""
        raise DataError(f"data.split: cannot split {len(rows)} rows ({one_line(exc)}); {hint}use more rows, larger "
                        f"data.split fractions, or data.split.stratify=false") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _refuse_unseen_classes(frame: pd.DataFrame, parts: dict[str, np.ndarray], prep: TabularPreprocessor) -> None:
    """A class that no training row shows has no output to predict it: refuse before training on it."""
    held = frame.loc[np.concatenate([parts["val"], parts["test"]]), prep.target_column]
    unseen = sorted(set(_label_values(held)) - set(prep.classes))
    if not unseen:
        return
    raise DataError(f"data.split: {len(unseen)} of the {len(prep.classes) + len(unseen)} classes of "
                    f"{prep.target_column!r} are in validation or test rows but in no training row (e.g. "
                    f"{', '.join(unseen[:3])}); {_quantity_hint(frame[prep.target_column])}set "
                    f"data.split.stratify=true or merge the rare classes")


def _quantity_hint(target: pd.Series) -> str:
    """Classes too rare to split are often the distinct values of a quantity asked as classification."""
    return "if the target is a quantity, use data.task=regression; otherwise " if is_numeric(target) else ""


def _to_split(rows: pd.DataFrame, prep: TabularPreprocessor) -> TabularSplit:
    x_num, x_cat = prep.transform_features(rows)
    y = prep.transform_target(rows)
    return TabularSplit(torch.tensor(x_num), torch.tensor(x_cat), torch.tensor(y), rows.index.to_numpy())


def _numeric_transformer(kind: str, n_rows: int) -> QuantileTransformer | StandardScaler:
    """The rtdl recipe: quantile-normal with about 30 rows per quantile (at most 1000 quantiles)."""
    if kind == "standard":
        return StandardScaler()
    return QuantileTransformer(output_distribution="normal", n_quantiles=max(min(n_rows // 30, 1000), 10),
                               subsample=None)


def _numeric_values(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    try:
        return frame[columns].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"data.feature_columns: numeric column(s) [{listing(map(repr, columns))}] hold non-numbers "
                        f"({one_line(exc)}); "
                        f"send numbers or null") from None


def _category_strings(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Categories as strings (3.0 and 3 are one category), missing as NaN, for the ordinal encoder."""
    return np.stack([_label_values(frame[c]).to_numpy(object) for c in columns], axis=1)


def _label_values(series: pd.Series) -> pd.Series:
    def text(value: Any) -> Any:
        if pd.isna(value):
            return np.nan
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return series.astype(object).map(text)

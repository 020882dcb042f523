"""Tabular data: one row per sample, a random seeded split, and preprocessing fit on train rows only.

Numeric features are imputed (train median or mean; an infinity counts as missing) and mapped through a quantile-normal
transform or standard scaling, or left raw with missing values as NaN for models that read them so
(gradient-boosted trees ask for `raw`); categorical features are encoded with index 0 reserved for
missing values and categories never seen in training, so serving never fails on a new value. A
column of true/false values is a category too, whose new values must be true or false (its inputs'
type, `BOOLEAN`), so that a file cell `True` and a JSON `true` are both the training label `True`.
The target belongs to the task (`Regression`: standardized for training and reported in units of
`data.target_unit`, e.g. $100k for California Housing; `Classification`: class indices in the order
of its `classes`); rows whose target is missing or infinite are dropped. A split holds whole
tensors and is batched by index.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from dl_core.checks import (
    INFINITE,
    check_in_range,
    counts_listing,
    infinite_as_missing,
    is_boolean,
    is_numeric,
    label_values,
    listing,
    near_duplicate_labels,
    one_line,
    refuse_stray_text,
    unique_per_row,
)
from dl_core.data.bundle import DataBundle
from dl_core.data.inputs import BOOLEAN, LABEL, NUMBER, InputSchema, Unseen, find_unseen
from dl_core.data.loading import DataConfig, require_columns
from dl_core.data.splits import TabularSplitConfig, random_split
from dl_core.data.synthetic_tabular import TabularGeneratorConfig
from dl_core.errors import DataError, InputError, require, require_once
from dl_core.task import TABLE_TASKS, TableTask

if TYPE_CHECKING:
    from sklearn.preprocessing import OrdinalEncoder, QuantileTransformer, StandardScaler

log = logging.getLogger(__name__)

FEATURE_FIX = ("fix or blank those cells (blank numbers are imputed), or list the column in "
               "data.categorical_columns if it is a category")
RESERVED_CATEGORY = 0  # missing or unseen in training
RAW = "raw"  # data.numeric_transform for models that read numbers as they are (missing as NaN)


@dataclass
class TabularPreprocessor:
    """The fitted, picklable recipe from a raw frame to model inputs (the task encodes the target)."""

    target_column: str
    numeric_columns: list[str]
    categorical_columns: list[str]
    numeric_transform: str
    impute: str
    quantile_noise: float = 0.0
    noise_seed: int = 0
    derived: DerivedColumns | None = None
    impute_values: dict[str, float] = field(default_factory=dict)
    numeric_transformer: QuantileTransformer | StandardScaler | None = None
    category_encoder: OrdinalEncoder | None = None
    boolean_columns: frozenset[str] = frozenset()  # categorical columns of true/false values

    @property
    def cat_cardinalities(self) -> list[int]:
        """Known categories per column plus the reserved index."""
        if self.category_encoder is None:
            return []
        return [sum(1 for c in cats if not pd.isna(c)) + 1 for cats in self.category_encoder.categories_]

    @property
    def raw(self) -> bool:
        """Numbers reach the model as they are, missing ones as NaN (no imputation, no transform)."""
        return self.numeric_transform == RAW

    def fit(self, train: pd.DataFrame) -> TabularPreprocessor:
        """Learn imputation values, transforms and encodings from the training rows."""
        if self.numeric_columns and not self.raw:
            numeric = train[self.numeric_columns].astype(np.float64)
            stat = numeric.median() if self.impute == "median" else numeric.mean()
            self.impute_values = {c: float(stat[c]) if np.isfinite(stat[c]) else 0.0 for c in self.numeric_columns}
            filled = numeric.fillna(self.impute_values).to_numpy()
            transformer = _numeric_transformer(self.numeric_transform, len(filled))
            self.numeric_transformer = transformer.fit(self._tie_breaking(filled))
        if self.categorical_columns:
            from sklearn.preprocessing import OrdinalEncoder

            self.category_encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                                   encoded_missing_value=-1)
            self.category_encoder.fit(_category_strings(train, self.categorical_columns))
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
            x_num = (numeric if self.raw else self.numeric_transformer.transform(numeric)).astype(np.float32)
        x_cat = np.zeros((n, 0), np.int64)
        if self.categorical_columns:
            codes = self.category_encoder.transform(_category_strings(frame, self.categorical_columns))
            x_cat = (codes + 1).astype(np.int64)  # unknown/missing -1 -> RESERVED_CATEGORY
        return x_num, x_cat

    def input_schema(self) -> InputSchema:
        """Every feature; a missing number is imputed with its training statistic, a missing category gets
        the reserved index, so every column may be missing."""
        derived = self.derived or DerivedColumns({}, [])
        numeric = [c for c in self.numeric_columns if c not in derived.expressions]
        columns = {**dict.fromkeys([*numeric, *derived.sources], NUMBER),
                   **{c: BOOLEAN if c in self.boolean_columns else LABEL for c in self.categorical_columns}}
        return InputSchema(columns, frozenset(columns))

    def unseen_categories(self, frame: pd.DataFrame) -> list[Unseen]:
        """Per categorical input, the values of `frame` no training row had (encoded as `RESERVED_CATEGORY`)."""
        if self.category_encoder is None:
            return []
        found = (find_unseen(column, label_values(frame[column]), [c for c in known if not pd.isna(c)])
                 for column, known in zip(self.categorical_columns, self.category_encoder.categories_, strict=True))
        return [unseen for unseen in found if unseen is not None]

    def new_rows(self, frame: pd.DataFrame, task: TableTask) -> TabularSplit:
        """Validated new rows as a split without targets (derived columns computed as for training)."""
        if self.derived is not None:
            frame = self.derived.add_to(frame)
        with np.errstate(over="ignore"):  # refused by column just below
            x_num, x_cat = self.transform_features(frame)
        check_in_range(np.nan_to_num(x_num, nan=0.0, posinf=np.inf, neginf=-np.inf) if self.raw else x_num,
                       self.numeric_columns)
        return TabularSplit(torch.tensor(x_num, dtype=torch.float32), torch.tensor(x_cat, dtype=torch.int64), None,
                            frame.index.to_numpy())

    def labelled_rows(self, frame: pd.DataFrame, task: TableTask) -> TabularSplit:
        """Validated new rows with their target column as a split of the rows that have a target: a row without
        one (missing or infinite) is left out, as in training, and counted in the log."""
        target = self.target_column
        known = frame[target].notna() & ~frame[target].isin(INFINITE)
        if not known.any():
            raise InputError((), f"target column {target!r} has no values (all {len(frame)} rows are missing or "
                                 f"infinite); give the rows their actual {target}")
        if not known.all():
            log.warning("data: %d row(s) without a target %s are not scored", int((~known).sum()), target)
        rows = frame[known]
        task.check_new_targets(rows[target], target)
        split = self.new_rows(rows, task)
        return TabularSplit(split.x_num, split.x_cat, torch.tensor(task.encode(rows[target])), split.rows)

    @property
    def target_columns(self) -> list[str]:
        return [self.target_column]

    def metadata(self) -> dict[str, Any]:
        return {"target": self.target_column}


@dataclass(frozen=True)
class DerivedColumns:
    """Input columns computed from others by `DataFrame.eval` expressions (`data.derived_columns`), kept with
    the preprocessor so that rows sent to predict or serve are derived exactly as the training rows were;
    `sources` are the columns the expressions read, which such rows must then carry."""

    expressions: dict[str, str]
    sources: list[str]

    @classmethod
    def from_config(cls, expressions: dict[str, str], frame: pd.DataFrame, target: str) -> DerivedColumns:
        """The expressions and the frame's columns they name (bare or in backticks). A derived column has a
        name of its own (one that replaced a column of the file would leave the file's values unused, and
        ignored in every row sent to predict), and never reads the target: the target would be an input
        (a leak), which rows to predict do not have."""
        names = {}
        for name, expression in expressions.items():
            # Python (and so pandas' eval) reads a name as its NFKC form: a fullwidth p (U+FF50) in `price` reads as p.
            names[name] = {unicodedata.normalize("NFKC", quoted or bare) for quoted, bare in
                           re.findall(r"`([^`]+)`|([^\W\d]\w*)", expression)}
            if name in frame.columns:
                raise DataError(f"data.derived_columns.{name}: {name!r} is a column of the data already; give the "
                                f"derived column a name of its own, e.g. data.derived_columns.{name}_derived")
            if target in names[name]:
                raise DataError(f"data.derived_columns.{name}: {expression!r} reads the target {target!r}, which "
                                f"would make the target an input (a leak) that rows to predict do not have; "
                                f"derive it from other columns")
        read = set().union(*names.values())
        return cls(dict(expressions), [c for c in frame.columns if c in read and c not in expressions])

    def add_to(self, frame: pd.DataFrame) -> pd.DataFrame:
        require_columns(frame, self.sources, "data.derived_columns")
        frame = frame.copy()
        for name, expression in self.expressions.items():
            try:
                with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is infinite: treated as missing
                    frame[name] = pd.to_numeric(frame.eval(expression), errors="raise").astype(np.float64)
            except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; each becomes one line naming the key
                raise DataError(f"data.derived_columns.{name}: cannot compute {expression!r} ({one_line(exc)}); "
                                f"write arithmetic over numeric columns, e.g. total_rooms / households") from None
        return frame


class TabularSplit:
    """Rows of one split as whole tensors; `batch(idx)` gathers `((x_num, x_cat), y)`. New rows to predict on
    have no targets (`y` is None) and keep their index labels in `rows`."""

    def __init__(self, x_num: torch.Tensor, x_cat: torch.Tensor, y: torch.Tensor | None, rows: np.ndarray):
        self.x_num, self.x_cat, self.y, self.rows = x_num, x_cat, y, rows

    def __len__(self) -> int:
        return int(self.x_num.shape[0])

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.x_num[idx], self.x_cat[idx]

    def batch(self, idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        return self.inputs(idx), self.y[idx]

    def to(self, device: torch.device) -> TabularSplit:
        return TabularSplit(self.x_num.to(device), self.x_cat.to(device), self.y.to(device), self.rows)

    def targets(self) -> torch.Tensor:
        return self.y

    def sources(self) -> np.ndarray:
        """For each row of `table`: its sample's position among the rows (one prediction per row, in order)."""
        return np.arange(len(self))

    def table(self, task: TableTask, outputs: np.ndarray) -> pd.DataFrame:
        """One row per sample: the task's predictions (for classification with the probability of each
        class), after the sample's row in the source file and its actual target where there is one."""
        predictions = task.predictions(outputs)
        if self.y is None:
            return predictions
        known = pd.DataFrame({"row": self.rows, "actual": task.decode(self.y.cpu().numpy()).ravel()})
        return pd.concat([known, predictions], axis=1)


def build_tabular_bundle(cfg: Any, frame: pd.DataFrame) -> DataBundle:
    """Frame -> checked target -> seeded (stratified) split -> train-fit preprocessing -> tensors."""
    task = TABLE_TASKS[cfg.task].from_config(cfg)
    derived = DerivedColumns.from_config(cfg.derived_columns, frame, cfg.target_column) if cfg.derived_columns \
        else None
    if derived is not None:
        frame = derived.add_to(frame)
    prep = _preprocessor_from_config(cfg, frame, task, derived)
    frame, infinite = infinite_as_missing(frame, prep.numeric_columns)
    if not infinite.empty:
        log.warning("data: infinite values in %s are treated as missing and %s", counts_listing(infinite),
                    "kept as missing" if prep.raw else f"imputed with the training {prep.impute}")
    target = prep.target_column
    frame = _drop_missing_targets(frame, target)
    task.check_target(frame[target], target)
    parts = random_split(frame, task, target, cfg.split)
    prep.fit(frame.loc[parts["train"]])
    task = task.fit(frame.loc[parts["train"], target])
    task.check_held_out(frame.loc[np.concatenate([parts["val"], parts["test"]]), target], frame[target], target)
    splits = {name: _to_split(frame.loc[rows], prep, task) for name, rows in parts.items()}
    spec = {"n_cont_features": len(prep.numeric_columns), "cat_cardinalities": prep.cat_cardinalities,
            "d_out": task.d_out, "predicts_classes": task.predicts_classes, "x_num_train": splits["train"].x_num,
            "x_cat_train": splits["train"].x_cat, "y_train": splits["train"].y}
    return DataBundle(task, splits, spec, prep)


def _preprocessor_from_config(cfg: Any, frame: pd.DataFrame, task: TableTask,
                              derived: DerivedColumns | None) -> TabularPreprocessor:
    target = cfg.target_column
    require_columns(frame, [target], "data.target_column")
    drop = list(cfg.drop_columns)
    require_columns(frame, drop, "data.drop_columns")
    features = [c for c in frame.columns if c != target and c not in drop] if cfg.feature_columns is None \
        else list(cfg.feature_columns)
    require_columns(frame, features, "data.feature_columns")
    task.check_column(frame, target)
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
    _warn_of_doubtful_features(frame, categorical, features if cfg.feature_columns is None else [])
    return TabularPreprocessor(target, numeric, categorical, cfg.numeric_transform, cfg.impute,
                               float(cfg.quantile_noise), int(cfg.split.seed), derived,
                               boolean_columns=frozenset(c for c in categorical if is_boolean(frame[c])))


def _warn_of_doubtful_features(frame: pd.DataFrame, categorical: list[str], unasked: list[str]) -> None:
    """Categories that may be one category written differently, and inputs taken without being asked for
    (`unasked`) that look like row ids (see dl_core.checks)."""
    for column in categorical:
        for labels in near_duplicate_labels(frame[column]):
            log.warning("data: categories %s of column %r differ only in case, surrounding spaces or invisible "
                        "characters and are distinct categories; if they are one, write them alike in data.path",
                        listing(map(repr, labels)), column)
    for column in unique_per_row(frame, unasked):
        log.warning("data: column %r has a distinct value in every row and is an input; if it numbers or "
                    "names the rows, list it in data.drop_columns", column)


def _drop_missing_targets(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows without a finite target cannot be trained or scored on; they are dropped (and counted in the log)."""
    infinite = frame[target].isin(INFINITE)
    keep = frame[target].notna() & ~infinite
    if not keep.any():
        raise DataError(f"data.target_column: column {target!r} has no values (all {len(frame)} rows are missing "
                        f"or infinite); pick another target column")
    dropped = int((~keep).sum())
    if dropped:
        log.warning("data: %d row(s) without a target %s are dropped (%d missing, %d infinite)", dropped, target,
                    dropped - int(infinite.sum()), int(infinite.sum()))
    return frame[keep]


def _to_split(rows: pd.DataFrame, prep: TabularPreprocessor, task: TableTask) -> TabularSplit:
    x_num, x_cat = prep.transform_features(rows)
    y = task.encode(rows[prep.target_column])
    return TabularSplit(torch.tensor(x_num), torch.tensor(x_cat), torch.tensor(y), rows.index.to_numpy())


def _numeric_transformer(kind: str, n_rows: int) -> QuantileTransformer | StandardScaler:
    """The rtdl recipe: quantile-normal with about 30 rows per quantile (at most 1000 quantiles)."""
    from sklearn.preprocessing import QuantileTransformer, StandardScaler

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
    return np.stack([label_values(frame[c]).to_numpy(object) for c in columns], axis=1)


@dataclass
class TabularDataConfig(DataConfig):
    """One row per sample: predict `target_column` from the other columns (regression or classification).

    Attributes:
        target_column: the column to predict; rows whose target is missing (or infinite) are dropped.
        task: `regression` or `classification` (binary or multiclass); required.
        feature_columns: input columns; null takes every column but the target and `drop_columns`.
        drop_columns: columns that are not inputs although `feature_columns: null` would take them (row
            numbers, ids, a leak of the target); a listed column that is not in the data is refused. An
            integer or text column with a distinct value in every row is warned about.
        derived_columns: new numeric columns, each a pandas `DataFrame.eval` expression over the others (e.g.
            `rooms_per_household: total_rooms / households`), computed before the features are chosen, for
            training rows and for rows sent to predict or serve alike; a division by zero counts as missing.
        categorical_columns: columns encoded as categories; null takes the non-numeric ones (true/false
            columns among them: new rows must then send true or false). A mostly numeric column (at least
            90 % of its non-missing cells are numbers, but not all), or one of numbers with thousands
            separators (`"1,234"`), is refused, naming the cells and their file lines, unless it is listed
            here. Labels that differ only in case or surrounding spaces are warned about.
        numeric_transform: `quantile` (quantile-normal, as in the rtdl paper) or `standard` scaling, fit on train;
            `raw` passes numbers as they are, missing ones as NaN (no imputation), for models that read them
            so: gradient-boosted trees set it themselves (their class's `data_options`), other models refuse it.
        quantile_noise: Gaussian noise, in units of each feature's training std, added to the training
            rows only while the quantile transform is fit (seeded by `data.split.seed`), as the rtdl
            paper does: without it a feature with repeated values maps to extreme quantiles (a 0/1
            feature to about -5.2/+5.2); 0 fits on the values unchanged.
        impute: statistic of the training rows that fills missing (or infinite) numbers: `median` or `mean`
            (not used with `numeric_transform: raw`, which keeps them missing).
        target_unit: divide a regression target by this before training and reporting (e.g. 100000).
        split: the random split (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: Literal["tabular"] = "tabular"
    target_column: str | None = None
    task: Literal["regression", "classification"] | None = None
    feature_columns: list[str] | None = None
    drop_columns: list[str] = field(default_factory=list)
    derived_columns: dict[str, str] = field(default_factory=dict)
    categorical_columns: list[str] | None = None
    numeric_transform: Literal["quantile", "standard", "raw"] = "quantile"
    quantile_noise: float = 1.0e-3
    impute: Literal["median", "mean"] = "median"
    target_unit: float = 1.0
    split: TabularSplitConfig = field(default_factory=TabularSplitConfig)
    generator: TabularGeneratorConfig | None = None

    def validate(self, prefix: str) -> None:
        require(self.task is not None, f"{prefix}.task",
                f"must be one of {', '.join(TABLE_TASKS)} (got None), e.g. {prefix}.task=regression")
        require(bool(self.target_column), f"{prefix}.target_column",
                f"must name the column to predict, e.g. {prefix}.target_column=price")
        require_once(self.feature_columns, f"{prefix}.feature_columns")
        require_once(self.categorical_columns, f"{prefix}.categorical_columns")
        require_once(self.drop_columns, f"{prefix}.drop_columns")
        for key in ("feature_columns", "categorical_columns"):
            require(self.target_column not in (getattr(self, key) or []), f"{prefix}.{key}",
                    f"lists the target {self.target_column!r}, which would make it an input; leave it out")
        for name in self.drop_columns:
            for key, names in (("target_column", [self.target_column]), ("feature_columns", self.feature_columns),
                               ("categorical_columns", self.categorical_columns)):
                require(name not in (names or []), f"{prefix}.drop_columns",
                        f"{name!r} is also in {prefix}.{key}; a column plays one part, list it once")
        require(self.quantile_noise >= 0, f"{prefix}.quantile_noise", f"must be >= 0 (got {self.quantile_noise})")
        require(self.target_unit > 0, f"{prefix}.target_unit",
                f"must be > 0 (got {self.target_unit}), e.g. {prefix}.target_unit=100000 to report in $100k")
        super().validate(prefix)

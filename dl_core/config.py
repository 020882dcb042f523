"""Structured-config schema: types are checked by Hydra at compose time, ranges by `validate`.

Each YAML in a config group lists its schema first in its defaults list (e.g. `data/synthetic.yaml`
starts from `timeseries_schema`), so a wrong type or an unknown key fails during composition with
Hydra's message naming the key. Ranges and choices cannot be expressed as types; `validate` checks
them before any work starts and raises `ConfigError` naming the full key and a valid value.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dl_core.errors import ConfigError
from dl_core.sweep import register_resolvers

FILLNA_CHOICES = ("ffill", "bfill", "interpolate", "zero", "drop")
PRECISION_CHOICES = ("32", "bf16-mixed", "16-mixed", "auto")
SCHEDULER_CHOICES = ("none", "cosine", "plateau")
TABULAR_TASKS = ("regression", "classification")
NUMERIC_TRANSFORMS = ("quantile", "standard")
IMPUTE_CHOICES = ("median", "mean")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _require_minimums(section: object, prefix: str, **minimums: float) -> None:
    for name, low in minimums.items():
        value = getattr(section, name)
        _require(value >= low, f"{prefix}.{name}", f"must be >= {low} (got {value})")


def _require_once(names: Optional[List[str]], key: str) -> None:
    names = list(names or [])
    for i, name in enumerate(names):
        _require(name not in names[:i], key, f"lists {name!r} twice; name each column once")


def _check_fractions(val_fraction: float, test_fraction: float, prefix: str) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        _require(0.0 < value < 1.0, f"{prefix}.{name}", f"must be in (0, 1) (got {value}), e.g. 0.15")
    total = val_fraction + test_fraction
    _require(total < 1.0, f"{prefix}.val_fraction + test_fraction",
             f"must leave rows for training (sum is {total:.2f}); lower one of them")


@dataclass
class SplitConfig:
    """Chronological split of each series' target rows: train, then validation, then test.

    Attributes:
        val_fraction: share of each series' rows whose targets form the validation split.
        test_fraction: share of each series' last rows whose targets form the test split.
        val_start: first timestamp of the validation split (a date split; set test_start too).
        test_start: first timestamp of the test split.
        train_rows: rows of each series whose targets form the training split (a row split, as the
            fixed borders of benchmark protocols such as ETT's; set val_rows and test_rows too).
        val_rows: rows after the training rows whose targets form the validation split.
        test_rows: rows after the validation rows whose targets form the test split; later rows are unused.
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    val_start: Optional[str] = None
    test_start: Optional[str] = None
    train_rows: Optional[int] = None
    val_rows: Optional[int] = None
    test_rows: Optional[int] = None

    def validate(self, prefix: str) -> None:
        _check_fractions(self.val_fraction, self.test_fraction, prefix)
        _require((self.val_start is None) == (self.test_start is None), f"{prefix}.val_start/test_start",
                 "set both timestamps for a date split, or neither for a fraction split")
        rows = {name: getattr(self, name) for name in ("train_rows", "val_rows", "test_rows")}
        given = [v is not None for v in rows.values()]
        _require(all(given) or not any(given), f"{prefix}.train_rows/val_rows/test_rows",
                 "set all three row counts for a row split (e.g. 8640/2880/2880 for ETTh), or none")
        if all(given):
            _require(self.val_start is None, f"{prefix}.val_start",
                     "must be null when row counts are set; pick a date split or a row split")
            for name, value in rows.items():
                _require(value >= 1, f"{prefix}.{name}", f"must be >= 1 (got {value})")


@dataclass
class GeneratorConfig:
    """Parameters of the built-in synthetic time-series generator (data=synthetic).

    Attributes:
        n_series: number of independent series (entities, column `series_id`).
        length: hourly rows per series.
        n_drivers: exogenous driver columns whose lagged values move the target.
        noise: scale of the AR(1) noise added to the target.
        seed: generator seed; fixed by default so every training seed sees the same data.
    """

    n_series: int = 2
    length: int = 2000
    n_drivers: int = 2
    noise: float = 0.3
    seed: int = 0

    def validate(self, prefix: str) -> None:
        _require_minimums(self, prefix, n_series=1, length=10, n_drivers=0, noise=0)


@dataclass
class TimeSeriesDataConfig:
    """Forecasting data: sliding windows of `sequence_length` past rows predict `horizon` rows.

    Attributes:
        kind: `timeseries`; tells models and data apart (checked against the model's data kind).
        source: where rows come from: `synthetic` (built in) or `csv` (a CSV or parquet file).
        name: a readable name of the data set, used in run names.
        path: the file to read for `source: csv` (relative to the current directory).
        timestamp_column: column to sort by and report; null uses row order.
        target_column: the column to forecast, or a list of columns (one output per column); not the
            timestamp or an entity column.
        feature_columns: input columns; null takes every numeric column except keys and targets. A
            mostly numeric column (at least 90 % of its non-missing cells are numbers, but not all)
            is refused, naming the stray cells and their file lines, rather than left out.
        entity_columns: columns that tell series apart; windows never cross them.
        include_target_in_inputs: feed the target's own past to the model as an input.
        sequence_length: past rows in each input window.
        horizon: future rows predicted at once from each window.
        fillna: null refuses missing values; ffill, bfill, interpolate, zero or drop fills them per series.
            An infinite value counts as missing; a column with no value at all is refused.
        split: how each series is split in time (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: str = "timeseries"
    source: str = "csv"
    name: str = "csv"
    path: Optional[str] = None
    timestamp_column: Optional[str] = None
    target_column: Any = None
    feature_columns: Optional[List[str]] = None
    entity_columns: List[str] = field(default_factory=list)
    include_target_in_inputs: bool = True
    sequence_length: int = 30
    horizon: int = 1
    fillna: Optional[str] = None
    split: SplitConfig = field(default_factory=SplitConfig)
    generator: Optional[GeneratorConfig] = None

    def validate(self, prefix: str) -> None:
        _require(self.sequence_length >= 1, f"{prefix}.sequence_length",
                 f"must be >= 1 (got {self.sequence_length}), e.g. {prefix}.sequence_length=30")
        _require(self.horizon >= 1, f"{prefix}.horizon", f"must be >= 1 (got {self.horizon}), e.g. {prefix}.horizon=1")
        _require(self.fillna is None or self.fillna in FILLNA_CHOICES, f"{prefix}.fillna",
                 f"must be null or one of {', '.join(FILLNA_CHOICES)} (got {self.fillna!r})")
        targets = [self.target_column] if isinstance(self.target_column, str) else self.target_column
        _require(bool(targets) and all(isinstance(t, str) and t for t in targets), f"{prefix}.target_column",
                 f"must name a column (or a list of columns) to forecast, e.g. {prefix}.target_column=OT")
        for key, names in (("target_column", targets), ("feature_columns", self.feature_columns),
                           ("entity_columns", self.entity_columns)):
            _require_once(names, f"{prefix}.{key}")
        for target in targets:
            _require(target != self.timestamp_column, f"{prefix}.target_column",
                     f"{target!r} is the timestamp column ({prefix}.timestamp_column), not a value to forecast; "
                     f"name a numeric column")
            _require(target not in self.entity_columns, f"{prefix}.target_column",
                     f"{target!r} is an entity column ({prefix}.entity_columns), a key that tells series apart; "
                     f"name a numeric column")
        _require(self.source != "csv" or bool(self.path), f"{prefix}.path",
                 f"is required for a CSV data source: pass {prefix}.path=/path/to/file.csv")
        self.split.validate(f"{prefix}.split")
        if self.generator is not None:
            self.generator.validate(f"{prefix}.generator")


ETT_NAMES = ("ETTh1", "ETTh2", "ETTm1", "ETTm2")
ETT_FEATURES = ("M", "S", "MS")


@dataclass
class ETTDataConfig(TimeSeriesDataConfig):
    """The ETT benchmark: `features` picks the literature's mode (M: all channels in and out,
    S: `target_column` only, MS: all channels in, `target_column` out); without `path` the file
    is downloaded into `cache_dir` and checked against its SHA-256.

    Attributes:
        name: ETTh1, ETTh2 (hourly) or ETTm1, ETTm2 (15 minutes).
        features: M (all 7 channels in and out), S (`target_column` only) or MS (all in, target out).
        cache_dir: where a downloaded file is kept (used when `path` is null).
        sha256: expected checksum of the file; null uses the pinned one for ETTh1/ETTh2.
    """

    source: str = "ett"
    name: str = "ETTh1"
    timestamp_column: Optional[str] = "date"
    target_column: Any = "OT"
    features: str = "M"
    cache_dir: Optional[str] = None
    sha256: Optional[str] = None

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        _require(self.name in ETT_NAMES, f"{prefix}.name",
                 f"must be one of {', '.join(ETT_NAMES)} (got {self.name!r})")
        _require(self.features in ETT_FEATURES, f"{prefix}.features",
                 f"must be one of {', '.join(ETT_FEATURES)} (got {self.features!r}), e.g. {prefix}.features=M")
        _require(self.path is not None or self.cache_dir is not None, f"{prefix}.cache_dir",
                 f"is needed to download {self.name} when {prefix}.path is null")


@dataclass
class NaiveConfig:
    """Repeat the last observed value of each target over the horizon: the floor of every table."""

    _target_: str = "dl_core.models.naive.NaiveForecaster"


@dataclass
class DLinearConfig:
    """DLinear (Zeng et al. 2023): moving-average trend + seasonal remainder, one linear map each over
    the look-back window.

    Attributes:
        kernel_size: moving-average window of the trend (odd).
        individual: one pair of linear maps per channel instead of one shared pair.
    """

    _target_: str = "dl_core.models.dlinear.DLinear"
    kernel_size: int = 25
    individual: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, f"{prefix}.kernel_size",
                 f"must be an odd integer >= 1 (got {self.kernel_size}), e.g. 25")


@dataclass
class TabularSplitConfig:
    """Random split of rows, seeded; stratified by class for classification.

    Attributes:
        val_fraction: share of rows in the validation split.
        test_fraction: share of rows in the test split.
        seed: split seed, separate from the training seed so every training seed sees the same split.
        stratify: keep class ratios equal across splits (classification only).
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    stratify: bool = True

    def validate(self, prefix: str) -> None:
        _check_fractions(self.val_fraction, self.test_fraction, prefix)


@dataclass
class TabularGeneratorConfig:
    """Parameters of the built-in synthetic table (data=synthetic_tabular).

    Attributes:
        n_rows: number of rows.
        n_numeric: numeric feature columns (`num_*`, a few values missing).
        n_categorical: categorical feature columns (`cat_*`).
        n_categories: distinct values per categorical column.
        n_classes: classes of the target when `data.task=classification`.
        noise: scale of the noise on the target.
        seed: generator seed.
    """

    n_rows: int = 3000
    n_numeric: int = 6
    n_categorical: int = 2
    n_categories: int = 5
    n_classes: int = 3
    noise: float = 0.1
    seed: int = 0

    def validate(self, prefix: str) -> None:
        _require_minimums(self, prefix, n_rows=50, n_numeric=1, n_categorical=0, n_categories=2, n_classes=2,
                          noise=0)


@dataclass
class TabularDataConfig:
    """One row per sample: predict `target_column` from the other columns (regression or classification).

    Attributes:
        kind: `tabular`; tells models and data apart (checked against the model's data kind).
        source: where rows come from: `synthetic` (built in) or `csv` (a CSV or parquet file).
        name: a readable name of the data set, used in run names.
        path: the file to read for `source: csv`.
        target_column: the column to predict; rows whose target is missing (or infinite) are dropped.
        task: `regression` or `classification` (binary or multiclass).
        feature_columns: input columns; null takes every column but the target.
        categorical_columns: columns encoded as categories; null takes the non-numeric ones. A mostly
            numeric column (at least 90 % of its non-missing cells are numbers, but not all) is
            refused, naming the stray cells and their file lines, unless it is listed here.
        numeric_transform: `quantile` (quantile-normal, as in the rtdl paper) or `standard` scaling, fit on train.
        quantile_noise: Gaussian noise, in units of each feature's training std, added to the training
            rows only while the quantile transform is fit (seeded by `data.split.seed`), as the rtdl
            paper does: without it a feature with repeated values maps to extreme quantiles (a 0/1
            feature to about -5.2/+5.2); 0 fits on the values unchanged.
        impute: statistic of the training rows that fills missing (or infinite) numbers: `median` or `mean`.
        target_unit: divide a regression target by this before training and reporting (e.g. 100000).
        split: the random split (see `data.split.*`).
        generator: settings of the built-in generator (`source: synthetic` only).
    """

    kind: str = "tabular"
    source: str = "csv"
    name: str = "csv"
    path: Optional[str] = None
    target_column: Optional[str] = None
    task: Optional[str] = None
    feature_columns: Optional[List[str]] = None
    categorical_columns: Optional[List[str]] = None
    numeric_transform: str = "quantile"
    quantile_noise: float = 1.0e-3
    impute: str = "median"
    target_unit: float = 1.0
    split: TabularSplitConfig = field(default_factory=TabularSplitConfig)
    generator: Optional[TabularGeneratorConfig] = None

    def validate(self, prefix: str) -> None:
        _require(self.task in TABULAR_TASKS, f"{prefix}.task",
                 f"must be one of {', '.join(TABULAR_TASKS)} (got {self.task!r}), e.g. {prefix}.task=regression")
        _require(bool(self.target_column), f"{prefix}.target_column",
                 f"must name the column to predict, e.g. {prefix}.target_column=price")
        _require_once(self.feature_columns, f"{prefix}.feature_columns")
        _require_once(self.categorical_columns, f"{prefix}.categorical_columns")
        _require(self.target_column not in (self.categorical_columns or []), f"{prefix}.categorical_columns",
                 f"lists the target {self.target_column!r}, which would make it an input; leave it out")
        _require(self.source != "csv" or bool(self.path), f"{prefix}.path",
                 f"is required for a CSV data source: pass {prefix}.path=/path/to/file.csv")
        _require(self.numeric_transform in NUMERIC_TRANSFORMS, f"{prefix}.numeric_transform",
                 f"must be one of {', '.join(NUMERIC_TRANSFORMS)} (got {self.numeric_transform!r})")
        _require(self.quantile_noise >= 0, f"{prefix}.quantile_noise", f"must be >= 0 (got {self.quantile_noise})")
        _require(self.impute in IMPUTE_CHOICES, f"{prefix}.impute",
                 f"must be one of {', '.join(IMPUTE_CHOICES)} (got {self.impute!r})")
        _require(self.target_unit > 0, f"{prefix}.target_unit",
                 f"must be > 0 (got {self.target_unit}), e.g. {prefix}.target_unit=100000 to report in $100k")
        self.split.validate(f"{prefix}.split")
        if self.generator is not None:
            self.generator.validate(f"{prefix}.generator")


@dataclass
class FTTransformerConfig:
    """rtdl's FTTransformer arguments, under rtdl's own names (defaults: the paper's default 3-block model).

    Attributes:
        n_blocks: transformer blocks.
        d_block: token (embedding) size; a multiple of `attention_n_heads`.
        attention_n_heads: attention heads per block.
        attention_dropout: dropout on attention weights.
        ffn_d_hidden_multiplier: feed-forward hidden size as a multiple of `d_block`.
        ffn_dropout: dropout inside the feed-forward layers.
        residual_dropout: dropout on the residual branches.
    """

    _target_: str = "dl_core.models.ft_transformer.FTTransformer"
    n_blocks: int = 3
    d_block: int = 192
    attention_n_heads: int = 8
    attention_dropout: float = 0.2
    ffn_d_hidden_multiplier: float = 4 / 3
    ffn_dropout: float = 0.1
    residual_dropout: float = 0.0

    def validate(self, prefix: str) -> None:
        _require(self.n_blocks >= 1, f"{prefix}.n_blocks", f"must be >= 1 (got {self.n_blocks})")
        _require(self.attention_n_heads >= 1, f"{prefix}.attention_n_heads",
                 f"must be >= 1 (got {self.attention_n_heads})")
        _require(self.d_block >= 1 and self.d_block % self.attention_n_heads == 0, f"{prefix}.d_block",
                 f"must be a positive multiple of model.attention_n_heads={self.attention_n_heads} "
                 f"(got {self.d_block}), e.g. {prefix}.d_block=192")
        _require(self.ffn_d_hidden_multiplier > 0, f"{prefix}.ffn_d_hidden_multiplier",
                 f"must be > 0 (got {self.ffn_d_hidden_multiplier}), e.g. 1.3333")
        for name in ("attention_dropout", "ffn_dropout", "residual_dropout"):
            value = getattr(self, name)
            _require(0.0 <= value < 1.0, f"{prefix}.{name}", f"must be in [0, 1) (got {value})")


@dataclass
class LSTMConfig:
    """LSTM forecaster: the last hidden state maps to all horizon steps at once.

    Attributes:
        hidden_dim: LSTM hidden units per direction.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and before the output layer.
        bidirectional: read each window in both directions.
        instance_norm: standardise each window by its own mean and std and map the forecast back
            (RevIN); needs the targets among the inputs.
        channel_independent: forecast each target from its own past alone, all targets through one
            shared LSTM (as PatchTST and DLinear do); needs the targets among the inputs and leaves
            the other inputs unused.
    """

    _target_: str = "dl_core.models.lstm.LSTMForecaster"
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False
    instance_norm: bool = False
    channel_independent: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.hidden_dim >= 1, f"{prefix}.hidden_dim", f"must be >= 1 (got {self.hidden_dim})")
        _require(self.num_layers >= 1, f"{prefix}.num_layers", f"must be >= 1 (got {self.num_layers})")
        _require(0.0 <= self.dropout < 1.0, f"{prefix}.dropout", f"must be in [0, 1) (got {self.dropout})")


@dataclass
class TrainerConfig:
    """The training engine: optimizer, schedule, early stopping, checkpoints, resume.

    Attributes:
        max_epochs: upper bound on epochs.
        batch_size: training batch size (per process under DDP), or `auto` (largest that fits on CUDA;
            this default elsewhere).
        eval_batch_size: batch size for validation, test and prediction.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (never on biases, norms and embeddings).
        scheduler: per-epoch learning-rate schedule: `none`, `cosine` or `plateau`.
        patience: epochs without validation improvement before stopping; the best weights are restored.
        min_delta: smallest decrease of the validation loss that counts as an improvement.
        grad_clip: maximum gradient norm; null disables clipping.
        resume: false, true (continue the run in hydra.run.dir) or the path of a run dir to continue, under
            its saved config: only max_epochs, patience, checkpoint_every, progress_bar and
            hardware.threads may change.
        checkpoint_every: epochs between `last` checkpoints (an improving epoch always writes `best`).
        progress_bar: show a progress bar over epochs.
    """

    max_epochs: int = 100
    batch_size: Any = 32
    eval_batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"
    patience: int = 10
    min_delta: float = 0.0
    grad_clip: Optional[float] = 1.0
    resume: Any = False
    checkpoint_every: int = 1
    progress_bar: bool = True

    def validate(self, prefix: str) -> None:
        _require(self.max_epochs >= 1, f"{prefix}.max_epochs", f"must be >= 1 (got {self.max_epochs})")
        _require(self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 1),
                 f"{prefix}.batch_size", f"must be a positive integer or 'auto' (got {self.batch_size!r})")
        _require(self.eval_batch_size >= 1, f"{prefix}.eval_batch_size", f"must be >= 1 (got {self.eval_batch_size})")
        _require(self.lr > 0, f"{prefix}.lr", f"must be > 0 (got {self.lr}), e.g. {prefix}.lr=1e-3")
        _require(self.weight_decay >= 0, f"{prefix}.weight_decay", f"must be >= 0 (got {self.weight_decay})")
        _require(self.scheduler in SCHEDULER_CHOICES, f"{prefix}.scheduler",
                 f"must be one of {', '.join(SCHEDULER_CHOICES)} (got {self.scheduler!r})")
        _require(self.patience >= 1, f"{prefix}.patience", f"must be >= 1 (got {self.patience})")
        _require(self.min_delta >= 0, f"{prefix}.min_delta", f"must be >= 0 (got {self.min_delta})")
        _require(self.grad_clip is None or self.grad_clip > 0, f"{prefix}.grad_clip",
                 f"must be > 0 or null to disable (got {self.grad_clip})")
        _require(isinstance(self.resume, (bool, str)), f"{prefix}.resume",
                 "must be false, true (this run dir) or the path of a run dir to continue")
        _require(self.checkpoint_every >= 1, f"{prefix}.checkpoint_every",
                 f"must be >= 1 (got {self.checkpoint_every})")


@dataclass
class HardwareConfig:
    """Where and how the math runs.

    Attributes:
        device: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N` or `mps`.
        precision: `32`, `bf16-mixed`, `16-mixed` (CUDA, with a grad scaler) or `auto` (bf16 where native).
        threads: CPU threads for torch; null keeps torch's default.
        compile: wrap the model in `torch.compile`.
        distributed: DistributedDataParallel across the processes torchrun starts (hardware=ddp).
    """

    device: str = "auto"
    precision: str = "32"
    threads: Optional[int] = None
    compile: bool = False
    distributed: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
                 f"{prefix}.device", f"must be auto, cpu, cuda, cuda:N or mps (got {self.device!r})")
        _require(self.precision in PRECISION_CHOICES, f"{prefix}.precision",
                 f"must be one of {', '.join(PRECISION_CHOICES)} (got {self.precision!r})")
        _require(self.threads is None or self.threads >= 1, f"{prefix}.threads",
                 f"must be >= 1 or null for the default (got {self.threads})")


WANDB_MODE_CHOICES = ("auto", "online", "offline", "disabled")


@dataclass
class WandbLoggerConfig:
    """Weights & Biases run settings (logger=wandb).

    Attributes:
        backend: `wandb`; selects the tracker.
        project: W&B project.
        entity: W&B team or user; null uses your default.
        group: run group; null means the sweep's name for multirun jobs.
        job_type: W&B job type.
        name: run name; null builds one from model, data and run dir.
        mode: `auto` (online when logged in, else offline), `online`, `offline` or `disabled`.
        tags: W&B tags.
        log_model: upload the best checkpoint as an artifact.
    """

    backend: str = "wandb"
    project: str = "dl_core"
    entity: Optional[str] = None
    group: Optional[str] = None
    job_type: str = "train"
    name: Optional[str] = None
    mode: str = "auto"
    tags: List[str] = field(default_factory=list)
    log_model: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.mode in WANDB_MODE_CHOICES, f"{prefix}.mode",
                 f"must be one of {', '.join(WANDB_MODE_CHOICES)} (got {self.mode!r}); auto = online when "
                 "logged in (`wandb login`), else offline")
        _require(bool(self.project), f"{prefix}.project", f"must name a W&B project, e.g. {prefix}.project=dl_core")


@dataclass
class ObjectiveConfig:
    """The metric `train` returns to the sweeper, read from the run's final metrics.

    Attributes:
        metric: a key of metrics.json, e.g. `val_loss`, `val_rmse`, `val_accuracy`.
        direction: `minimize` or `maximize`, for the sweeper.
    """

    metric: str = "val_loss"
    direction: str = "minimize"

    def validate(self, prefix: str) -> None:
        _require(self.direction in ("minimize", "maximize"), f"{prefix}.direction",
                 f"must be minimize or maximize (got {self.direction!r})")


@dataclass
class NoLoggerConfig:
    """No experiment tracker (logger=none): the run directory's files only (metrics, predictions, plots)."""


@dataclass
class PathsConfig:
    """Where the repository, the shipped data and the outputs are (conf/paths/default.yaml sets them).

    Attributes:
        root_dir: the repository root (the entry points set PROJECT_ROOT to it).
        data_dir: the benchmark files shipped with the repository (data/README.md).
        log_dir: where Hydra's run and sweep directories go.
        output_dir: this run's directory (Hydra's run dir; a resumed run's own directory).
    """

    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class TrainConfig:
    """train.py: one option of each config group, plus the run's seed and objective.

    Attributes:
        data: the data set and how it is windowed or split (conf/data/).
        model: the model and its arguments (conf/model/).
        trainer: the training engine (conf/trainer/).
        hardware: device, precision and threads (conf/hardware/).
        logger: experiment tracking besides the run files (conf/logger/).
        paths: where data and outputs live (conf/paths/).
        task_name: names the output folder: outputs/<task_name>/runs/<timestamp>.
        seed: seed of torch, numpy and random; the same seed and config give the same metrics on CPU.
        tags: labels for the run (given to W&B).
        objective: the metric returned to a sweeper (see `objective.*`).
    """

    data: Any = MISSING
    model: Any = MISSING
    trainer: Any = MISSING
    hardware: Any = MISSING
    logger: Any = MISSING
    paths: Any = MISSING
    task_name: str = MISSING
    seed: int = MISSING
    tags: List[str] = MISSING
    objective: ObjectiveConfig = MISSING


@dataclass
class PredictDataConfig:
    """The rows to predict on.

    Attributes:
        path: CSV or parquet file with the run's input columns.
    """

    path: Optional[str] = None


@dataclass
class PredictConfig:
    """predict.py: a trained run directory and a file of new rows.

    Attributes:
        run_dir: the trained run (its checkpoints/best.ckpt is used).
        data: the rows to predict on (see `data.path`).
        output: where to write predictions; null writes `<run_dir>/predictions/<file stem>.csv`.
        threads: CPU threads for torch; null keeps torch's default.
    """

    run_dir: Optional[str] = None
    data: PredictDataConfig = field(default_factory=PredictDataConfig)
    output: Optional[str] = None
    threads: Optional[int] = None

    def validate(self) -> None:
        _require(bool(self.run_dir), "run_dir", "is required: pass run_dir=outputs/train/runs/<timestamp>")
        _require(bool(self.data.path), "data.path", "is required: pass data.path=/path/to/new_rows.csv")
        _require(self.threads is None or self.threads >= 1, "threads", f"must be >= 1 or null (got {self.threads})")


@dataclass
class ServeConfig:
    """serve.py: a trained run directory behind an HTTP address.

    Attributes:
        run_dir: the trained run (its checkpoints/best.ckpt is used).
        host: address to listen on.
        port: port to listen on.
        max_rows: most rows accepted in one request.
        threads: CPU threads for torch; null keeps torch's default.
    """

    run_dir: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_rows: int = 10000
    threads: Optional[int] = None

    def validate(self) -> None:
        _require(bool(self.run_dir), "run_dir", "is required: pass run_dir=outputs/train/runs/<timestamp>")
        _require(0 <= self.port <= 65535, "port", f"must be in 0..65535 (got {self.port}), e.g. port=8000")
        _require(self.max_rows >= 1, "max_rows", f"must be >= 1 (got {self.max_rows})")
        _require(self.threads is None or self.threads >= 1, "threads", f"must be >= 1 or null (got {self.threads})")


def register_configs() -> None:
    """Put the schemas where the YAML defaults lists look for them (`<group>/<name>_schema`)."""
    register_resolvers()
    store = ConfigStore.instance()
    store.store(group="data", name="timeseries_schema", node=TimeSeriesDataConfig)
    store.store(group="data", name="tabular_schema", node=TabularDataConfig)
    store.store(group="model", name="lstm_schema", node=LSTMConfig)
    store.store(group="model", name="ft_transformer_schema", node=FTTransformerConfig)
    store.store(group="data", name="ett_schema", node=ETTDataConfig)
    store.store(group="model", name="naive_schema", node=NaiveConfig)
    store.store(group="model", name="dlinear_schema", node=DLinearConfig)
    store.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    store.store(group="hardware", name="hardware_schema", node=HardwareConfig)
    store.store(group="logger", name="wandb_schema", node=WandbLoggerConfig)
    store.store(group="logger", name="none_schema", node=NoLoggerConfig)
    store.store(group="paths", name="paths_schema", node=PathsConfig)
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="predict_schema", node=PredictConfig)
    store.store(name="serve_schema", node=ServeConfig)
    _register_slurm_launcher_schema(store)


def _register_slurm_launcher_schema(store: ConfigStore) -> None:
    """The `cluster` extra's SLURM launcher schema, when installed, under this project's naming rule."""
    try:
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    except ImportError:
        return
    store.store(group="hydra/launcher", name="submitit_slurm_schema", node=SlurmQueueConf)


def validate(cfg: DictConfig) -> None:
    """Check every key, range and choice in the composed config; raise `ConfigError` on the first bad one."""
    check_known_keys(cfg)
    for group in ("data", "model", "trainer", "hardware", "logger", "objective"):
        node = cfg.get(group)
        if node is None:
            raise ConfigError(f"{group}: no config selected; pass e.g. {group}=<name> (see conf/{group}/)")
        try:
            section = OmegaConf.to_object(node)
        except OmegaConfBaseException as err:  # e.g. a mandatory value left at ???
            raise ConfigError(f"{err.full_key}: {str(err).splitlines()[0]}") from None
        checker = getattr(section, "validate", None)
        if checker is not None:
            checker(group)


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse keys no schema declares. Hydra refuses `trainer.foo=1`, but `+trainer.foo=1` (the form
    its own error suggests) and `++` add the key past struct mode, and `OmegaConf.to_object` would
    then drop it without a word: the run would silently ignore what the user asked for."""
    unknown = unknown_keys(cfg)
    if len(unknown) == 1:
        key, schema = unknown[0]
        parent, _, name = key.rpartition(".")
        close = difflib.get_close_matches(name, [f.name for f in dataclasses.fields(schema)], n=1)
        hint = f"; did you mean {'.'.join(filter(None, (parent, close[0])))}?" if close else ""
        raise ConfigError(f"{key}: not a config key{hint} (docs/config.md lists them)")
    if unknown:
        raise ConfigError(f"{', '.join(key for key, _ in unknown)}: not config keys (docs/config.md lists them)")


def unknown_keys(node: DictConfig, prefix: str = "") -> list[tuple[str, type]]:
    """(full key, schema of its parent) for every key the schemas of `node` and its typed sub-nodes
    do not declare. Hydra's own `hydra` node is Hydra's to check."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return []
    declared = {f.name for f in dataclasses.fields(schema)}
    found: list[tuple[str, type]] = []
    for key, value in node.items_ex(resolve=False):
        full = f"{prefix}{key}"
        if full == "hydra":
            continue
        if key not in declared:
            found.append((full, schema))
        elif isinstance(value, DictConfig):
            found += unknown_keys(value, f"{full}.")
    return found

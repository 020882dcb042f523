"""Structured-config schema: types are checked by Hydra at compose time, ranges by `validate`.

Each YAML in a config group lists its schema first in its defaults list (e.g. `data/synthetic.yaml`
starts from `timeseries_schema`), so a wrong type or an unknown key fails during composition with
Hydra's message naming the key. Ranges and choices cannot be expressed as types; `validate` checks
them before any work starts and raises `ConfigError` naming the full key and a valid value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError

FILLNA_CHOICES = ("ffill", "bfill", "interpolate", "zero", "drop")
PRECISION_CHOICES = ("32", "bf16-mixed", "16-mixed", "auto")
SCHEDULER_CHOICES = ("none", "cosine", "plateau")


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


@dataclass
class SplitConfig:
    """Chronological split: by fractions of each series, by timestamps when `*_start` are set, or by
    row counts when `*_rows` are set (the fixed borders of benchmark protocols such as ETT's)."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15
    val_start: Optional[str] = None
    test_start: Optional[str] = None
    train_rows: Optional[int] = None
    val_rows: Optional[int] = None
    test_rows: Optional[int] = None

    def validate(self, prefix: str) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0.0 < value < 1.0, f"{prefix}.{name}", f"must be in (0, 1) (got {value}), e.g. 0.15")
        total = self.val_fraction + self.test_fraction
        _require(total < 1.0, f"{prefix}.val_fraction + test_fraction",
                 f"must leave rows for training (sum is {total:.2f}); lower one of them")
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
    """Parameters of the built-in synthetic time-series generator."""

    n_series: int = 2
    length: int = 2000
    n_drivers: int = 2
    noise: float = 0.3
    seed: int = 0

    def validate(self, prefix: str) -> None:
        _require(self.n_series >= 1, f"{prefix}.n_series", f"must be >= 1 (got {self.n_series})")
        _require(self.length >= 10, f"{prefix}.length", f"must be >= 10 (got {self.length})")
        _require(self.n_drivers >= 0, f"{prefix}.n_drivers", f"must be >= 0 (got {self.n_drivers})")
        _require(self.noise >= 0, f"{prefix}.noise", f"must be >= 0 (got {self.noise})")


@dataclass
class TimeSeriesDataConfig:
    """Forecasting data: sliding windows of `sequence_length` past rows predict `horizon` rows."""

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
    is downloaded into `cache_dir` and checked against its SHA-256."""

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
    _target_: str = "dl_core.models.naive.NaiveForecaster"


@dataclass
class DLinearConfig:
    _target_: str = "dl_core.models.dlinear.DLinear"
    kernel_size: int = 25
    individual: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, f"{prefix}.kernel_size",
                 f"must be an odd integer >= 1 (got {self.kernel_size}), e.g. 25")


@dataclass
class LSTMConfig:
    _target_: str = "dl_core.models.lstm.LSTMForecaster"
    hidden_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.hidden_dim >= 1, f"{prefix}.hidden_dim", f"must be >= 1 (got {self.hidden_dim})")
        _require(self.num_layers >= 1, f"{prefix}.num_layers", f"must be >= 1 (got {self.num_layers})")
        _require(0.0 <= self.dropout < 1.0, f"{prefix}.dropout", f"must be in [0, 1) (got {self.dropout})")


@dataclass
class TrainerConfig:
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
    device: str = "auto"
    precision: str = "32"
    threads: Optional[int] = None
    compile: bool = False

    def validate(self, prefix: str) -> None:
        _require(self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
                 f"{prefix}.device", f"must be auto, cpu, cuda, cuda:N or mps (got {self.device!r})")
        _require(self.precision in PRECISION_CHOICES, f"{prefix}.precision",
                 f"must be one of {', '.join(PRECISION_CHOICES)} (got {self.precision!r})")
        _require(self.threads is None or self.threads >= 1, f"{prefix}.threads",
                 f"must be >= 1 or null for the default (got {self.threads})")


@dataclass
class ObjectiveConfig:
    """The metric `train` returns to the sweeper, read from the run's final metrics."""

    metric: str = "val_loss"
    direction: str = "minimize"

    def validate(self, prefix: str) -> None:
        _require(self.direction in ("minimize", "maximize"), f"{prefix}.direction",
                 f"must be minimize or maximize (got {self.direction!r})")


def register_configs() -> None:
    """Put the schemas where the YAML defaults lists look for them (`<group>/<name>_schema`)."""
    store = ConfigStore.instance()
    store.store(group="data", name="timeseries_schema", node=TimeSeriesDataConfig)
    store.store(group="data", name="ett_schema", node=ETTDataConfig)
    store.store(group="model", name="lstm_schema", node=LSTMConfig)
    store.store(group="model", name="naive_schema", node=NaiveConfig)
    store.store(group="model", name="dlinear_schema", node=DLinearConfig)
    store.store(group="trainer", name="trainer_schema", node=TrainerConfig)
    store.store(group="hardware", name="hardware_schema", node=HardwareConfig)


def validate(cfg: DictConfig) -> None:
    """Check every range and choice in the composed config; raise `ConfigError` on the first bad key."""
    for group in ("data", "model", "trainer", "hardware"):
        node = cfg.get(group)
        if node is None:
            raise ConfigError(f"{group}: no config selected; pass e.g. {group}=<name> (see conf/{group}/)")
        section = OmegaConf.to_object(node)
        checker = getattr(section, "validate", None)
        if checker is not None:
            checker(group)
    ObjectiveConfig(**OmegaConf.to_container(cfg.objective)).validate("objective")

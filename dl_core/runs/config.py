"""The config's top level: the schema of conf/train.yaml, the registration of every schema, and `validate`.

Each group's schema lives with the code that reads it (the data loaders' in `dl_core/data/`,
`engine/schema.py`, `tracking/schema.py`, `serving/schema.py`, each model's module under
`dl_core/models/`, the sweeper's in `dl_core/sweep/schema.py`). Its field defaults are the one source of
every default; a YAML option lists its schema first in its defaults list (`defaults: [lstm_schema,
_self_]`) and states only what it changes. Hydra checks types, choices (`Literal`) and unknown keys when
it composes the config, naming the key; `validate`, the one check every entry runs, checks ranges and
combinations before any work starts and raises `ConfigError` naming the full key and a valid value.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from dl_core import data
from dl_core.engine import schema as engine_schema
from dl_core.errors import ConfigError, require
from dl_core.models.build import schemas as model_schemas
from dl_core.serving import schema as serving_schema
from dl_core.sweep import grids
from dl_core.sweep.plugin import sweep_batch
from dl_core.sweep.trials import TrialConfig
from dl_core.tracking import schema as tracking_schema
from dl_core.tracking.run_index import run_label

# The groups of train.yaml's defaults list that must each have an option.
GROUPS = ("data", "model", "trainer", "hardware", "logger")
ROOT = Path(__file__).resolve().parents[2]  # the folder holding dl_core/: the repository of a checkout
MAX_SEED = 2**32 - 1  # numpy's generators take seeds in [0, 2**32 - 1]


@dataclass
class ObjectiveConfig:
    """The metric `train` returns to the sweeper, read from the run's final metrics.

    Attributes:
        metric: a key of metrics.json, e.g. `val_loss`, `val_rmse`, `val_accuracy`.
        direction: `minimize` or `maximize`, for the sweeper.
    """

    metric: str = "val_loss"
    direction: Literal["minimize", "maximize"] = "minimize"


@dataclass
class PathsConfig:
    """Where the repository, the shipped data and the outputs are.

    Attributes:
        root_dir: the repository root: PROJECT_ROOT where set, else the folder holding dl_core/.
        data_dir: the benchmark files shipped with the repository (data/README.md).
        log_dir: where Hydra's run and sweep directories go.
        output_dir: this run's directory (Hydra's run dir; a resumed run's own directory).
    """

    root_dir: str = "${project_root:}"
    data_dir: str = "${paths.root_dir}/data"
    log_dir: str = "${paths.root_dir}/outputs"
    output_dir: str = "${hydra:runtime.output_dir}"


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
        seed: seed of torch, numpy and random, in [0, 2**32 - 1] (numpy's range); the same seed and config
            give the same metrics on CPU.
        tags: labels for the run (given to W&B).
        objective: the metric returned to a sweeper (see `objective.*`).
        trial: the Optuna trial this run reports to, set by the sweeper (see `trial.*`).
        reuse: when a run of the same config (the same fingerprint in run.json: the composed config less where it
            writes, its name, tracking, display, threads) finished under `paths.log_dir`, return its objective
            and point this run's directory at it instead of training (the suites of conf/benchmark/ set it).
        benchmark: the table a suite of conf/benchmark/ renders from its runs (its rows, the metric it chooses on,
            the published figures; read by `python -m dl_core.runs.benchmark`); it changes nothing a run computes.
    """

    data: Any = MISSING
    model: Any = MISSING
    trainer: Any = MISSING
    hardware: Any = MISSING
    logger: Any = MISSING
    paths: Any = MISSING
    task_name: str = "train"
    seed: int = 42
    tags: list[str] = field(default_factory=list)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)
    reuse: bool = False
    benchmark: Any = None

    def validate(self, prefix: str) -> None:
        for group in GROUPS:
            require(getattr(self, group) is not None, group,
                    f"no config selected; pass e.g. {group}=<name> (see conf/{group}/)")
        require(0 <= self.seed <= MAX_SEED, "seed", f"must be in [0, {MAX_SEED}] (got {self.seed})")
        check_task_name(self.task_name)


def check_task_name(name: str) -> None:
    """`task_name` names a folder under `paths.log_dir` (outputs/<task_name>/runs/...): an empty one, an absolute
    path or one that climbs out with `..` would put runs anywhere, e.g. into the repository itself."""
    path = PurePath(name)
    require(bool(name.strip()) and not path.is_absolute() and ".." not in path.parts, "task_name",
            f"must name a folder under paths.log_dir (got {name!r}), e.g. task_name=my_experiment")


@functools.cache
def register_configs() -> None:
    """Put every schema where the YAML defaults lists look for it (`<group>/<name>_schema`), and register the
    config's resolvers: once per process, before the first config is composed (cli.run, api.compose)."""
    register_resolvers()
    store = ConfigStore.instance()
    found = {"train_schema": TrainConfig, "paths/paths_schema": PathsConfig, **serving_schema.SCHEMAS,
             **data.schemas(), **engine_schema.SCHEMAS, **tracking_schema.SCHEMAS, **model_schemas()}
    for path, node in found.items():
        group, _, name = path.rpartition("/")
        store.store(group=group or None, name=name, node=node)
    _register_slurm_launcher_schema(store)
    _register_sweeper_schema(store)
    store.store(group="hydra/sweeper", name="grids", node=grids.register())  # the suites' (conf/benchmark/)


def _register_sweeper_schema(store: ConfigStore) -> None:
    """The `sweep` extra's Optuna sweeper with pruning (`hydra/sweeper=optuna_pruning`), when installed."""
    try:
        from dl_core.sweep.schema import OptunaPruningSweeperConf
    except ImportError:
        return
    store.store(group="hydra/sweeper", name="optuna_pruning", node=OptunaPruningSweeperConf)


def _register_slurm_launcher_schema(store: ConfigStore) -> None:
    """The `cluster` extra's SLURM launcher schema, when installed, under this project's naming rule."""
    try:
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    except ImportError:
        return
    store.store(group="hydra/launcher", name="submitit_slurm_schema", node=SlurmQueueConf)


def register_resolvers() -> None:
    """The config's own resolvers: `${project_root:}` (paths.root_dir), `${sweep_batch:...}` (conf/hparams_search),
    `${run_label:}` (run directory names, conf/hydra/default.yaml)."""
    OmegaConf.register_resolver("project_root", project_root, replace=True)
    OmegaConf.register_resolver("run_label", run_label, replace=True)
    OmegaConf.register_resolver("sweep_batch", sweep_batch, replace=True)


def project_root() -> str:
    """The repository: PROJECT_ROOT where set (to run this package on another checkout's data and outputs),
    else the folder holding dl_core/, the checkout the entry point was started from."""
    return os.environ.get("PROJECT_ROOT") or str(ROOT)


def validate(cfg: DictConfig) -> None:
    """The one check of an entry's config (train.py, predict.py and serve.py through `cli.run_job`, the Python
    API in `api.run`), before any work: keys no schema declares, then every section's ranges and combinations,
    its schema's own `validate(prefix)` and those of the sections nested in it; raises `ConfigError` naming the
    full key on the first bad one."""
    check_known_keys(cfg)
    if "hydra" in cfg:  # Hydra's own node (a config composed as a multirun sees it) is Hydra's to check
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    try:
        config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:  # e.g. a mandatory value left at ???
        raise ConfigError(f"{err.full_key}: {str(err).splitlines()[0]}") from None
    check_ranges(config, "")


def check_ranges(section: object, prefix: str) -> None:
    """A schema section's own `validate(prefix)`, then each section nested in it (e.g. `data.split`)."""
    checker = getattr(section, "validate", None)
    if checker is not None:
        checker(prefix)
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{prefix}.{f.name}" if prefix else f.name)


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse keys no schema declares. Hydra refuses `trainer.foo=1`, but `+trainer.foo=1` (the form
    its own error suggests) and `++` add the key past struct mode, and `OmegaConf.to_object` would
    then drop it without a word: the run would silently ignore what the user asked for."""
    unknown = unknown_keys(cfg)
    if len(unknown) == 1:
        key, schema = unknown[0]
        parent, _, name = key.rpartition(".")
        close = difflib.get_close_matches(name, [f.name for f in dataclasses.fields(schema)], n=1)
        hint = models_having(schema, name) or (f"; did you mean {'.'.join(filter(None, (parent, close[0])))}?"
                                               if close else "")
        raise ConfigError(f"{key}: not a config key{hint} (docs/config.md lists them)")
    if unknown:
        raise ConfigError(f"{', '.join(key for key, _ in unknown)}: not config keys (docs/config.md lists them)")


def models_having(schema: type | None, name: str) -> str:
    """Where a model's schema lacks a key that other models' have (`model.quantiles` on gradient-boosted trees,
    which predict points only): the models that take it, so that the refusal says where the key belongs;
    empty for any other schema or key."""
    models = {path.split("/")[-1].removesuffix("_schema"): found for path, found in model_schemas().items()}
    chosen = [model for model, found in models.items() if found is schema]
    having = sorted(model for model, found in models.items() if name in {f.name for f in dataclasses.fields(found)})
    if not chosen or not having:
        return ""
    return f"; model={chosen[0]} has no {name}, the models that do: {', '.join(having)}"


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

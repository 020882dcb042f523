"""Python API for notebooks and scripts: the same composition and run as `train.py`, without a CLI.

`compose("model=lstm", "trainer.max_epochs=5")` builds the config exactly as the command line would
(same config tree, same schema), with a fresh run directory under `outputs/api/`, and `run(cfg)`
trains it and returns the run directory with its metrics; `run(cfg, data=frame)` trains on a DataFrame.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from dl_core.data.frames import FRAMES_DIR, keep_frame
from dl_core.errors import ConfigError
from dl_core.runs.config import project_root, register_configs, validate
from dl_core.runs.pipeline import train


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    objective: float
    metrics: dict[str, Any]


def compose(*overrides: str, run_dir: str | Path | None = None, with_hydra: bool = False) -> DictConfig:
    """Compose `conf/train.yaml` with command-line style overrides; the run dir is fresh unless given.

    `with_hydra` keeps the `hydra` node (sweeper, launcher, callbacks), as a multirun sees it.
    """
    root = Path(project_root())
    if run_dir is None:
        run_dir = root / "outputs" / "api" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(root / "conf")):
            return hydra_compose("train", overrides=[f"paths.output_dir={Path(run_dir).resolve()}", *overrides],
                                 return_hydra_config=with_hydra)
    finally:
        GlobalHydra.instance().clear()


def run(cfg: DictConfig, data: pd.DataFrame | None = None) -> RunResult:
    """Check and train one composed config; return where it wrote and what it measured.

    `data`: the rows to train on as a DataFrame, in place of `data.path` (compose with `data=csv_tabular` or
    `data=csv_timeseries`). It is kept as a parquet file under `<paths.log_dir>/frames/` and the run reads it
    from there as its `data.path`: a file's checks and errors, and a config that names the run's data.
    """
    if data is not None:
        cfg = with_frame(cfg, data)
    validate(cfg)
    objective = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    return RunResult(run_dir, objective, json.loads((run_dir / "metrics.json").read_text()))


def with_frame(cfg: DictConfig, frame: pd.DataFrame) -> DictConfig:
    """A copy of `cfg` reading its rows from the kept copy of `frame`; a config whose data reads no file, or
    names one already, is refused before anything is written."""
    if cfg.data.source != "csv":
        raise ConfigError(f"data: a DataFrame takes the place of data.path, and this config's data (source "
                          f"{cfg.data.source}) reads no file; compose with data=csv_tabular or data=csv_timeseries")
    if cfg.data.path:
        raise ConfigError(f"data.path: set ({cfg.data.path}) and a DataFrame given as well; pass one of them")
    path = keep_frame(frame, Path(cfg.paths.log_dir).expanduser().absolute() / FRAMES_DIR)
    cfg = copy.deepcopy(cfg)
    cfg.data.path = str(path)
    return cfg

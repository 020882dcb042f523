"""Python API for notebooks and scripts: the same composition and run as `train.py`, without a CLI.

`compose("model=lstm", "trainer.max_epochs=5")` builds the config exactly as the command line would
(same config tree, same schema), with a fresh run directory under `outputs/api/`, and `run(cfg)`
trains it and returns the run directory with its metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

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


def run(cfg: DictConfig) -> RunResult:
    """Check and train one composed config; return where it wrote and what it measured."""
    validate(cfg)
    objective = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    return RunResult(run_dir, objective, json.loads((run_dir / "metrics.json").read_text()))

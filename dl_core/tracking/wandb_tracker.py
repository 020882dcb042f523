"""Weights & Biases tracking: one W&B run per training run, fed by the engine like the file tracker.

`wandb` is imported only inside `wandb_run`, so runs without `logger=wandb` never load it. The run is
a context manager: it is finished when training ends and marked failed when training raises, so the
jobs of a multirun never write into each other's run. Its id is kept in the run dir, and a resumed
training run continues the same W&B run.
"""

from __future__ import annotations

import netrc
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError

RUN_ID_FILE = "wandb_run_id.txt"


class WandbTracker:
    """Logs each epoch's row with the epoch as W&B step, then the final metrics as the run summary."""

    def __init__(self, run: Any, run_dir: Path, log_model: bool):
        self.run, self.run_dir, self.log_model = run, run_dir, log_model

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        row = history[-1]
        self.run.log(dict(row), step=int(row["epoch"]))

    def log_summary(self, metrics: dict[str, Any]) -> None:
        self.run.summary.update({key: value for key, value in metrics.items()
                                 if isinstance(value, (bool, int, float, str))})
        best = self.run_dir / "checkpoints" / "best.ckpt"
        if self.log_model and best.exists():
            import wandb

            artifact = wandb.Artifact(f"model-{self.run.id}", type="model",
                                      metadata={"best_epoch": metrics.get("best_epoch"),
                                                "val_loss": metrics.get("val_loss")})
            artifact.add_file(str(best))
            self.run.log_artifact(artifact, aliases=["best"])


@contextmanager
def wandb_run(cfg: DictConfig, run_dir: Path) -> Iterator[WandbTracker]:
    """Start (or, for a resumed run dir, continue) the W&B run; finish it however the block ends."""
    import wandb

    settings = cfg.logger
    id_file = run_dir / RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else None
    run = wandb.init(
        project=settings.project, entity=settings.entity, group=run_group(cfg), job_type=settings.job_type,
        name=settings.name or run_name(cfg, run_dir), tags=list(settings.tags), mode=resolve_mode(settings.mode),
        dir=str(run_dir), config=OmegaConf.to_container(cfg, resolve=True), id=run_id,
        resume="allow" if run_id else None,
    )
    if not run.disabled:
        id_file.write_text(run.id + "\n")
    with run:
        yield WandbTracker(run, run_dir, settings.log_model)


def resolve_mode(mode: str) -> str | None:
    """`auto`: WANDB_MODE from the environment if set, else online when logged in, else offline.

    An explicit `online` without credentials is refused up front: wandb would otherwise prompt for a
    key, which hangs a sweep job that has no terminal.
    """
    if mode == "online" and not logged_in():
        raise ConfigError("logger.mode: online needs W&B credentials; run `wandb login` (or set WANDB_API_KEY), "
                          "or use logger.mode=offline and `wandb sync` later")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if logged_in() else "offline"


def logged_in() -> bool:
    """Whether wandb has a key without asking: WANDB_API_KEY, or the netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def run_group(cfg: DictConfig) -> str | None:
    """`logger.group` if set; for a multirun job the study name (or the sweep dir's name)."""
    if cfg.logger.group:
        return str(cfg.logger.group)
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra = HydraConfig.get()
    return str(hydra.sweeper.get("study_name") or Path(hydra.sweep.dir).name)


def run_name(cfg: DictConfig, run_dir: Path) -> str:
    """Readable and unique: model class, data name, run dir name (a time stamp, plus job number in sweeps)."""
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    return f"{model}-{cfg.data.name}-{run_dir.name}"

"""Run tracking: plain files always, experiment trackers (W&B, TensorBoard, MLflow) when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from dl_core.tracking.files import FileTracker
from dl_core.tracking.schema import BACKENDS

if TYPE_CHECKING:
    from dl_core.engine.loop import RunTracker  # what the engine feeds a tracker: the protocol is the engine's


@contextmanager
def build_trackers(cfg: DictConfig, run_dir: Path) -> Iterator[list[RunTracker]]:
    """The run files, plus each tracker the logger config turns on (`logger=[wandb,mlflow]`: both); each is
    closed when the block ends, also on error. Each tracker's library is imported only when it is used."""
    with ExitStack() as stack:
        trackers: list[RunTracker] = [FileTracker(run_dir)]
        backends = enabled_backends(cfg.logger)
        if "wandb" in backends:
            from dl_core.tracking.wandb_tracker import wandb_run

            trackers.append(stack.enter_context(wandb_run(cfg, run_dir)))
        if "tensorboard" in backends:
            from dl_core.tracking.tensorboard_tracker import tensorboard_run

            trackers.append(stack.enter_context(tensorboard_run(cfg, run_dir)))
        if "mlflow" in backends:
            from dl_core.tracking.mlflow_tracker import mlflow_run

            trackers.append(stack.enter_context(mlflow_run(cfg, run_dir)))
        yield trackers


def enabled_backends(logger: Any) -> list[str]:
    """The trackers a logger config turns on. A run saved before several could log at once names its one
    tracker in `logger.backend` (`wandb`): resuming it keeps logging there."""
    if "backend" in logger:
        return [str(logger.backend)]
    return [name for name in BACKENDS if logger.get(name)]


__all__ = ["FileTracker", "build_trackers"]

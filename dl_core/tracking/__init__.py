"""Run tracking: plain files always, experiment trackers (W&B) when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from dl_core.tracking.files import FileTracker

if TYPE_CHECKING:
    from dl_core.engine.loop import RunTracker  # what the engine feeds a tracker: the protocol is the engine's

@contextmanager
def build_trackers(cfg: DictConfig, run_dir: Path) -> Iterator[list[RunTracker]]:
    """The run files, plus W&B with `logger=wandb`; each tracker is closed when the block ends, also on error."""
    with ExitStack() as stack:
        trackers: list[RunTracker] = [FileTracker(run_dir)]
        if cfg.logger.get("backend") == "wandb":
            from dl_core.tracking.wandb_tracker import wandb_run

            trackers.append(stack.enter_context(wandb_run(cfg, run_dir)))
        yield trackers


__all__ = ["FileTracker", "build_trackers"]

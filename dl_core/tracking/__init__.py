"""Run tracking: plain files always, experiment trackers (W&B) when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig

from dl_core.tracking.files import FileTracker


class RunTracker(Protocol):
    """What a run feeds its trackers: every epoch's history (the engine), then the final metrics."""

    def log_epoch(self, history: list[dict[str, float]]) -> None: ...

    def log_summary(self, metrics: dict[str, Any]) -> None: ...


@contextmanager
def build_trackers(cfg: DictConfig, run_dir: Path) -> Iterator[list[RunTracker]]:
    """The run files, plus W&B with `logger=wandb`; each tracker is closed when the block ends, also on error."""
    with ExitStack() as stack:
        trackers: list[RunTracker] = [FileTracker(run_dir)]
        if cfg.logger.get("backend") == "wandb":
            from dl_core.tracking.wandb_tracker import wandb_run

            trackers.append(stack.enter_context(wandb_run(cfg, run_dir)))
        yield trackers


__all__ = ["FileTracker", "RunTracker", "build_trackers"]

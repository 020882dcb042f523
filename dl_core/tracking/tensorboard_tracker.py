"""TensorBoard tracking: event files in `<run dir>/tensorboard`, fed by the engine like the file tracker.

Local files only, so nothing can be unreachable. `tensorboard --logdir <run dir>` shows one run; a sweep
dir holds each job's run dir, so `tensorboard --logdir <sweep dir>` shows the jobs of a multirun side by
side, and its HParams tab compares their configs and final metrics. The writer (torch's, which needs the
`tensorboard` package) is imported only inside `tensorboard_run`. There is no artifact store: the
checkpoints stay in the run dir, beside the event files.

A resumed run writes a new event file into the same directory, from the first epoch it trains: the
writer's `purge_step` tells TensorBoard to drop what the interrupted process logged from that epoch on
(with `trainer.checkpoint_every` > 1 it logged epochs past its last checkpoint, which the resume trains again).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dl_core.tracking.shared import NewEpochs, final_metrics, flat_config, plot_files, run_group, run_name

EVENTS_DIR = "tensorboard"


class TensorBoardTracker:
    """Each epoch's (or boosting round's) losses and learning rate with the epoch as step; then the final
    metrics (metrics.json's numbers, the best validation loss as `best_val_loss` beside the `val_loss`
    curve), the plots as images, and the config with the final metrics for the HParams tab.

    A new run's writer opens at once; a resumed run's at its first new epoch, purging from there."""

    def __init__(self, events: Path, cfg: DictConfig, run_dir: Path, resumed: bool):
        self.events, self.cfg, self.run_dir = events, cfg, run_dir
        self.new_epochs = NewEpochs(None if resumed else 0)
        self.writer: Any = None if resumed else self.open(None)

    def open(self, purge_step: int | None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.events), purge_step=purge_step)

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        rows = self.new_epochs(history)
        if self.writer is None:
            self.writer = self.open(int(rows[0]["epoch"]))
        for row in rows:
            for name, value in row.items():
                if name != "epoch":
                    self.writer.add_scalar(name, value, int(row["epoch"]))
        self.writer.flush()

    def log_summary(self, metrics: dict[str, Any]) -> None:
        import matplotlib.image
        from torch.utils.tensorboard.summary import hparams

        step = int(metrics.get("epochs", 0))
        if self.writer is None:  # a finished run resumed without more epochs to train
            self.writer = self.open(None)
        final = final_metrics(metrics)
        for name, value in final.items():
            self.writer.add_scalar(name, value, step)
        for path in plot_files(self.run_dir):
            self.writer.add_image(path.stem, matplotlib.image.imread(path)[..., :3], step, dataformats="HWC")
        for summary in hparams(flat_config(self.cfg), final):
            self.writer.file_writer.add_summary(summary, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextmanager
def tensorboard_run(cfg: DictConfig, run_dir: Path) -> Iterator[TensorBoardTracker]:
    """Event files in `<run dir>/tensorboard` (a resumed run's continue the same directory), a new run's
    starting with its name, group, tags and resolved config as text; closed however the block ends."""
    events = run_dir / EVENTS_DIR
    resumed = events.is_dir() and any(events.iterdir())
    tracker = TensorBoardTracker(events, cfg, run_dir, resumed)
    try:
        if not resumed:
            about = {"name": run_name(cfg, run_dir), "group": run_group(cfg), "tags": list(cfg.logger.tags)}
            tracker.writer.add_text("run", "\n".join(f"- {key}: {value}" for key, value in about.items() if value))
            tracker.writer.add_text("config", "```yaml\n" + OmegaConf.to_yaml(cfg, resolve=True) + "```")
        yield tracker
    finally:
        tracker.close()

"""Weights & Biases tracking: one W&B run per training run, fed by the engine like the file tracker: the
resolved config, each epoch's row, the final metrics as its summary, the run's plots as images and its test
predictions as a table (a bounded sample), the best checkpoint as an artifact with `logger.log_model`.

`wandb` is imported only inside `wandb_run`, so runs without `logger=wandb` never load it. The run is
a context manager: it is finished when training ends and marked failed when training raises, so the
jobs of a multirun never write into each other's run. Its id is kept in the run dir, and a resumed
training run continues the same W&B run.

A run that would go online first checks in a few seconds that the W&B server answers; when it does
not (a logged-in user on a node without network), the run logs offline with one warning line instead
of stalling for wandb's `init_timeout` and failing: training never waits on the network.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError
from dl_core.tracking.shared import (
    BEST_CHECKPOINT,
    NewEpochs,
    plot_files,
    predictions_sample,
    run_group,
    run_name,
    unreachable,
)

log = logging.getLogger(__name__)

RUN_ID_FILE = "wandb_run_id.txt"
ONLINE_MODES = ("online", "run")
# Rows of the test predictions logged as a W&B table: a table is stored and drawn whole, and a forecast's
# predictions run to millions of rows. A larger file is sampled (the summary says how many rows of how many).
MAX_TABLE_ROWS = 2000


class WandbTracker:
    """Logs each epoch's (or boosting round's) row with the epoch as W&B step, then the final metrics as the
    run summary, the run's plots as images and its test predictions as a table. `resumed`: the W&B run
    continues one whose earlier epochs a process before this one logged."""

    def __init__(self, run: Any, run_dir: Path, log_model: bool, resumed: bool = False):
        self.run, self.run_dir, self.log_model = run, run_dir, log_model
        self.new_epochs = NewEpochs(None if resumed else 0)

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        """Every row not logged yet, each committed at once: W&B holds a step's row until a later step or the
        end of the run, and a last row released at the end landed after the summary, whose `val_loss` then
        read the last epoch's instead of the best one's."""
        for row in self.new_epochs(history):
            self.run.log(dict(row), step=int(row["epoch"]), commit=True)

    def log_summary(self, metrics: dict[str, Any]) -> None:
        """The final metrics as the summary, then (one step after the last epoch) the plots and the test
        predictions, and with `log_model` the best checkpoint as an artifact."""
        import wandb

        self.run.summary.update({key: value for key, value in metrics.items()
                                 if isinstance(value, (bool, int, float, str))})
        media: dict[str, Any] = {path.stem: wandb.Image(str(path)) for path in plot_files(self.run_dir)}
        sample = predictions_sample(self.run_dir, MAX_TABLE_ROWS)
        if sample is not None:
            table, rows = sample
            media["predictions_test"] = wandb.Table(dataframe=table)
            self.run.summary.update({"predictions_test_rows": rows, "predictions_test_rows_logged": len(table)})
        if media:
            self.run.log(media, commit=True)
        best = self.run_dir / BEST_CHECKPOINT
        if self.log_model and best.exists():
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
    mode = resolve_mode(settings.mode)
    if (mode or os.environ.get("WANDB_MODE", "online")) in ONLINE_MODES:
        url = base_url()
        problem = unreachable(url)
        if problem:
            log.warning("W&B server %s unreachable (%s): logging offline under %s; upload later with `wandb sync`",
                        url, problem, run_dir / "wandb")
            mode = "offline"
    id_file = run_dir / RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else None
    run = wandb.init(
        project=settings.project, entity=settings.entity, group=run_group(cfg), job_type=settings.job_type,
        name=run_name(cfg, run_dir), tags=list(settings.tags), mode=mode,
        dir=str(run_dir), config=OmegaConf.to_container(cfg, resolve=True), id=run_id,
        resume="allow" if run_id else None,
    )
    if not run.disabled:
        id_file.write_text(run.id + "\n")
    with run:
        yield WandbTracker(run, run_dir, settings.log_model, resumed=run_id is not None)


def resolve_mode(mode: str) -> str | None:
    """`auto`: WANDB_MODE from the environment if set, else online when logged in, else offline.

    Online without credentials is refused up front, whether `logger.mode` or WANDB_MODE asks for it:
    wandb would otherwise prompt for a key, which hangs a sweep job that has no terminal.
    """
    wanted = os.environ.get("WANDB_MODE") if mode == "auto" else mode
    if wanted in ONLINE_MODES and not logged_in():
        key = "WANDB_MODE" if mode == "auto" else "logger.mode"
        raise ConfigError(f"{key}={wanted} needs W&B credentials; run `wandb login` (or set WANDB_API_KEY), "
                          "or use logger.mode=offline and `wandb sync` later")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if logged_in() else "offline"


def base_url() -> str:
    """The W&B server wandb would use: WANDB_BASE_URL, else `wandb login --host`'s setting, else its default."""
    import wandb

    return str(wandb.setup().settings.base_url)


def logged_in() -> bool:
    """Whether wandb has a key without asking: WANDB_API_KEY, or the netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(base_url()).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False

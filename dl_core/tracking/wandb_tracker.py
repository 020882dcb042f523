"""Weights & Biases tracking: one W&B run per training run, fed by the engine like the file tracker.

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
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dl_core.errors import ConfigError

log = logging.getLogger(__name__)

RUN_ID_FILE = "wandb_run_id.txt"
# Long enough for a real server across the world, short enough that an offline node trains at once.
PROBE_TIMEOUT_S = 3.0
ONLINE_MODES = ("online", "run")


class WandbTracker:
    """Logs each epoch's (or boosting round's) row with the epoch as W&B step, then the final metrics as the
    run summary. `resumed`: the W&B run continues one whose earlier epochs a process before this one logged."""

    def __init__(self, run: Any, run_dir: Path, log_model: bool, resumed: bool = False):
        self.run, self.run_dir, self.log_model = run, run_dir, log_model
        self.next_step: int | None = None if resumed else 0

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        """Every row not logged yet: the epoch engine reports after each epoch, a boosted-tree fit all its rounds
        at once when the library returns. The first report of a resumed run carries the epochs logged before
        it: only its last row is new.

        Each row is committed at once: W&B holds a step's row until a later step or the end of the run, and a
        last row released at the end landed after the summary, whose `val_loss` then read the last epoch's
        instead of the best one's."""
        if self.next_step is None:
            self.next_step = int(history[-1]["epoch"])
        for row in history:
            if int(row["epoch"]) >= self.next_step:
                self.run.log(dict(row), step=int(row["epoch"]), commit=True)
        self.next_step = int(history[-1]["epoch"]) + 1

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
        name=settings.name or run_name(cfg, run_dir), tags=list(settings.tags), mode=mode,
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


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the server at `url` cannot be reached within `timeout` s, or None when it answers at all.

    Any HTTP answer counts, an error status included: only a refused or silent connection means there
    is no network to the server. Proxies from the environment apply, as they do for wandb.
    """
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return f"no answer in {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
    return None


def logged_in() -> bool:
    """Whether wandb has a key without asking: WANDB_API_KEY, or the netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(base_url()).hostname
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
    """Readable and unique: model class, data name, run dir name (a time stamp, or a sweep job number, then the model
    option and data, dl_core/tracking/run_index.py run_label)."""
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    return f"{model}-{cfg.data.name}-{run_dir.name}"

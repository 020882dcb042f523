"""What the experiment trackers (W&B, TensorBoard, MLflow) share: the run's name and group, which epochs are
new to a tracker, the run's plots and test predictions, and a quick check that a server answers at all.

Every tracker is fed as the run files are (`RunTracker`): the whole history after each epoch (all boosting
rounds at once for a tree model), then the final metrics once the run's files are written (its plots,
predictions_test.csv and best checkpoint), so a tracker reads those from the run directory.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# Long enough for a real server across the world, short enough that an offline node trains at once.
PROBE_TIMEOUT_S = 3.0
PREDICTIONS_FILE = "predictions_test.csv"
BEST_CHECKPOINT = Path("checkpoints") / "best.ckpt"
CURVES = ("train_loss", "val_loss", "lr", "time_s")  # the series of a history row; its `epoch` is the step


class NewEpochs:
    """Which rows of the history a tracker has not logged yet. The engine reports the whole history after
    each epoch, a boosted-tree fit all its rounds at once; the first report of a resumed run carries the
    epochs a process before it logged. `next_step`: the first epoch to log; None for a resumed run whose
    tracker cannot tell what was logged: then only the first report's last row is new."""

    def __init__(self, next_step: int | None = 0):
        self.next_step = next_step

    def __call__(self, history: list[dict[str, float]]) -> list[dict[str, float]]:
        if self.next_step is None:
            self.next_step = int(history[-1]["epoch"])
        new = [row for row in history if int(row["epoch"]) >= self.next_step]
        self.next_step = max(self.next_step, int(history[-1]["epoch"]) + 1)
        return new


def run_group(cfg: DictConfig) -> str | None:
    """`logger.group` if set; for a multirun job the study name (or the sweep dir's name)."""
    if cfg.logger.group:
        return str(cfg.logger.group)
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra = HydraConfig.get()
    return str(hydra.sweeper.get("study_name") or Path(hydra.sweep.dir).name)


def run_name(cfg: DictConfig, run_dir: Path) -> str:
    """`logger.name` if set, else readable and unique: model class, data name, run dir name (a time stamp, or a
    sweep job number, then the model option and data: dl_core/tracking/run_index.py run_label)."""
    if cfg.logger.name:
        return str(cfg.logger.name)
    model = str(cfg.model.get("_target_", "model")).rsplit(".", 1)[-1]
    return f"{model}-{cfg.data.name}-{run_dir.name}"


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's numbers for a tracker that keeps one series per name: `val_loss` (the best epoch's) as
    `best_val_loss`, since the per-epoch `val_loss` curve has that name."""
    return {(f"best_{name}" if name in CURVES else name): float(value) for name, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def flat_config(cfg: DictConfig) -> dict[str, str | int | float | bool]:
    """The resolved config as dotted keys with plain values (lists and null as text), as HParams takes it."""
    out: dict[str, str | int | float | bool] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for name, child in value.items():
                walk(child, f"{key}.{name}" if key else str(name))
        elif isinstance(value, (str, int, float, bool)):
            out[key] = value
        else:
            out[key] = "null" if value is None else str(value)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def plot_files(run_dir: Path) -> list[Path]:
    """The run's plots: its learning curve and its task's test plot (forecast, predicted vs actual or
    confusion matrix), the PNG files at the top of its directory."""
    return sorted(run_dir.glob("*.png"))


def predictions_sample(run_dir: Path, max_rows: int) -> tuple[pd.DataFrame, int] | None:
    """The test predictions (predictions_test.csv), at most `max_rows` of them drawn at random (seeded, in
    file order), and how many rows the file has; None where the run wrote none (a pruned trial)."""
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if len(table) <= max_rows:
        return table, len(table)
    return table.sample(max_rows, random_state=0).sort_index(), len(table)


def unreachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the server at `url` cannot be reached within `timeout` s, or None when it answers at all.

    Any HTTP answer counts, an error status included: only a refused or silent connection means there
    is no network to the server. Proxies from the environment apply, as they do for the trackers' clients.
    """
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return f"no answer in {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
    return None

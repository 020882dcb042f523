"""A run's identity in its directory, and `reuse=true`: a config that finished before is not trained again.

A run writes `run.json` (dl_core/tracking/run_index.py) before it trains: the fingerprint of what it computes
(dl_core/tracking/identity.py), its resolved config, and the overrides and group choices it was composed with.
Once it has finished, it is entered in the index of its log dir (only a run whose directory lies under
`paths.log_dir`: a run a test or a user put elsewhere is not offered to others).

With `reuse=true` (the suites in conf/benchmark/ set it), a new run whose fingerprint the index of
`paths.log_dir` holds returns that run's objective without training, says so in one log line, and leaves in
its own directory its record and a run.json pointing at the finished run, so that a multirun's summary and a
suite's table read the run that did the work.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dl_core.tracking.identity import fingerprint
from dl_core.tracking.run_index import (
    RUN_FILE,
    find_finished,
    finished_metrics,
    index_run,
    read_record,
    reusable,
    write_json_atomically,
)

log = logging.getLogger(__name__)


def run_identity(cfg: DictConfig, resumed_dir: Path | None = None) -> str:
    """The fingerprint of the config as composed (before the run resolves `trainer.batch_size=auto` and what
    `hardware=auto` decides). A resumed run's config is the one its checkpoint saved, with those resolved: it
    keeps the fingerprint its run.json holds, of the config it started from."""
    record = read_record(resumed_dir) if resumed_dir is not None else None
    if record is not None and "fingerprint" in record:
        return str(record["fingerprint"])
    return fingerprint(OmegaConf.to_container(cfg, resolve=True))


def composed_with() -> dict[str, Any]:
    """The overrides and config-group options of this Hydra job (nothing outside one: the Python API)."""
    if not HydraConfig.initialized():
        return {}
    hydra = HydraConfig.get()
    choices = {key: str(value) for key, value in hydra.runtime.choices.items()
               if not key.startswith("hydra") and value is not None}
    return {"overrides": list(hydra.overrides.task), "choices": choices}


def write_run_record(run_dir: Path, cfg: DictConfig, identity: str, **extra: Any) -> None:
    """run.json of a run that starts (or resumes: the original's overrides, choices and start are kept)."""
    kept = {key: value for key, value in (read_record(run_dir) or {}).items()
            if key in ("overrides", "choices", "started")}
    record = {"started": datetime.now().isoformat(timespec="seconds"), **composed_with(), **kept,
              "fingerprint": identity, "config": OmegaConf.to_container(cfg, resolve=True), **extra}
    write_json_atomically(record, run_dir / RUN_FILE)


def index_if_finished(cfg: DictConfig, run_dir: Path, identity: str) -> None:
    """Enter a run that finished (not a pruned trial) in the index of its log dir, if it lies under it."""
    log_dir = Path(cfg.paths.log_dir).resolve()
    if run_dir.resolve().is_relative_to(log_dir) and reusable(run_dir, identity):
        index_run(log_dir, run_dir, identity)


def reused_objective(cfg: DictConfig, run_dir: Path, identity: str, write: bool) -> float | None:
    """With `reuse=true`, the objective of a finished run of this fingerprint under `paths.log_dir`, its
    directory recorded in this run's run.json (when `write`: the process holding the run dir); None to train."""
    if not cfg.reuse:
        return None
    found = find_finished(Path(cfg.paths.log_dir), identity)
    if found is None:
        return None
    metrics = finished_metrics(found)
    if found != run_dir.resolve() and write:
        write_run_record(run_dir, cfg, identity, reused=os.path.relpath(found, run_dir.resolve()))
    log.info("reuse=true: %s finished with the same config (fingerprint %s), reused, not trained again; "
             "%s %.5f", found, identity[:12], cfg.objective.metric, metrics[cfg.objective.metric])
    return float(metrics[cfg.objective.metric])

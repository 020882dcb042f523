"""Finding finished runs: each run's `run.json`, and an index of finished runs by the fingerprint of their config.

Every run writes `run.json` when it starts: the fingerprint of what it computes (dl_core/tracking/identity.py),
its resolved config, the overrides and config-group choices it was composed with (in a Hydra job) and when it
started. A run that finishes (its metrics.json written, not a pruned trial) is entered in the index under its
log dir (`paths.log_dir`): `<log dir>/.index/<fingerprint>/<entry>.json`, one file per run naming its directory,
written atomically. Looking a config up costs one directory listing, however many runs the log dir holds.

A run started with `reuse=true` whose fingerprint the index holds does not train: its directory keeps its
record (`.hydra/`) and a `run.json` whose `reused` names the finished run, whose results are read in its place
(`results_dir`): by the multirun summary, the run listing and the suites' tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
INDEX_DIR = ".index"
# Folders inside a run directory, never runs of their own (a DDP rank's Hydra files live in ranks/).
NOT_RUNS = {"checkpoints", ".hydra", "ranks", "wandb", INDEX_DIR}


def write_json_atomically(payload: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """A run's run.json, or None for a directory without one (a run from before run.json existed)."""
    path = run_dir / RUN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def results_dir(run_dir: Path) -> Path:
    """The directory holding the run's results: its own, or that of the finished run it reused."""
    record = read_record(run_dir) or {}
    reused = record.get("reused")
    return run_dir if reused is None else (run_dir / reused).resolve()


def finished_metrics(run_dir: Path) -> dict[str, Any] | None:
    """A run's metrics.json (the reused run's for a directory that reused one), or None while it has none."""
    path = results_dir(run_dir) / METRICS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def reusable(run_dir: Path, identity: str) -> bool:
    """True when `run_dir` finished (a pruned trial did not) under a config of this fingerprint."""
    record = read_record(run_dir)
    metrics = finished_metrics(run_dir) if record is not None and record.get("reused") is None else None
    return metrics is not None and not metrics.get("pruned", False) and record.get("fingerprint") == identity


def _entry_name(run_dir: Path) -> str:
    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16] + ".json"


def index_run(log_dir: Path, run_dir: Path, identity: str) -> None:
    """Enter a finished run in the index of `log_dir` (its path relative to the log dir where it lies inside it,
    so that a moved log dir keeps its index)."""
    folder = log_dir / INDEX_DIR / identity
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir.resolve()
    where = os.path.relpath(run_dir, log_dir.resolve()) if run_dir.is_relative_to(log_dir.resolve()) else str(run_dir)
    write_json_atomically({"run_dir": where}, folder / _entry_name(run_dir))


def find_finished(log_dir: Path, identity: str) -> Path | None:
    """The first (by path) finished run of `log_dir`'s index with this fingerprint, checked against its own
    run.json (an entry whose run was deleted, or rewritten by a resume under another config, is passed over)."""
    folder = log_dir / INDEX_DIR / identity
    if not folder.is_dir():
        return None
    found = []
    for entry in folder.iterdir():
        if entry.suffix != ".json" or entry.name.startswith("."):
            continue
        run_dir = log_dir / json.loads(entry.read_text())["run_dir"]
        if reusable(run_dir, identity):
            found.append(run_dir.resolve())
    return min(found, default=None)


def run_dirs(root: Path) -> Iterator[Path]:
    """Every run directory under `root` (one holding metrics.json or run.json), in path order; a folder inside a run
    (checkpoints/, .hydra/, DDP ranks) is not searched."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name not in NOT_RUNS)
        if METRICS_FILE in files or RUN_FILE in files:
            yield Path(folder)


def saved_config(run_dir: Path) -> dict[str, Any]:
    """A run's config: the resolved one of its run.json, else (a run from before run.json) its `.hydra/config.yaml`
    as written; {} for neither."""
    record = read_record(run_dir)
    if record is not None and "config" in record:
        return record["config"]
    path = run_dir / ".hydra" / "config.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.is_file() else {}


def saved_choices(run_dir: Path) -> dict[str, str]:
    """The config-group options a run was composed with (model, data, experiment, ...), as far as it recorded them."""
    record = read_record(run_dir)
    if record is not None and "choices" in record:
        return record["choices"]
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return {}
    choices = OmegaConf.select(OmegaConf.load(path), "hydra.runtime.choices", default=None) or {}
    return {key: str(value) for key, value in choices.items() if not key.startswith("hydra") and value is not None}


# A run directory's name: its start time (or job number) and this label, kept short for file systems and shells.
MAX_LABEL = 48


def run_label(*, _root_: Any) -> str:
    """`${run_label:}` (conf/hydra/default.yaml): `<model>_<data>` of the config being composed, so that run
    directories say what ran: the model option, and the data set's name (ETT's `data.name`), else the stem of its
    file (`data.path`), else the data option; e.g. `lstm_synthetic`, `dlinear_ETTh2`, `catboost_california_housing`."""
    choices = OmegaConf.select(_root_, "hydra.runtime.choices", default=None) or {}
    data = _root_.get("data") or {}
    name = data.get("name") if "name" in data else None
    if name is None and data.get("path"):
        name = Path(str(data.get("path"))).stem
    parts = [choices.get("model"), name or choices.get("data")]
    label = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(part)).strip("-.") for part in parts if part)
    return label[:MAX_LABEL] or "run"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A saved config as dotted keys, to set runs' configs side by side key by key."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}"))
    return flat

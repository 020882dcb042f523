"""Read a W&B offline run back from its .wandb file with wandb's own reader (`wandb leet inspect`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def inspect(path: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", *args, str(path)],
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


def read_summary(path: Path) -> dict[str, Any]:
    """State, config and summary of the offline run at `path` (a run dir, or a wandb dir for its latest run)."""
    return json.loads(inspect(path, "--summary", "--json"))


def read_run_record(path: Path) -> dict[str, Any]:
    """The run record: id, display name, group, job type, project."""
    records = (json.loads(line) for line in inspect(path, "--json").splitlines() if line.strip())
    return next(record["run"] for record in records if record.get("type") == "run")


def read_history(path: Path) -> list[dict[str, Any]]:
    """The history rows of the offline run at `path`, in the order they were written, each with its `_step`."""
    records = (json.loads(line) for line in inspect(path, "--json").splitlines() if line.strip())
    return [record["history"]["item"] for record in records if record.get("type") == "history"]


def record_types(path: Path) -> set[str]:
    return {json.loads(line).get("type") for line in inspect(path, "--json").splitlines() if line.strip()}


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))

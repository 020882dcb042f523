"""Plain-file run records, always written: metrics.csv per epoch and metrics.json."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any


class FileTracker:
    """Rewrites metrics.csv from the full history each epoch, so after a resume the file matches
    the checkpoint exactly (no duplicated or missing epochs)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "metrics.csv"
        self.summary_path = run_dir / "metrics.json"

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        os.replace(tmp, self.path)

    def log_summary(self, metrics: dict[str, Any]) -> None:
        write_json(metrics, self.summary_path)


def write_json(payload: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)

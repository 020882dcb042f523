"""Plain-file run records, always written: metrics.csv per epoch, metrics.json, predictions, plots."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


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


def plot_learning_curve(history: list[dict[str, float]], best_epoch: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(frame["epoch"], frame["train_loss"], label="train")
    ax.plot(frame["epoch"], frame["val_loss"], label="validation")
    ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
    ax.set(xlabel="epoch", ylabel="loss", title="Learning curve")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_forecast(predictions: pd.DataFrame, path: Path, max_points: int = 500) -> None:
    """First entity, first target, one-step-ahead: actual against predicted over the test period."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = predictions[(predictions["entity"] == predictions["entity"].iloc[0])
                        & (predictions["target"] == predictions["target"].iloc[0])
                        & (predictions["step"] == 1)].tail(max_points)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(first["timestamp"], first["actual"], label="actual", linewidth=1.2)
    ax.plot(first["timestamp"], first["predicted"], label="predicted", linewidth=1.2)
    ax.set(title=f"Test forecast: {first['target'].iloc[0]} ({first['entity'].iloc[0]}), 1 step ahead",
           xlabel="time", ylabel=str(first["target"].iloc[0]))
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

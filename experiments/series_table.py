"""The per-series table of a forecasting multirun (experiments/README.md, "Per-series evaluation"): one row per
run of the sweep directory, from its files only: the resolved config, metrics.json and series_metrics_test.csv.

    python experiments/series_table.py <sweep dir>
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

HEADER = ("| model | data.scaler | epochs | test_mse | test_mae | test_mse_scaled | MASE (mean over series) | median | "
          "worst | sMAPE % | MASE per series |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")


def row(run: Path) -> str:
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    metrics = json.loads((run / "metrics.json").read_text())
    series = pd.read_csv(run / "series_metrics_test.csv")
    model = str(cfg.model._target_).split(".")[-2]
    per_series = " / ".join(f"{value:.3f}" for value in series["mase"])
    return (f"| {model} | {cfg.data.scaler} | {metrics['epochs']} | {metrics['test_mse']:.4f} | "
            f"{metrics['test_mae']:.4f} | {metrics['test_mse_scaled']:.4f} | {metrics['test_mase']:.3f} | "
            f"{metrics['test_mase_median']:.3f} | {metrics['test_mase_max']:.3f} | {metrics['test_smape']:.2f} | "
            f"{per_series} |")


def table(sweep_dir: Path) -> str:
    """The finished runs of a sweep, in job order (a run without metrics.json, failed, is left out). Job
    directories are named `<n>_<model>_<data>` (or `<n>` by older multiruns)."""
    jobs = [p for p in sweep_dir.iterdir() if p.name.split("_")[0].isdigit() and (p / "metrics.json").is_file()]
    runs = sorted(jobs, key=lambda p: int(p.name.split("_")[0]))
    return "\n".join([HEADER, *map(row, runs)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    print(table(parser.parse_args().sweep_dir))

"""Batch prediction on a file: what `predict.py` runs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from dl_core.data.loading import read_table
from dl_core.errors import ConfigError, InputError
from dl_core.serving.load import load_run


def predict_file(cfg: DictConfig) -> Path:
    """Validate `data.path` against the run's inputs, predict, write the CSV and return its path."""
    OmegaConf.to_object(cfg).validate()
    output = output_path(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    run = load_run(cfg.run_dir)
    frame = read_table(cfg.data.path)
    try:
        predictions = run.predict(frame)
    except InputError as err:
        raise InputError(err.loc, f"{err.reason} (in data.path={cfg.data.path})") from None
    write_predictions(predictions, output)
    return output


def output_path(cfg: DictConfig) -> Path:
    """Where the predictions go, refused where writing would destroy a run's files: a CSV, never inside
    a `checkpoints/` directory (`output=<run>/checkpoints/best.ckpt` would replace the model)."""
    run_dir = Path(cfg.run_dir).expanduser()
    default = run_dir / "predictions" / f"{Path(cfg.data.path).stem}.csv"
    output = Path(cfg.output).expanduser() if cfg.output else default
    if output.suffix.lower() != ".csv":
        raise ConfigError(f"output: {output} is not a .csv file; predictions are written as CSV, e.g. output=preds.csv")
    resolved = output.resolve()
    if resolved.parent.name == "checkpoints" or resolved.is_relative_to((run_dir / "checkpoints").resolve()):
        raise ConfigError(f"output: {output} is inside a checkpoints directory, which holds the run's model; "
                          f"pass output=<run_dir>/predictions/<name>.csv or another path")
    if output.exists() and not output.is_file():
        raise ConfigError(f"output: {output} exists and is not a file; pass output=<file>.csv")
    return output


def write_predictions(predictions: pd.DataFrame, output: Path) -> None:
    """Write atomically (temp file + rename), replacing an existing file only if predict.py wrote it:
    a CSV whose header is the one written now. Anything else at `output` is kept and refused."""
    columns = [str(column) for column in predictions.columns]
    if output.exists() and _csv_header(output) != columns:
        raise ConfigError(f"output: {output} exists and is not a predictions file of this run (its header is not "
                          f"{','.join(columns)}); pass another output= path, or remove the file first")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        predictions.to_csv(tmp, index=False)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _csv_header(path: Path) -> list[str] | None:
    """The first row of a text CSV file, or None when the file is not one (binary, empty)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader([handle.readline(65536)]), None)
    except (UnicodeDecodeError, csv.Error):
        return None

"""Batch prediction on a file: what `predict.py` runs."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from dl_core.data.loading import read_table
from dl_core.errors import ConfigError, InputError
from dl_core.serving.load import id_values, load_run

PREDICTIONS = "predictions"  # the one folder of a run directory that predict.py writes; training never does
RUN_MARKERS = ("checkpoints", ".hydra")  # a directory holding one of these is a training run's


def predict_file(cfg: DictConfig) -> Path:
    """Validate `data.path` against the run's inputs, predict, write the CSV and return its path (the config
    itself is checked by the entry point, dl_core.runs.cli.run_job)."""
    output = output_path(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    run = load_run(cfg.run_dir)
    frame = read_table(cfg.data.path)
    ids = file_ids(cfg.data.path, frame, list(cfg.id_columns))
    try:
        predictions = run.predict_checked(run.schema.validate_frame(frame), ids)
    except InputError as err:
        raise InputError(err.loc, f"{err.reason} (in data.path={cfg.data.path})") from None
    write_predictions(predictions, output)
    return output


def file_ids(path: str, frame: pd.DataFrame, id_columns: list[str]) -> pd.DataFrame | None:
    """The `id_columns` of the file, as written in it: a CSV's cells as text, so that `007` stays `007` and a
    column of whole numbers with a blank cell is not written back as `1.0`."""
    ids = id_values(frame, id_columns, f"data.path={path}")
    if ids is None or Path(path).suffix.lower() != ".csv":
        return ids
    text = pd.read_csv(Path(path).expanduser(), usecols=list(ids.columns), dtype=str, keep_default_na=False)
    return text[list(ids.columns)]


def output_path(cfg: DictConfig) -> Path:
    """Where the predictions go, refused where writing would destroy a run's files: inside a training run's
    directory (this one's or another's) only under its `predictions/` folder, which training never writes, so
    no file a run wrote (predictions_test.csv, metrics, checkpoints, logs) is ever replaced, whatever
    training writes now or later. The default name carries a digest of the input file's absolute path:
    `a/new.csv` and `b/new.csv` get one file each, and predicting one file again replaces its own."""
    run_dir = Path(cfg.run_dir).expanduser()
    source = Path(cfg.data.path).expanduser().resolve()
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    output = Path(cfg.output).expanduser() if cfg.output else run_dir / PREDICTIONS / f"{source.stem}-{digest}.csv"
    if output.suffix.lower() != ".csv":
        raise ConfigError(f"output: {output} is not a .csv file; predictions are written as CSV, e.g. output=preds.csv")
    resolved = output.resolve()
    try:
        owner = _run_holding(resolved, run_dir.resolve())
        taken = output.exists() and not output.is_file()
    except OSError as err:  # a folder on the way this user may not enter
        raise _unwritable(output, err) from None
    if owner is not None and not resolved.is_relative_to(owner / PREDICTIONS):
        raise ConfigError(f"output: {output} is inside the run directory {owner}, whose files are the run's own; "
                          f"pass output={owner / PREDICTIONS}/<name>.csv or a path outside the run")
    if taken:
        raise ConfigError(f"output: {output} exists and is not a file; pass output=<file>.csv")
    return output


def _run_holding(path: Path, run_dir: Path) -> Path | None:
    """The innermost training run directory holding `path`: `run_dir`, or any directory with checkpoints/
    or .hydra/ (another run's, or a sweep's job)."""
    for parent in path.parents:
        if parent == run_dir or any((parent / marker).is_dir() for marker in RUN_MARKERS):
            return parent
    return None


def write_predictions(predictions: pd.DataFrame, output: Path) -> None:
    """Write atomically (temp file + rename), replacing an existing file only if predict.py wrote it:
    a CSV whose header is the one written now. Anything else at `output` is kept and refused."""
    columns = [str(column) for column in predictions.columns]
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        if output.exists() and _csv_header(output) != columns:
            raise ConfigError(f"output: {output} exists and is not a predictions file of this run (its header is "
                              f"not {','.join(columns)}); pass another output= path, or remove the file first")
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            predictions.to_csv(tmp, index=False)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as err:  # a read-only directory or file system, a full disk: the place, not the predictions
        raise _unwritable(output, err) from None


def _unwritable(output: Path, err: OSError) -> ConfigError:
    return ConfigError(f"output: cannot write {output} ({err.strerror}); pass output=<a directory you can write "
                       f"to>/<name>.csv")


def _csv_header(path: Path) -> list[str] | None:
    """The first row of a text CSV file, or None when the file is not one (binary, empty)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader([handle.readline(65536)]), None)
    except (UnicodeDecodeError, csv.Error):
        return None

"""Batch prediction on a file: what `predict.py` runs. With `evaluate=true`, also the run's metrics on the
file's labelled rows, written beside the predictions."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig

from dl_core.data.inputs import refuse_unseen
from dl_core.data.loading import read_table, write_parquet
from dl_core.errors import ConfigError, InputError
from dl_core.serving.ensemble import is_ensemble
from dl_core.serving.load import id_values, load_run

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"  # the one folder of a run directory that predict.py writes; training never does
RUN_MARKERS = ("checkpoints", ".hydra")  # a directory holding one of these is a training run's (or ensemble.json)
FORMATS = (".csv", ".parquet")  # what predictions are written as, by the output's suffix
METRICS_SUFFIX = ".metrics.json"


def predict_file(cfg: DictConfig) -> Path:
    """Validate `data.path` against the run's inputs, predict, write the predictions and return their path;
    with `evaluate`, score the file's labelled rows first and write the metrics beside the predictions (the
    config itself is checked by the entry point, dl_core.runs.cli.run_job)."""
    output = output_path(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    run = load_run(cfg.run_dir)
    frame = read_table(cfg.data.path)
    ids = file_ids(cfg.data.path, frame, list(cfg.id_columns))
    try:
        rows = run.schema.validate_frame(frame)
        for unseen in refuse_unseen(run.preprocessor.unseen_categories(rows), cfg.unseen_categories):
            log.warning("data.path: %s; pass unseen_categories=refuse to refuse them", unseen.message())
        metrics = run.evaluate(frame) if cfg.evaluate else None
        predictions = run.predict_checked(rows, ids)
    except InputError as err:
        raise InputError(err.loc, f"{err.reason} (in data.path={cfg.data.path})") from None
    scores = metrics_path(output)
    if metrics is not None:  # refused before the predictions are written, if it must be
        refuse_foreign(scores, _json_keys, sorted(metrics), "a metrics file")
    write_predictions(predictions, output)
    if metrics is not None:
        write_metrics(metrics, scores)
        log.info("%d samples of %s scored: %s; %s", metrics["n_samples"], cfg.data.path,
                 ", ".join(f"{name} {value:.6g}" for name, value in metrics.items() if name != "n_samples"), scores)
    return output


def metrics_path(output: Path) -> Path:
    """Beside the predictions: `preds.csv` -> `preds.metrics.json`."""
    return output.with_name(output.stem + METRICS_SUFFIX)


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
    if output.suffix.lower() not in FORMATS:
        raise ConfigError(f"output: {output} is not a .csv or .parquet file; predictions are written as CSV or "
                          f"parquet, e.g. output=preds.csv")
    resolved = output.resolve()
    written = [output, metrics_path(output)] if cfg.evaluate else [output]
    try:
        owner = _run_holding(resolved, run_dir.resolve())
        taken = [path for path in written if path.exists() and not path.is_file()]
    except OSError as err:  # a folder on the way this user may not enter
        raise _unwritable(output, err) from None
    if owner is not None and not resolved.is_relative_to(owner / PREDICTIONS):
        raise ConfigError(f"output: {output} is inside the run directory {owner}, whose files are the run's own; "
                          f"pass output={owner / PREDICTIONS}/<name>.csv or a path outside the run")
    if taken:
        raise ConfigError(f"output: {taken[0]} exists and is not a file; pass output=<file>.csv")
    return output


def _run_holding(path: Path, run_dir: Path) -> Path | None:
    """The innermost run directory holding `path`: `run_dir`, or any directory with checkpoints/ or .hydra/
    (another run's, or a sweep's job) or an ensemble's ensemble.json."""
    for parent in path.parents:
        if parent == run_dir or any((parent / marker).is_dir() for marker in RUN_MARKERS) or is_ensemble(parent):
            return parent
    return None


def write_predictions(predictions: pd.DataFrame, output: Path) -> None:
    """Write atomically (temp file + rename) as CSV or parquet by the suffix, replacing an existing file only if
    predict.py wrote it: a file of that format whose header is the one written now. Anything else at `output`
    is kept and refused."""
    parquet = output.suffix.lower() == ".parquet"
    refuse_foreign(output, _parquet_header if parquet else _csv_header, [str(c) for c in predictions.columns],
                   "a predictions file")
    if parquet:
        _write(output, lambda tmp: write_parquet(predictions, tmp, "output", "pass output=<file>.csv"))
    else:
        _write(output, lambda tmp: predictions.to_csv(tmp, index=False))


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    """Write the metrics as JSON, atomically, replacing an existing file only if predict.py wrote it: a JSON
    object of the same metrics."""
    refuse_foreign(path, _json_keys, sorted(metrics), "a metrics file")
    _write(path, lambda tmp: tmp.write_text(json.dumps(metrics, indent=2) + "\n"))


def refuse_foreign(path: Path, header: Callable[[Path], list[str] | None], expected: list[str], kind: str) -> None:
    """Refuse to replace an existing `path` whose `header` (columns, keys) is not `expected`: a file predict.py
    did not write for this run."""
    try:
        foreign = path.exists() and header(path) != expected
    except OSError as err:  # a file or folder this user may not read
        raise _unwritable(path, err) from None
    if foreign:
        raise ConfigError(f"output: {path} exists and is not {kind} of this run (its header is not "
                          f"{','.join(expected)}); pass another output= path, or remove the file first")


def _write(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` then rename over `path`; a place that cannot be written is one error naming it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as err:  # a read-only directory or file system, a full disk: the place, not the predictions
        raise _unwritable(path, err) from None


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


def _parquet_header(path: Path) -> list[str] | None:
    """The column names of a parquet file, or None when the file is not one."""
    try:
        import pyarrow.parquet
    except ImportError:
        return None
    try:
        return list(pyarrow.parquet.read_schema(path).names)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid (not parquet) is a ValueError
        return None


def _json_keys(path: Path) -> list[str] | None:
    """The sorted keys of a JSON object file, or None when the file is not one."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return sorted(found) if isinstance(found, dict) else None

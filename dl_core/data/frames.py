"""Training rows given as a pandas DataFrame (`dl_core.run(cfg, data=frame)`): kept as a parquet file that the run
reads as its `data.path`.

A run given a DataFrame is then a run given a file: the same loading, checks and errors, and a config that
names its data, so the run can be resumed (`trainer.resume`), reproduced, and its own training rows fed back to
predict.py. Parquet keeps each column's type (numbers, text, dates, categories) as the frame had it, where a
CSV would have them parsed again. The file is named by a digest of its content: training on one frame many
times keeps one copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dl_core.checks import listing, one_line
from dl_core.data.loading import write_parquet
from dl_core.errors import ConfigError, DataError

FRAMES_DIR = "frames"  # under paths.log_dir


def keep_frame(frame: Any, directory: Path) -> Path:
    """Write `frame` (its columns, not its index) to `<directory>/<digest>.parquet` unless that file exists; its
    path. Refused by name: anything but a DataFrame, no rows or columns, column names that are not text, an
    index that holds data (named, of several levels, or not of row numbers: dates, say), a column of mixed
    types. An index of row numbers is not kept: the file's rows are numbered from 0, in the frame's order."""
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"data: expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise DataError(f"data: the DataFrame has no rows or no columns (shape {frame.shape}); pass the rows to "
                        f"train on")
    named = [name for name in frame.columns if not isinstance(name, str)]
    if named:
        raise DataError(f"data: column names must be text, as a file's header is (got {listing(map(repr, named))}); "
                        f"e.g. frame.columns = frame.columns.astype(str)")
    index = frame.index
    if index.nlevels > 1 or index.name is not None or not pd.api.types.is_integer_dtype(index):
        kind = f"{index.nlevels} levels" if index.nlevels > 1 else f"of {index.dtype}"
        named = f"named {listing(map(repr, index.names))}, " if any(name is not None for name in index.names) else ""
        raise DataError(f"data: the DataFrame's index ({named}{kind}) holds data the run would not see; make it "
                        f"columns with frame.reset_index()")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".frame.{os.getpid()}.tmp"
    try:
        _write_frame(frame.reset_index(drop=True), tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
        path = directory / f"{digest}.parquet"
        if not path.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    try:
        write_parquet(frame, path, "data", "write the rows to a CSV file and pass data.path (a DataFrame is kept "
                                           "as parquet)")
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError: a column of mixed types
        raise DataError(f"data: the DataFrame cannot be kept as a file ({one_line(exc)}); give each column one "
                        f"type, e.g. frame[column] = frame[column].astype(str)") from None

"""Read tabular files into DataFrames with errors that name the path and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dl_core.errors import DataError

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_table(path: str | Path, key: str = "data.path") -> pd.DataFrame:
    """Load a CSV or parquet file; relative paths are relative to the current directory."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{key}: file not found: {file.resolve()} (pass {key}=/path/to/file.csv)")
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise DataError(f"{key}: unsupported file type {file.suffix!r}; use one of {', '.join(READERS)}")
    frame = reader(file)
    if frame.empty:
        raise DataError(f"{key}: {file} has no rows")
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], key: str) -> None:
    """Fail with the missing names and the columns that do exist, so the fix is a copy-paste away."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns[:30]))
        raise DataError(f"{key}: column(s) {missing} not in the data; available columns: {available}")

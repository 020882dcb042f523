"""Read tabular files into DataFrames with errors that name the path and the fix.

A CSV cell is missing when it is empty. pandas also reads the words `NA`, `N/A`, `null`, `NaN`, `None`
(its default NA strings) as missing, which turns a category or class spelled so (`NA` for Namibia or
North America, "not applicable") into a missing value, while the same word sent to the server is the
text it says. So a column of text keeps those words as text, with a warning naming the column and the
word (blank the cells if they are missing values); a column that is numbers or true/false apart from
them (what R writes for a missing number, say) reads them as missing, as pandas does. A header that
names a column twice is refused: pandas would rename the second `age.1`, a column no request carries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from dl_core.checks import is_boolean, listing, one_line
from dl_core.errors import ConfigError, DataError, require

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
# What pandas' read_csv takes for missing besides an empty cell (its default `na_values`, as documented).
NA_WORDS = ["#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
            "NULL", "NaN", "None", "n/a", "nan", "null"]

log = logging.getLogger(__name__)


def read_table(path: str | Path, key: str = "data.path") -> pd.DataFrame:
    """Load a CSV or parquet file; relative paths are relative to the current directory.

    A CSV's frame carries `attrs["first_line"]`, the file line of its first row, so that errors
    about single cells can say where in the file they are.
    """
    file = Path(path).expanduser()
    try:
        return _read_table(file, key)
    except PermissionError:  # the file, or a folder on its way, is not readable by this user
        raise DataError(f"{key}: cannot read {file.absolute()} (permission denied); make it readable "
                        f"(chmod) or pass another {key}") from None


def write_parquet(frame: pd.DataFrame, path: Path, key: str, instead: str) -> None:
    """Write `frame`'s columns (not its index) as parquet. pyarrow is optional: without it, one line naming
    `key`, the extra to install, or what to do `instead`."""
    try:
        frame.to_parquet(path, index=False)
    except ImportError:
        raise ConfigError(f"{key}: writing parquet needs pyarrow, which is not installed; `pip install -e "
                          f"'.[parquet]'`, or {instead}") from None


def _read_table(file: Path, key: str) -> pd.DataFrame:
    if file.is_dir():
        raise DataError(f"{key}: {file.resolve()} is a directory, not a file; pass {key}=/path/to/file.csv")
    if not file.is_file():
        raise DataError(f"{key}: file not found: {file.resolve()} (pass {key}=/path/to/file.csv)")
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise DataError(f"{key}: unsupported file type {file.suffix!r}; use one of {', '.join(READERS)}")
    if file.stat().st_size == 0:
        raise DataError(f"{key}: {file} is empty (0 bytes); pass a file with a header row and data rows")
    try:
        frame = _read_csv(file, key) if reader is pd.read_csv else reader(file)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser errors and pyarrow's ArrowInvalid are ValueErrors
        raise DataError(f"{key}: cannot read {file} as {file.suffix.lstrip('.')} ({one_line(exc)}); "
                        f"check the file or pass another {key}") from None
    except ImportError:  # parquet needs an optional engine
        raise DataError(f"{key}: reading {file.suffix} files needs pyarrow, which is not installed; "
                        f"`pip install pyarrow`, or pass a CSV file") from None
    _refuse_duplicate_names(frame.columns[frame.columns.duplicated()].unique(), file, key)
    if frame.empty:
        raise DataError(f"{key}: {file} has no data rows (columns: {listing(frame.columns)})")
    if reader is pd.read_csv:
        frame.attrs["first_line"] = 2
    return frame


def _read_csv(file: Path, key: str) -> pd.DataFrame:
    """The file with only empty cells missing; pandas' NA words missing too in a column of numbers or
    true/false (see the module docstring)."""
    header = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0]
    _refuse_duplicate_names(header[header.duplicated() & (header != "")].unique(), file, key)
    frame = pd.read_csv(file, keep_default_na=False, na_values=[""])
    worded = {c: frame[c].isin(NA_WORDS) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}
    worded = {c: cells for c, cells in worded.items() if cells.any()}
    if not worded:
        return frame
    as_pandas = pd.read_csv(file, usecols=list(worded))
    for column, cells in worded.items():
        values = as_pandas[column]
        if pd.api.types.is_numeric_dtype(values) or is_boolean(values):
            frame[column] = values
            continue
        counts = frame.loc[cells, column].value_counts()
        log.warning("%s: column %r holds %s, read as text (a category or class of that name), not as missing "
                    "values; if they are missing values, leave those cells empty", key, column,
                    listing(f"{word!r} in {n} cell(s)" for word, n in counts.items()))
    return frame


def _refuse_duplicate_names(names: pd.Index | list[str], file: Path, key: str) -> None:
    if len(names):
        raise DataError(f"{key}: the header of {file} names column(s) {listing(map(repr, names))} more than once; "
                        f"give each column its own name")


def require_columns(frame: pd.DataFrame, columns: list[str], key: str) -> None:
    """Fail with the missing names and the columns that do exist, so the fix is a copy-paste away."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{key}: column(s) [{listing(map(repr, missing))}] not in the data; available columns: "
                        f"{listing(frame.columns, limit=30)}")


@dataclass
class DataConfig:
    """What every data option says: its kind and where its rows come from.

    Attributes:
        kind: `timeseries` or `tabular`, fixed by the schema; tells models and data apart (checked
            against the model's data kind).
        source: where rows come from: `synthetic` (built in) or `csv` (a CSV or parquet file).
        name: a readable name of the data set, used in run names.
        path: the file to read for `source: csv` (relative to the current directory).
    """

    kind: Literal["timeseries", "tabular"] = "timeseries"
    source: Literal["synthetic", "csv"] = "csv"
    name: str = "csv"
    path: str | None = None

    def validate(self, prefix: str) -> None:
        require(self.source != "csv" or bool(self.path), f"{prefix}.path",
                f"is required for a CSV data source: pass {prefix}.path=/path/to/file.csv")

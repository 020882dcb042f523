"""Input checks for prediction, one implementation for predict.py, the HTTP service and notebooks.

The run's fitted preprocessing says which columns a request needs and of what type (its
`input_schema()`). From that one `InputSchema` comes the pydantic row model: FastAPI validates
request bodies with it, and `validate_frame` validates CSV rows with the same model. A failed
check is an `InputError` that names the field, so the server can answer 422 with it.

Numbers must be finite: Python's JSON parser reads the bare tokens `Infinity` and `NaN`, and `1e400`
as infinity, and pydantic's float accepts them, so the row model refuses infinity itself. JSON null
is the missing value; a NaN (what pandas writes for missing) means missing too where the run can
impute the field, and is refused where it cannot.

A value means what the same cell of a CSV file means to the training run, so that a run's own rows
give its predictions whichever way they come: `true` is not a number (pydantic would read it as 1),
a column that held true/false in training takes true/false (or the words pandas reads as such,
`True`, `FALSE`, ...) and nothing else, and a label keeps its type (`true` is the label `True`, as
in a CSV, and `0.5` is `0.5`) for `label_values` to spell as training did. Text must be Unicode: a
lone surrogate (JSON `"\\ud800"`) has no UTF-8 spelling and no training row could hold it.

A category no training row had is read as unknown (the reserved index, as the rtdl recipes do), the
reading a missing value gets; it is never silent: the run's preprocessor finds such values
(`unseen_categories`), each column's an `Unseen`, which predict.py logs and the server returns as
warnings, or which `unseen_categories=refuse` refuses (`refuse_unseen`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

import numpy as np
import pandas as pd

from dl_core.checks import label_key, listing, short
from dl_core.errors import ConfigError, InputError

NUMBER, LABEL, BOOLEAN = "number", "string|number|boolean", "boolean"
# A timestamp takes what the run's took (dl_core/data/timestep.py): numbers, ISO 8601 dates, or dates in its format.
TIME, DATE, DATE_TEXT = "timestamp (number)", "timestamp (ISO 8601 date)", "timestamp (date in data.timestamp_format)"


@dataclass(frozen=True)
class InputSchema:
    """Columns a prediction request must carry, and their types; `nullable` ones may be missing."""

    columns: dict[str, str]
    nullable: frozenset[str] = frozenset()
    timestamp_column: str | None = None
    timestamp_format: str | None = None

    @cached_property
    def row_model(self) -> type:
        """The pydantic model of one row (FastAPI validates request bodies with it and documents it)."""
        from pydantic import AfterValidator, BeforeValidator, create_model

        number = Annotated[float, BeforeValidator(_not_boolean)]
        finite = Annotated[number, AfterValidator(_finite)]
        time = Annotated[int | float, BeforeValidator(_numeric_time), AfterValidator(_finite_time)]
        date = Annotated[str, BeforeValidator(_date), AfterValidator(_unicode)]
        date_text = Annotated[str, BeforeValidator(_date_text), AfterValidator(_unicode)]
        label = Annotated[bool | int | str | float, BeforeValidator(_label), AfterValidator(_unicode)]
        boolean = Annotated[bool, BeforeValidator(_boolean)]
        types = {NUMBER: finite, LABEL: label, TIME: time, DATE: date, DATE_TEXT: date_text, BOOLEAN: boolean}
        nullable = {NUMBER: Annotated[number, AfterValidator(_finite_or_missing)] | None,
                    LABEL: Annotated[label | None, BeforeValidator(_nan_as_none)],
                    BOOLEAN: Annotated[boolean | None, BeforeValidator(_nan_as_none)]}
        fields = {name: (nullable[kind] if name in self.nullable else types[kind], ...)
                  for name, kind in self.columns.items()}
        return create_model("Row", **fields)

    def validate_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check a file's rows with the same row model the server uses; return them as the server would."""
        from pydantic import TypeAdapter, ValidationError

        twice = frame.columns[frame.columns.duplicated()].unique()
        if len(twice):
            raise InputError((), f"column(s) {list(twice)} appear more than once; give each column its own name")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise InputError((), f"column(s) {missing} missing; the run needs {list(self.columns)}")
        frame = frame[list(self.columns)]
        self._check_finite(frame)
        time = self.timestamp_column
        if time and pd.api.types.is_datetime64_any_dtype(frame[time]):
            frame = frame.assign(**{time: frame[time].map(pd.Timestamp.isoformat)})
        records = frame.astype(object).where(frame.notna(), None)
        try:
            rows = TypeAdapter(list[self.row_model]).validate_python(records.to_dict("records"))
        except ValidationError as err:
            first = err.errors()[0]
            raise InputError(tuple(first["loc"]), f"{first['msg']} (got {first.get('input')!r})") from None
        return self.frame(rows)

    def _check_finite(self, frame: pd.DataFrame) -> None:
        """Refuse a file's infinite (and, where the run cannot impute, missing) numbers in one line with counts.

        Columns that are not numeric as read are left to the row model, which names the first bad cell.
        """
        counts: dict[str, dict[str, int]] = {}
        for name in (c for c, kind in self.columns.items() if kind == NUMBER):
            values = frame[name]
            if not pd.api.types.is_numeric_dtype(values):
                continue
            found = {"inf": int((values == np.inf).sum()), "-inf": int((values == -np.inf).sum()),
                     "missing": 0 if name in self.nullable else int(values.isna().sum())}
            if any(found.values()):
                counts[name] = found
        if not counts:
            return
        listing = ", ".join(f"{name} ({', '.join(f'{n} {kind}' for kind, n in found.items() if n)})"
                            for name, found in counts.items())
        imputed = [name for name in counts if name in self.nullable]
        required = [name for name in counts if name not in self.nullable]
        fix = "replace them with finite numbers"
        if imputed:
            fix += f" or leave those cells empty (the run imputes missing values in {imputed})"
        if required:
            fix += f"; {required} cannot be missing for this run"
        raise InputError((), f"numbers that are not finite in column(s) {listing}; {fix}")

    def frame(self, rows: list[Any]) -> pd.DataFrame:
        """Validated pydantic rows -> frame in schema column order, numbers as float (None as NaN)."""
        frame = pd.DataFrame([row.model_dump() for row in rows], columns=list(self.columns))
        numbers = [c for c, kind in self.columns.items() if kind == NUMBER]
        frame[numbers] = frame[numbers].astype(float)
        return frame


@dataclass(frozen=True)
class Unseen:
    """The values of one categorical input that no training row had: `rows` rows carry one, `values` are the
    distinct ones (most frequent first), `similar` maps those that differ from a known category only in case,
    spaces or invisible characters to it, and `first` is the position of the first such row."""

    column: str
    rows: int
    values: list[str]
    similar: dict[str, str]
    first: int

    def message(self) -> str:
        shown = listing(short(value) + (f" (training has {short(self.similar[value])})" if value in self.similar
                                        else "") for value in self.values)
        return (f"column {self.column!r} has categories that training never saw in {self.rows} row(s), read as "
                f"unknown (as a missing value is): {shown}")


def find_unseen(column: str, values: pd.Series, known: Iterable[str]) -> Unseen | None:
    """The `Unseen` of a column whose `values` (labels spelled as its encoder spells them, missing as NaN) meet
    the `known` categories, or None when every present value is known."""
    known = list(known)
    new = values.notna().to_numpy() & ~values.isin(known).to_numpy()
    if not new.any():
        return None
    counts = values[new].value_counts(sort=True)
    keys = {label_key(category): category for category in known}
    similar = {value: keys[label_key(value)] for value in counts.index if label_key(value) in keys}
    return Unseen(column, int(new.sum()), counts.index.tolist(), similar, int(np.flatnonzero(new)[0]))


class UnseenCategoriesError(InputError):
    """Categories training never saw, refused (`unseen_categories=refuse`); one `Unseen` per column."""

    def __init__(self, unseen: list[Unseen]):
        first = unseen[0]
        super().__init__((first.first, first.column), f"{'; '.join(u.message() for u in unseen)}; send categories "
                                                      f"the run was trained on, or pass unseen_categories=encode to "
                                                      f"predict them as unknown")
        self.unseen = unseen


def refuse_unseen(unseen: list[Unseen], policy: str) -> list[Unseen]:
    """`unseen` as warnings when `policy` is `encode`; refused (`UnseenCategoriesError`) when it is `refuse`. Any
    other policy is refused whatever the rows (a Python caller's, which no config schema checked): a misspelt
    `refuse` must not encode."""
    if policy not in ("encode", "refuse"):
        raise ConfigError(f"unseen_categories: must be 'encode' or 'refuse' (got {policy!r})")
    if unseen and policy == "refuse":
        raise UnseenCategoriesError(unseen)
    return unseen


def _finite(value: float) -> float:
    if not math.isfinite(value):
        from pydantic_core import PydanticCustomError

        reason = ("this field cannot be missing" if math.isnan(value)
                  else "numbers beyond 1.8e308, like 1e400, read as infinity")
        raise PydanticCustomError("finite_number", f"Input should be a finite number, not {value} ({reason})")
    return value


def _finite_time(value: int | float) -> int | float:
    return _finite(value) if isinstance(value, float) else value


def _numeric_time(value: Any) -> Any:
    """A run trained on numeric timestamps takes numbers: a date would be stepped by the numeric step."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("time_type", "Input should be a number: the run's timestamps are numbers, not dates")
    return value


def _date(value: Any) -> Any:
    """A run trained on dates takes ISO 8601 text: a number names no date without a unit, which is never guessed."""
    if not isinstance(value, str):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("date_type", "Input should be a date (ISO 8601 text, e.g. 2021-01-01T00:00:00): "
                                               "the run's timestamps are dates, not numbers")
    return value


def _date_text(value: Any) -> Any:
    """Dates in the run's data.timestamp_format; whole numbers (20200131 read from a CSV file) as their digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if not isinstance(value, str):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("date_type", "Input should be a date written in the run's data.timestamp_format")
    return value


def _finite_or_missing(value: float) -> float | None:
    """In a field the run imputes, NaN is a missing value like null; infinity is still refused."""
    return None if math.isnan(value) else _finite(value)


def _nan_as_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _not_boolean(value: Any) -> Any:
    """pydantic's float takes true as 1.0; a wrong type is refused instead (a flag is not a quantity)."""
    if isinstance(value, bool | np.bool_):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("number_type", "Input should be a number, not a boolean")
    return value


def _label(value: Any) -> Any:
    """A label as it came, a finite fraction included; 3.0 is the label 3, as a CSV column of whole numbers
    with gaps reads it (see `label_values`)."""
    if isinstance(value, float):
        return int(value) if _finite(value).is_integer() else value
    if not isinstance(value, bool | int | str):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("label_type", "Input should be a string, a number or true/false")
    return value


def _unicode(value: Any) -> Any:
    """A string with a lone surrogate (JSON `"\\ud800"`) cannot be encoded, compared or written as training's text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError("string_unicode", "Input should be Unicode text, not a lone surrogate "
                                                        "({code}) at position {position}",
                                      {"code": f"\\u{ord(err.object[err.start]):04x}",
                                       "position": err.start}) from None
    return value


def _boolean(value: Any) -> Any:
    """true/false, or a word pandas reads as one in a CSV; pydantic's own bool would take 1, "yes" or "on" too."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool | np.bool_):
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("bool_type", "Input should be true or false, as in training")
    return bool(value)

"""Checks of raw columns shared by the data steps and the tasks, and the bounded wording of their errors.

A data error is printed as one line, so whatever it quotes from the data (column names, cell
values, class labels, a library's message) is cut to a few items of bounded width here.

A column is *mostly numeric* when at least `MOSTLY_NUMERIC` of its non-missing cells parse as
numbers but not all of them do: one `abc` among 20,000 numbers is a typo, and taking the column
for text (a category with thousands of levels, or an input silently left out) would hide it.
Such a column is refused, naming the column, a few of the stray cells and where they are. So is
a column of numbers written for people rather than for a parser (`NUMBER_TEXT`): with thousands
separators (`"1,234"`, as spreadsheets quote them), a decimal comma (`"47,5"`), a currency sign
(`"$46,526"`), a unit (`"0.13 kW"`, `"12 %"`) or an accountant's parentheses for a minus sign
(`"(46526.45)"`). Read as text, it would become a category of a level per value (or, in a time series,
an input silently left out), and parsing it here alone would leave predict.py and the server, which see
the same text, to read it otherwise.

Two signs that a column is not what it looks like are only warned about, since either can be meant:
labels that differ only in case, surrounding spaces or invisible characters (`' yes'`, `'Yes'`,
`'yes\u200b'`), which are distinct classes or categories, and a column with a distinct value in
every row, which is an input, not a row id, unless the run is told so (`data.drop_columns`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from dl_core.errors import DataError, InputError

MOSTLY_NUMERIC = 0.9
LISTED = 5  # items quoted in a message before "... (N in all)"
WIDTH = 40  # characters quoted from one value
INFINITE = [np.inf, -np.inf]
MINUS = "+\\-\u2212"  # signs, the typographic minus among them
# A number written for people: a sign, a currency sign ($, US$, €), digits in groups of three (1,234 1.234 1 234
# 1'234; the first group does not start with 0) or not, a decimal part after a point or a comma, and a unit
# (12 %, 20 °C, 5 €, 0.13 kW, 63 years). Letters glued to the digits (2B, 3rd) make a code, not a unit.
NUMBER_TEXT = re.compile(
    rf"[{MINUS}]?\s*(?P<currency>[A-Za-z]{{0,2}}[^\w\s'.,{MINUS}])?\s*[{MINUS}]?"
    r"(?:[1-9]\d{0,2}(?P<group>[,.'\u00a0\u202f ])\d{3}(?:(?P=group)\d{3})*|\d+)(?:(?P<decimal>[.,])\d+)?"
    rf"(?P<unit>\s*[%\u2030\u00b0]\S{{0,3}}|\s*[^\w\s'.,{MINUS}%\u2030\u00b0]|\s+[^\W\d_][^\s\d]{{0,9}})?")
# The ways of writing a number NUMBER_TEXT tells apart, in the order a message names them.
SEPARATORS, DECIMAL_COMMA, CURRENCY, UNIT, TYPOGRAPHIC_MINUS, PARENTHESES = (
    "thousands separators", "a decimal comma", "a currency sign", "a unit", "a typographic minus",
    "parentheses for a minus sign")
# An accountant's negative number: `(46,526.45)` is -46526.45.
PARENTHESISED = re.compile(r"\(\s*([^()]*\d[^()]*?)\s*\)")


def listing(items: Iterable[Any], limit: int = LISTED) -> str:
    """'a, b, c' or 'a, b, c, ... (12 in all)': a message stays short however many items there are."""
    items = [str(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def short(value: Any, width: int = WIDTH) -> str:
    """repr of a value cut to `width` characters, on one line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= width else f"{text[:width - 3]}..."


def one_line(message: Any, width: int = 200) -> str:
    """A library's exception message, on one line and cut to `width` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= width else f"{text[:width - 3]}..."


def row_name(frame: pd.DataFrame, label: Any) -> str:
    """Where a row is in its file: 'line N' for a CSV read by `read_table` (the header is line 1),
    else 'row <index label>' as the prediction files number rows."""
    first_line = frame.attrs.get("first_line")
    if first_line is not None and isinstance(label, (int, np.integer)):
        return f"line {int(label) + first_line}"
    return f"row {label}"


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_boolean(series: pd.Series) -> bool:
    """Every present value is true or false: a bool column, or one with gaps (which pandas reads as objects)."""
    return pd.api.types.infer_dtype(series, skipna=True) == "boolean"


def refuse_stray_text(frame: pd.DataFrame, column: str, key: str, fix: str) -> None:
    """Refuse a mostly numeric column, or one of numbers written for people (see the module docstring),
    naming its stray cells and rows."""
    series = frame[column]
    if pd.api.types.is_numeric_dtype(series):
        return
    present = series.dropna()
    text = present[pd.to_numeric(present, errors="coerce").isna()]
    if text.empty:
        return
    ways = {value: number_text(value) for value in text.unique()}
    written = text[[bool(ways[value]) for value in text]]
    stray = text.drop(written.index)
    if len(stray) > (1.0 - MOSTLY_NUMERIC) * len(present):
        return
    if len(written) > len(stray):
        found = set().union(*(ways[value] for value in written.unique()))
        kinds = " and ".join(kind for kind in (SEPARATORS, DECIMAL_COMMA, CURRENCY, UNIT, TYPOGRAPHIC_MINUS,
                                               PARENTHESES)
                            if kind in found)
        commas = found == {SEPARATORS} and all("," in value for value in written)
        how = ("write them without separators, e.g. pandas.read_csv(path, thousands=',').to_csv(path, index=False)"
               if commas else "write them as plain numbers (digits and a decimal point, no thousands separators, "
                              "currency signs or units: name the unit in the column instead)")
        raise DataError(f"{key}: column {column!r} holds numbers with {kinds} in {len(written)} of {len(present)} "
                        f"cells: {_cells(frame, written)}; {how}")
    raise DataError(f"{key}: column {column!r} holds numbers except in {len(text)} of {len(present)} "
                    f"cells: {_cells(frame, text)}; {fix}")


def number_text(value: Any) -> frozenset[str]:
    """How a text cell writes a number for people (`NUMBER_TEXT`, or in an accountant's parentheses): the ways,
    empty when it is no such number."""
    enclosed = PARENTHESISED.fullmatch(value.strip()) if isinstance(value, str) else None
    if enclosed is not None:
        inner = enclosed[1]
        if inner.lstrip().startswith("-"):
            return frozenset()
        if not pd.isna(pd.to_numeric(inner, errors="coerce")):  # a plain number: `1.234` is no thousands here
            return frozenset({PARENTHESES})
        ways = number_text(inner)
        return frozenset({PARENTHESES, *ways}) if ways else frozenset()
    match = NUMBER_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or (match["group"] and match["group"] == match["decimal"]):
        return frozenset()
    symbols = [part.strip()[-1 if name == "currency" else 0] for name, part in match.groupdict().items()
               if name in ("currency", "unit") and part]
    if any(not symbol.isalpha() and symbol not in "%\u2030\u00b0" and unicodedata.category(symbol) != "Sc"
           for symbol in symbols):
        return frozenset()  # #3, 12) or <5: not a currency sign nor a unit
    ways = {SEPARATORS: bool(match["group"]), DECIMAL_COMMA: match["decimal"] == ",",
            CURRENCY: any(unicodedata.category(symbol) == "Sc" for symbol in symbols),
            UNIT: bool(match["unit"]) and unicodedata.category(match["unit"].strip()[0]) != "Sc",
            TYPOGRAPHIC_MINUS: "\u2212" in value}
    return frozenset(way for way, used in ways.items() if used)


def _cells(frame: pd.DataFrame, values: pd.Series) -> str:
    return listing((f"{short(value)} ({row_name(frame, label)})" for label, value in values.items()), limit=3)


def unique_per_row(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The whole-number or text columns with a distinct value in every row: row numbers, ids or names, which a
    model learns nothing general from (a text one is a category seen once). A column of floats counts when
    every value is whole (0.0, 1.0, ...: a row number a spreadsheet wrote as a float); fractional numbers are
    left out, being distinct by nature."""
    def id_like(series: pd.Series) -> bool:
        if len(series) < 2 or series.isna().any() or not series.is_unique:
            return False
        kind = pd.api.types.infer_dtype(series, skipna=True)
        return kind in ("integer", "string") or (kind == "floating" and bool(np.all(np.mod(series, 1.0) == 0.0)))

    return [c for c in columns if id_like(frame[c])]


def near_duplicate_labels(series: pd.Series) -> list[list[str]]:
    """Groups of distinct labels that are one label but for case, surrounding spaces and invisible characters
    (`' yes'`, `'Yes'`, `'yes\u200b'`)."""
    groups: dict[str, list[str]] = {}
    for value in label_values(series).dropna().unique():
        groups.setdefault(label_key(value), []).append(value)
    return [sorted(group) for group in groups.values() if len(group) > 1]


def label_key(label: str) -> str:
    """What a reader sees of a label: its compatibility form (NFKC: a full-width `\uff32` is `R`) without invisible
    format characters (a zero-width space, a soft hyphen, a byte-order mark), surrounding spaces or case."""
    seen = "".join(c for c in unicodedata.normalize("NFKC", label) if unicodedata.category(c) != "Cf")
    return seen.strip().casefold()


def infinite_as_missing(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The frame with +-inf in numeric `columns` turned into NaN, and the count per column that had any.

    An infinity (a division by zero upstream, or 1e400 overflowing) carries no more information
    than a missing value, so it gets what a missing value gets: a fill, an imputation or a refusal.
    """
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    counts = frame[numeric].isin(INFINITE).sum()
    counts = counts[counts > 0]
    if counts.empty:
        return frame, counts
    return frame.assign(**{c: frame[c].replace(INFINITE, np.nan) for c in counts.index}), counts


def counts_listing(counts: pd.Series, infinite: pd.Series | None = None) -> str:
    """'price: 3 (2 infinite), sales: 1', bounded like `listing`."""
    def entry(column: str, n: int) -> str:
        inf = 0 if infinite is None else int(infinite.get(column, 0))
        return f"{column}: {n}" + (f" ({inf} infinite)" if inf else "")

    return listing(entry(c, int(n)) for c, n in counts.items())


def label_values(series: pd.Series) -> pd.Series:
    """Labels as strings (3.0 and 3 are one label, as a CSV column of whole numbers reads them), missing as NaN:
    the values of categorical features and of class targets."""
    def text(value: Any) -> Any:
        if pd.isna(value):
            return np.nan
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return series.astype(object).map(text)


def check_in_range(values: np.ndarray, columns: list[str]) -> None:
    """A finite value of new rows can still overflow float32 once scaled (1e39, say) and reach the model as
    infinity: refuse the columns where that happened."""
    bad = [name for name, finite in zip(columns, np.isfinite(values).all(axis=0), strict=False) if not finite]
    if bad:
        raise InputError((), f"column(s) {bad} hold values too large for the model (beyond float32 once "
                             f"scaled); send values of the magnitude the run was trained on")

"""The raw-column checks the data steps and the tasks share: numbers written for people, labels a reader
cannot tell apart, columns that number the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dl_core.checks import label_key, near_duplicate_labels, number_text, refuse_stray_text, unique_per_row
from dl_core.errors import DataError


@pytest.mark.parametrize(("text", "ways"), [
    ("1,234", {"thousands separators"}),
    ("-12,345.6", {"thousands separators"}),
    ("1.234.567", {"thousands separators"}),
    ("1 234 567", {"thousands separators"}),
    ("1'234.5", {"thousands separators"}),
    ("47,5", {"a decimal comma"}),
    ("-0,13", {"a decimal comma"}),
    ("0,130", {"a decimal comma"}),  # a first group of three never starts with 0
    ("1.234,56", {"thousands separators", "a decimal comma"}),
    ("$46,526", {"a currency sign", "thousands separators"}),
    ("US$5", {"a currency sign"}),
    ("-$5", {"a currency sign"}),
    ("12 €", {"a currency sign"}),
    ("0.13 kW", {"a unit"}),
    ("63 years", {"a unit"}),
    ("12%", {"a unit"}),
    ("20 °C", {"a unit"}),
    ("\u22125", {"a typographic minus"}),
    ("(46526.45)", {"parentheses for a minus sign"}),
    ("(5)", {"parentheses for a minus sign"}),
    ("($1,234)", {"parentheses for a minus sign", "a currency sign", "thousands separators"}),
])
def test_numbers_written_for_people_are_recognised_with_how_they_are_written(text, ways):
    assert number_text(text) == ways


@pytest.mark.parametrize("text", ["2B", "3rd", "5kg", "1.2.3", "10.0.0.1", "#3", "12)", "<5", "(a5)", "(-5)", "1.234.5",
                                  "12 Main St", "abc", "?", "-", "", "A12"])
def test_codes_versions_and_words_are_no_numbers(text):
    """Letters glued to the digits make a code (an apartment 2B), not a unit: such columns stay categories."""
    assert number_text(text) == frozenset()


def test_a_column_of_a_few_numbers_written_otherwise_names_the_way_and_the_cells():
    frame = pd.DataFrame({"load": [f"{v:.2f}" for v in np.linspace(0, 1, 40)]})
    frame.loc[[3, 30], "load"] = ["0,5", "0,75"]
    with pytest.raises(DataError, match=r"^k: column 'load' holds numbers with a decimal comma in 2 of 40 cells: "
                                        r"'0,5' \(row 3\), '0,75' \(row 30\); write them as plain numbers"):
        refuse_stray_text(frame, "load", "k", "fix")
    codes = pd.DataFrame({"flat": ["2B", "3A", "10C", "4"] * 10})  # mostly codes: a category, no refusal
    refuse_stray_text(codes, "flat", "k", "fix")


def test_labels_are_compared_as_a_reader_sees_them():
    assert label_key(" Yes\u200b") == label_key("yes") == label_key("\uff39es") == label_key("yes\xa0")
    assert label_key("yes") != label_key("y es")
    series = pd.Series(["rome", "rome\u200b", "Oslo", "oslo", "paris", "par\u00adis"])
    assert near_duplicate_labels(series) == [["rome", "rome\u200b"], ["Oslo", "oslo"], ["paris", "par\u00adis"]]


def test_a_float_column_of_whole_row_numbers_is_id_like_and_fractional_numbers_are_not():
    n = 50
    frame = pd.DataFrame({"rowid": np.arange(n, dtype=float), "x": np.random.default_rng(0).normal(size=n),
                          "count": np.arange(n) % 7 * 1.0, "half": np.arange(n) + 0.5})
    assert unique_per_row(frame, frame.columns) == ["rowid"]

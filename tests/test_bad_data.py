"""Bad data files and data keys: one bounded line naming the key and the fix, never a traceback.

The unit tests call the data step directly; the CLI tests run `train.py` and `predict.py` as a user
does and check the whole contract: exit status 2, one stderr line `error: <key>: ...`, no traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dl_core.data import build_bundle
from dl_core.data.loading import read_table
from dl_core.errors import ConfigError, DataError
from dl_core.runs.config import validate
from dl_core.runs.pipeline import train
from helpers import TINY, run_entry

MAX_MESSAGE = 400  # characters: a data error is one line of a terminal or two, never a dump of the data


def series_frame(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
                         "load": rng.normal(size=n), "OT": rng.normal(size=n)})


def table_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"income": rng.normal(3, 1, n), "rooms": rng.integers(1, 9, n),
                         "coast": rng.choice(["yes", "no"], n), "price": rng.normal(2, 0.5, n)})


def write(tmp_path: Path, frame: pd.DataFrame | None, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if frame is None:
        path.write_bytes(b"")
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("content", "message"), [
    (b"", r"^data.path: .*data.csv is empty \(0 bytes\); pass a file with a header row and data rows$"),
    (b"a,b,c\n", r"^data.path: .*data.csv has no data rows \(columns: a, b, c\)$"),
    (b"\n\n  \n", r"^data.path: cannot read .*data.csv as csv \(No columns to parse from file\)"),
    (b'a,b\n1,2\n3,"4\n', r"^data.path: cannot read .*data.csv as csv \(Error tokenizing data"),
])
def test_unreadable_files_name_data_path(tmp_path, content, message):
    (tmp_path / "data.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(tmp_path / "data.csv")


def test_a_broken_parquet_file_names_data_path(tmp_path):
    """pyarrow is optional: without it, reading parquet is refused by name instead of an ImportError."""
    (tmp_path / "data.parquet").write_bytes(b"not a parquet file")
    try:
        import pyarrow  # noqa: F401
        message = r"^data.path: cannot read .*data.parquet as parquet \("
    except ImportError:
        message = r"^data.path: reading .parquet files needs pyarrow, which is not installed"
    with pytest.raises(DataError, match=message):
        read_table(tmp_path / "data.parquet")


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.target_column=date"], r"^data.target_column: 'date' is the timestamp column \(data.timestamp_column\)"),
    (["data.target_column=[OT,OT]"], r"^data.target_column: lists 'OT' twice; name each column once$"),
    (["data.target_column=shop", "data.entity_columns=[shop]"], r"^data.target_column: 'shop' is an entity column"),
    (["data.feature_columns=[load,load]"], r"^data.feature_columns: lists 'load' twice"),
    (["data.entity_columns=[shop,shop]"], r"^data.entity_columns: lists 'shop' twice"),
    (["data.drop_columns=[OT]"], r"^data.drop_columns: 'OT' is also in data.target_column; a column plays one part"),
    (["data.drop_columns=[date]"], r"^data.drop_columns: 'date' is also in data.timestamp_column"),
    (["data.feature_columns=[load]", "data.drop_columns=[load]"], r"^data.drop_columns: 'load' is also in data\.f"),
])
def test_time_series_column_roles_are_checked_by_key(make_cfg, overrides, message):
    cfg = make_cfg("data=csv_timeseries", "data.path=x.csv", "data.timestamp_column=date", "data.target_column=OT",
                   *overrides)
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.feature_columns=[income,rooms,income]"], r"^data.feature_columns: lists 'income' twice"),
    (["data.categorical_columns=[coast,coast]"], r"^data.categorical_columns: lists 'coast' twice"),
    (["data.categorical_columns=[coast,price]"], (r"^data.categorical_columns: lists the target 'price', which "
                                                 r"would make it an input")),
    (["data.feature_columns=[income,price,coast]"], (r"^data.feature_columns: lists the target 'price', which "
                                                    r"would make it an input; leave it out$")),
    (["data.drop_columns=[id,id]"], r"^data.drop_columns: lists 'id' twice"),
    (["data.drop_columns=[price]"], (r"^data.drop_columns: 'price' is also in data.target_column; a column plays "
                                     r"one part, list it once$")),
    (["data.categorical_columns=[coast]", "data.drop_columns=[coast]"], r"'coast' is also in data.categorical_col"),
])
def test_tabular_column_roles_are_checked_by_key(make_cfg, overrides, message):
    cfg = make_cfg("data=csv_tabular", "data.path=x.csv", "data.target_column=price", "data.task=regression",
                   *overrides)
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.parametrize("include", ["true", "false"])
def test_a_time_series_target_listed_among_the_features_is_refused(make_cfg, tmp_path, include):
    """It was dropped from the list without a word (with data.include_target_in_inputs=false: not an input)."""
    cfg = make_cfg("data=csv_timeseries", f"data.path={write(tmp_path, series_frame())}",
                   "data.timestamp_column=date", "data.target_column=OT", "data.feature_columns=[load,OT]",
                   f"data.include_target_in_inputs={include}")
    with pytest.raises(ConfigError) as err:
        build_bundle(cfg.data)
    assert str(err.value) == (f"data.feature_columns: lists the target 'OT'; a target's past is an input by "
                              f"data.include_target_in_inputs (now {include}), not by this list: leave it out")


@pytest.mark.parametrize(("cell", "ways"), [
    (lambda v: f"{v:.2f}".replace(".", ","), "a decimal comma"),
    (lambda v: f"${v * 1000:,.0f}", "thousands separators and a currency sign"),
    (lambda v: f"{v:.2f} kW", "a unit"),
    (lambda v: f"({v:.3f})", "parentheses for a minus sign"),  # an accountant's negatives
])
@pytest.mark.parametrize(("frame", "column", "keys"), [
    (table_frame, "income", ["data=csv_tabular", "data.target_column=price", "data.task=regression"]),
    (series_frame, "load", ["data=csv_timeseries", "data.timestamp_column=date", "data.target_column=OT"]),
])
def test_numbers_written_for_people_are_refused_by_column_not_made_a_category_or_left_out(tmp_path, make_cfg, frame,
                                                                                          column, keys, cell, ways):
    """A table made the column a category of a level per number; a time series left it out of the inputs
    (feature_columns=null takes the numeric columns); both without a word."""
    rows = frame()
    rows[column] = [cell(v) for v in np.random.default_rng(1).uniform(20, 90, len(rows))]
    with pytest.raises(DataError) as err:
        build_bundle(make_cfg(*keys, f"data.path={write(tmp_path, rows)}").data)
    assert str(err.value).startswith(f"data.feature_columns: column '{column}' holds numbers with {ways} in "
                                     f"{len(rows)} of {len(rows)} cells: {rows.loc[0, column]!r} (line 2), ")
    assert str(err.value).endswith("; write them as plain numbers (digits and a decimal point, no thousands "
                                   "separators, currency signs or units: name the unit in the column instead)")


WIDE = [f"column_with_a_long_name_{i}" for i in range(300)]


def _many_missing(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    return frame, ["data=csv_tabular", "data.task=regression", f"data.feature_columns=[{','.join(WIDE)}]"]


def _many_text(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    wide = frame.assign(**dict.fromkeys(WIDE, "text"))
    return wide, ["data=csv_tabular", "data.task=regression", "data.categorical_columns=[coast]"]


def _long_label(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    return frame.assign(price="x" * 10_000), ["data=csv_tabular", "data.task=regression"]


def _long_entity(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    series = series_frame(20).assign(shop="s" * 10_000)
    return series, ["data=csv_timeseries", "data.timestamp_column=date", "data.target_column=OT",
                    "data.entity_columns=[shop]", "data.sequence_length=30"]


def _many_text_series(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    series = series_frame().assign(**dict.fromkeys(WIDE, "text"))
    return series, ["data=csv_timeseries", "data.timestamp_column=date", "data.target_column=OT",
                    f"data.feature_columns=[{','.join(WIDE)}]"]


def _many_gaps(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    gaps = pd.DataFrame({c: np.where(np.arange(80) == 3, np.nan, 1.0) for c in WIDE})
    series = pd.concat([series_frame(), gaps], axis=1)
    return series, ["data=csv_timeseries", "data.timestamp_column=date", "data.target_column=OT"]


@pytest.mark.parametrize("make", [_many_missing, _many_text, _long_label, _long_entity, _many_text_series, _many_gaps])
def test_every_data_error_stays_one_short_line(make_cfg, tmp_path, make):
    frame, overrides = make(table_frame())
    target = [] if any("target_column" in o for o in overrides) else ["data.target_column=price"]
    cfg = make_cfg(*overrides, *target, f"data.path={write(tmp_path, frame)}")
    with pytest.raises(DataError) as err:
        build_bundle(cfg.data)
    message = str(err.value)
    assert len(message) < MAX_MESSAGE and "\n" not in message, message


def _empty_file(tmp_path: Path) -> list[str]:
    return ["data=csv_timeseries", f"data.path={write(tmp_path, None)}", "data.target_column=OT"]


def _infinite_values(tmp_path: Path) -> list[str]:
    frame = series_frame()
    frame.loc[[4, 9], "load"] = np.inf
    frame.loc[12, "OT"] = -np.inf
    return ["data=csv_timeseries", f"data.path={write(tmp_path, frame)}", "data.timestamp_column=date",
            "data.target_column=OT"]


def _target_without_values(tmp_path: Path) -> list[str]:
    return ["data=csv_timeseries", f"data.path={write(tmp_path, series_frame().assign(OT=np.nan))}",
            "data.timestamp_column=date", "data.target_column=OT", "data.fillna=ffill"]


def _stray_text_cell(tmp_path: Path) -> list[str]:
    frame = table_frame().astype({"income": object})
    frame.loc[30, "income"] = "abc"
    return ["data=csv_tabular", f"data.path={write(tmp_path, frame)}", "data.target_column=price",
            "data.task=regression"]


def _continuous_classes(tmp_path: Path) -> list[str]:
    """Whole numbers (as California's house values) pass for labels: the stratified split used to quote every class."""
    frame = table_frame().assign(price=np.random.default_rng(0).integers(100, 5000, 200) * 100.0)
    return ["data=csv_tabular", f"data.path={write(tmp_path, frame)}", "data.target_column=price",
            "data.task=classification"]


MODELS = {"csv_timeseries": ["model=lstm", "model.hidden_dim=8", "data.sequence_length=6"],
          "csv_tabular": ["model=ft_transformer", "model.n_blocks=1", "model.d_block=8", "model.attention_n_heads=2"]}


@pytest.mark.parametrize(("case", "key", "says"), [
    (_empty_file, "data.path", "is empty (0 bytes)"),
    (_infinite_values, "data.fillna", "load: 2 (2 infinite), OT: 1 (1 infinite)"),
    (_target_without_values, "data.target_column", "column 'OT' has no values"),
    (_stray_text_cell, "data.feature_columns", "'abc' (line 32)"),
    (_continuous_classes, "data.task", "looks continuous; use data.task=regression"),
])
def test_train_py_refuses_bad_data_in_one_line(tmp_path, case, key, says):
    overrides = case(tmp_path)
    model = MODELS[overrides[0].removeprefix("data=")]
    done = run_entry("train.py", *overrides, *model, "trainer.max_epochs=1", "hardware=cpu1",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}: "), done.stderr[-3000:]
    assert says in lines[0] and len(lines[0]) < MAX_MESSAGE


def test_predict_py_refuses_an_empty_file_in_one_line(make_cfg, tmp_path):
    run_dir = tmp_path / "run"
    train(make_cfg(*TINY, "trainer.max_epochs=1"))
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={write(tmp_path, None)}", "threads=1",
                     cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [(f"error: data.path: {tmp_path / 'data.csv'} is empty (0 bytes); "
                                                f"pass a file with a header row and data rows")]

"""Reading a data file: a path that is no readable file is one line naming `data.path` and what it is.

Bad contents of a file are test_bad_data.py's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dl_core.data.loading import read_table
from dl_core.errors import DataError
from dl_core.runs.pipeline import train
from helpers import DATA, TINY
from unprivileged import require_unprivileged, run_unprivileged

CSV = ["data=csv_timeseries", "data.timestamp_column=date", "data.target_column=OT", "trainer.max_epochs=1",
       "hardware=cpu1"]


def test_a_directory_is_named_a_directory_not_a_missing_file(tmp_path):
    with pytest.raises(DataError) as err:
        read_table(tmp_path)
    assert str(err.value) == f"data.path: {tmp_path} is a directory, not a file; pass data.path=/path/to/file.csv"


def unreadable(tmp_path, locked: str):
    """A data file that this user cannot read: itself (`file`) or its folder (`folder`) has mode 000."""
    require_unprivileged(tmp_path)
    folder = tmp_path / "data"
    folder.mkdir()
    data = folder / "ETTh1.csv"
    data.write_bytes((DATA / "ETTh1.csv").read_bytes()[:20000])
    (data if locked == "file" else folder).chmod(0)
    return data


def refusal(data) -> str:
    return (f"error: data.path: cannot read {data} (permission denied); make it readable (chmod) or pass another "
            f"data.path")


@pytest.mark.slow
def test_an_unreadable_data_file_is_one_line_for_train_and_predict(make_cfg, tmp_path):
    """It was a PermissionError traceback, and train.py left its run dir behind."""
    data = unreadable(tmp_path, "file")
    run_dir = tmp_path / "run"
    trained = run_unprivileged("train.py", *CSV, f"data.path={data}", f"hydra.run.dir={run_dir}", timeout=120)
    assert (trained.returncode, trained.stderr.strip()) == (2, refusal(data))
    assert not run_dir.exists()

    train(make_cfg(*TINY, "trainer.max_epochs=1", run="trained"))
    predicted = run_unprivileged("predict.py", f"run_dir={tmp_path / 'trained'}", f"data.path={data}", "threads=1",
                                 timeout=120)
    assert (predicted.returncode, predicted.stderr.strip()) == (2, refusal(data))


def test_a_data_file_in_an_unreadable_folder_is_one_line(tmp_path):
    data = unreadable(tmp_path, "folder")
    trained = run_unprivileged("train.py", *CSV, f"data.path={data}", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    assert (trained.returncode, trained.stderr.strip()) == (2, refusal(data))


def test_a_parquet_file_trains_as_the_same_rows_in_a_csv_file(make_cfg, tmp_path):
    """Read with pyarrow: the dates are dates already, the numbers the same numbers."""
    frame = pd.read_csv(DATA / "ETTh1.csv", nrows=600)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.assign(date=pd.to_datetime(frame["date"])).to_parquet(tmp_path / "rows.parquet")
    assert pd.api.types.is_datetime64_any_dtype(read_table(tmp_path / "rows.parquet")["date"])
    tiny = ["data.sequence_length=24", "model.hidden_dim=8", "model.num_layers=1", "trainer=tiny"]
    scores = [train(make_cfg(*CSV, *tiny, f"data.path={tmp_path / f'rows.{kind}'}", run=kind))
              for kind in ("csv", "parquet")]
    assert scores[0] == scores[1]


def test_a_header_that_names_a_column_twice_is_refused(tmp_path):
    """pandas renamed the second `age` to `age.1`: training used both, and the server then asked every request
    for a field `age.1` that the file's header does not have."""
    (tmp_path / "data.csv").write_text("age,age,city,,\n63,41,rome,1,2\n")
    with pytest.raises(DataError) as err:
        read_table(tmp_path / "data.csv")
    assert str(err.value) == (f"data.path: the header of {tmp_path / 'data.csv'} names column(s) 'age' more than "
                              f"once; give each column its own name")


def test_only_empty_cells_are_missing_in_text_and_na_words_in_numbers(tmp_path, caplog):
    """pandas read the country code NA (Namibia) as a missing value, a third of the rows of the category,
    while the server reads a sent "NA" as the text it is. A column of numbers (or true/false) written with
    NA for missing, as R writes them, still reads them as missing."""
    (tmp_path / "data.csv").write_text("country,income,member,note\n"
                                       "NA,1.5,True,null\nFR,NA,NA,x\n,2.5,False,None\nNA,nan,True,y\n")
    with caplog.at_level("WARNING", logger="dl_core.data.loading"):
        frame = read_table(tmp_path / "data.csv")
    assert frame["country"].tolist()[:2] == ["NA", "FR"] and pd.isna(frame.loc[2, "country"])
    assert frame["income"].dtype == np.float64 and frame["income"].isna().tolist() == [False, True, False, True]
    assert frame["member"].tolist()[::2] == [True, False] and pd.isna(frame.loc[1, "member"])
    assert frame["note"].tolist() == ["null", "x", "None", "y"]
    assert ("data.path: column 'country' holds 'NA' in 2 cell(s), read as text (a category or class of that name), "
            "not as missing values; if they are missing values, leave those cells empty") in caplog.text
    assert "column 'note' holds 'null' in 1 cell(s), 'None' in 1 cell(s), read as text" in caplog.text
    assert "'income'" not in caplog.text and "'member'" not in caplog.text

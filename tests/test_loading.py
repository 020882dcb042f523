"""Reading a data file: a path that is no readable file is one line naming `data.path` and what it is.

Bad contents of a file are test_bad_data.py's."""

from __future__ import annotations

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

"""The notebook API composes like the CLI and runs the same training, from a file or a DataFrame; a loaded run
predicts and scores DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dl_core
import dl_core.data
from dl_core.errors import ConfigError, DataError, InputError
from helpers import TINY


def test_compose_and_run_match_the_cli_pipeline(tmp_path):
    cfg = dl_core.compose(*TINY, "trainer.max_epochs=2", run_dir=tmp_path / "api")
    assert cfg.data.name == "synthetic" and cfg.model.hidden_dim == 16
    result = dl_core.run(cfg)
    assert result.run_dir == tmp_path / "api"
    assert result.metrics["epochs"] == 2 and result.objective == result.metrics["val_loss"]
    assert (result.run_dir / "checkpoints" / "best.ckpt").is_file()


def test_load_run_predicts_what_the_run_predicted(tmp_path):
    result = dl_core.run(dl_core.compose(*TINY, "trainer.max_epochs=1", run_dir=tmp_path / "api"))
    cfg = dl_core.compose(*TINY)
    frame = dl_core.data.load_frame(cfg.data)
    predicted = dl_core.load_run(result.run_dir).predict(frame)
    test = pd.read_csv(result.run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    merged = test.merge(predicted, on=["timestamp", "entity", "step", "target"], suffixes=("", "_reloaded"))
    assert len(merged) == len(test)
    np.testing.assert_allclose(merged["predicted_reloaded"], merged["predicted"], rtol=1e-6)


def table(n_rows: int = 600) -> pd.DataFrame:
    """The built-in synthetic table (numbers, categories, a regression target) as a DataFrame."""
    return dl_core.data.load_frame(dl_core.compose("data=synthetic_tabular", f"data.generator.n_rows={n_rows}").data)


TABLE_RUN = ["data=csv_tabular", "data.target_column=target", "data.task=regression", "model=mlp",
             "model.n_blocks=1", "model.d_block=16", "trainer=tiny", "trainer.max_epochs=2", "hardware=cpu1"]


def test_a_run_trains_on_a_dataframe_as_on_the_same_rows_in_a_file(tmp_path):
    """The frame is kept as a parquet file under paths.log_dir/frames, named by its content, which the run's
    config names as data.path; the same frame again is the same file."""
    frame = table()
    frame.to_csv(tmp_path / "rows.csv", index=False)
    from_file = dl_core.run(dl_core.compose(*TABLE_RUN, f"data.path={tmp_path / 'rows.csv'}",
                                            run_dir=tmp_path / "file"))
    cfg = dl_core.compose(*TABLE_RUN, f"paths.log_dir={tmp_path}", run_dir=tmp_path / "frame")
    from_frame = dl_core.run(cfg, data=frame)
    assert cfg.data.path is None  # the caller's config is left as it was
    assert from_frame.metrics["test_rmse"] == from_file.metrics["test_rmse"]
    (kept,) = (tmp_path / "frames").glob("*.parquet")
    saved = dl_core.load_run(from_frame.run_dir).config
    assert saved["data"]["path"] == str(kept)
    pd.testing.assert_frame_equal(pd.read_parquet(kept), frame)
    dl_core.run(dl_core.compose(*TABLE_RUN, "trainer.max_epochs=1", f"paths.log_dir={tmp_path}",
                                run_dir=tmp_path / "again"), data=frame)
    assert list((tmp_path / "frames").glob("*.parquet")) == [kept]


def test_a_forecaster_trains_on_a_dataframe_with_dates_as_on_a_file(tmp_path):
    """Timestamps as datetimes in the frame, as text in the file: the same run."""
    cfg = dl_core.compose(*TINY)
    frame = dl_core.data.load_frame(cfg.data)
    assert pd.api.types.is_datetime64_any_dtype(frame["timestamp"])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    series = [*(o for o in TINY if not o.startswith("data.generator")), "data=csv_timeseries",
              "data.timestamp_column=timestamp", "data.target_column=target",
              "data.entity_columns=[series_id]", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"]
    from_file = dl_core.run(dl_core.compose(*series, f"data.path={tmp_path / 'rows.csv'}", run_dir=tmp_path / "f"))
    from_frame = dl_core.run(dl_core.compose(*series, run_dir=tmp_path / "df"), data=frame)
    assert from_frame.metrics["test_mse"] == from_file.metrics["test_mse"]


def test_a_dataframe_gets_a_files_errors(tmp_path):
    frame = table(200).drop(columns="target")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(DataError) as from_file:
        dl_core.run(dl_core.compose(*TABLE_RUN, f"data.path={tmp_path / 'rows.csv'}", run_dir=tmp_path / "file"))
    with pytest.raises(DataError) as from_frame:
        dl_core.run(dl_core.compose(*TABLE_RUN, f"paths.log_dir={tmp_path}", run_dir=tmp_path / "frame"), data=frame)
    assert str(from_frame.value) == str(from_file.value)
    assert str(from_frame.value).startswith("data.target_column: column(s) ['target'] not in the data")


@pytest.mark.parametrize(("overrides", "make", "error", "message"), [
    (["data=synthetic_tabular"], table, ConfigError, r"^data: a DataFrame takes the place of .*\(source synthetic\)"),
    (["data.path=rows.csv"], table, ConfigError, r"^data\.path: set \(rows\.csv\) and a DataFrame given"),
    ([], lambda: table().iloc[:0], DataError, r"^data: the DataFrame has no rows"),
    ([], lambda: table().set_index("target"), DataError, r"^data: the DataFrame's index \(named 'target', of float64"),
    ([], lambda: table().set_index(pd.date_range("2024", periods=600)), DataError, r"^data: the DataFrame's index"),
    ([], lambda: table().rename(columns={"target": 3}), DataError, r"^data: column names must be text, .*\(got 3\)"),
    ([], lambda: table().assign(num_0=[1, "a"] * 300), DataError, r"^data: the DataFrame cannot be kept .*num_0"),
    ([], lambda: [1, 2], ConfigError, r"^data: expected a pandas DataFrame, got list"),
], ids=["no-file-source", "path-too", "empty", "named-index", "date-index", "numbered-column", "mixed-types",
        "not-a-frame"])
def test_a_dataframe_the_run_cannot_take_is_refused_before_anything_is_written(tmp_path, overrides, make, error,
                                                                               message):
    cfg = dl_core.compose(*TABLE_RUN, f"paths.log_dir={tmp_path}", *overrides, run_dir=tmp_path / "run")
    with pytest.raises(error, match=message):
        dl_core.run(cfg, data=make())
    assert not (tmp_path / "run").exists() and not list((tmp_path / "frames").glob("*.parquet"))


def test_a_run_scores_labelled_rows_of_a_dataframe(tmp_path):
    """Its own test rows give its test metrics; rows without a target are not scored; a frame without the target
    column, with text targets, or with a class the run never saw is refused naming the column."""
    frame = table()
    result = dl_core.run(dl_core.compose(*TABLE_RUN, f"paths.log_dir={tmp_path}", run_dir=tmp_path / "run"),
                         data=frame)
    run = dl_core.load_run(result.run_dir)
    test = frame.loc[pd.read_csv(result.run_dir / "predictions_test.csv")["row"]]
    scores = run.evaluate(test)
    assert scores["n_samples"] == len(test)
    for name in ("rmse", "mae", "mse", "r2"):  # the same functions, rows and batches: to float rounding
        assert scores[name] == pytest.approx(result.metrics[f"test_{name}"], rel=1e-9), name
    unlabelled = test.assign(target=[np.nan, *test["target"].iloc[1:]])
    assert run.evaluate(unlabelled)["n_samples"] == len(test) - 1
    with pytest.raises(InputError, match=r"target column\(s\) \['target'\] missing"):
        run.evaluate(test.drop(columns="target"))
    with pytest.raises(InputError, match=r"target column 'target' holds 1 value\(s\) that are not numbers \(e\.g\. "
                                         r"'n/a'\)"):
        run.evaluate(test.astype({"target": object}).assign(target=["n/a", *test["target"].iloc[1:]]))


def test_a_classifier_refuses_to_score_a_class_it_never_saw(tmp_path):
    frame = table().assign(target=lambda f: np.where(f["target"] > f["target"].median(), "high", "low"))
    result = dl_core.run(dl_core.compose(*TABLE_RUN, "data.task=classification", f"paths.log_dir={tmp_path}",
                                         run_dir=tmp_path / "run"), data=frame)
    run = dl_core.load_run(result.run_dir)
    test = frame.loc[pd.read_csv(result.run_dir / "predictions_test.csv")["row"]]
    assert run.evaluate(test)["accuracy"] == pytest.approx(result.metrics["test_accuracy"], rel=1e-12)
    with pytest.raises(InputError, match=r"target column 'target' holds 1 class\(es\) the run was not trained on "
                                         r"\('medium'; its classes: 'high', 'low'\)"):
        run.evaluate(test.assign(target=["medium", *test["target"].iloc[1:]]))


def test_a_loaded_run_warns_about_categories_no_training_row_had_or_refuses_them(tmp_path, caplog):
    """predict.py and the server said so; `load_run(...).predict(frame)` predicted them as unknown without a word.
    Now it logs predict.py's warning line per column, and `unseen_categories="refuse"` refuses them as predict.py
    does."""
    frame = table()
    result = dl_core.run(dl_core.compose(*TABLE_RUN, f"paths.log_dir={tmp_path}", run_dir=tmp_path / "run"),
                         data=frame)
    run = dl_core.load_run(result.run_dir)
    rows = frame.head(6).drop(columns="target").reset_index(drop=True)
    known = rows.loc[0, "cat_0"]
    rows.loc[[2, 3, 5], "cat_0"] = ["zzz", known.upper(), "zzz"]
    said = (f"column 'cat_0' has categories that training never saw in 3 row(s), read as unknown (as a missing value "
            f"is): 'zzz', '{known.upper()}' (training has '{known}')")
    caplog.clear()
    with caplog.at_level("WARNING", logger="dl_core"):
        assert len(run.predict(rows)) == 6
    assert [record.getMessage() for record in caplog.records] == [
        f"the rows: {said}; pass unseen_categories=\"refuse\" to refuse them"]
    with pytest.raises(InputError) as refused:
        run.predict(rows, unseen_categories="refuse")
    assert str(refused.value) == (f"rows[2]['cat_0']: {said}; send categories the run was trained on, or pass "
                                  f"unseen_categories=encode to predict them as unknown")
    caplog.clear()
    with caplog.at_level("WARNING", logger="dl_core"):
        run.predict(rows.head(2), unseen_categories="refuse")  # rows of known categories only
    assert caplog.records == []
    with pytest.raises(ConfigError, match=r"^unseen_categories: must be 'encode' or 'refuse' \(got 'refused'\)$"):
        run.predict(rows, unseen_categories="refused")

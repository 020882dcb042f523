"""Tabular data step: encoding, train-only fitting, stratified splits, learning, and mismatch messages."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data import build_bundle
from dl_core.data.loading import read_table
from dl_core.data.synthetic_tabular import generate_table
from dl_core.data.tabular import RESERVED_CATEGORY, TabularPreprocessor
from dl_core.errors import ConfigError, DataError, InputError
from dl_core.runs.pipeline import train
from dl_core.serving.load import TARGETS
from dl_core.task import Regression
from helpers import TINY_TABULAR


def _csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "z": rng.exponential(size=n),
                         "color": rng.choice(["red", "green", "blue"], n), "y": rng.normal(size=n)})


def test_unseen_and_missing_categories_map_to_the_reserved_index():
    train_rows = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "color": ["red", "green", "red", "green"],
                               "y": [0.0, 1.0, 2.0, 3.0]})
    prep = TabularPreprocessor("y", ["x"], ["color"], "standard", "median").fit(train_rows)
    new = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "color": ["green", "purple", None, "red"]})
    _, x_cat = prep.transform_features(new)
    assert x_cat.dtype == np.int64 and x_cat.shape == (4, 1)
    assert x_cat[1, 0] == RESERVED_CATEGORY and x_cat[2, 0] == RESERVED_CATEGORY
    assert {x_cat[0, 0], x_cat[3, 0]} == {1, 2}
    assert prep.cat_cardinalities == [3]


def test_preprocessor_contract_for_prediction(tmp_path):
    prep = TabularPreprocessor("y", ["x", "z"], ["color"], "quantile", "median").fit(_table())
    restored = pickle.loads(pickle.dumps(prep))
    task = pickle.loads(pickle.dumps(Regression(target_unit=10.0).fit(_table()["y"])))
    frame = _table(5, seed=1).drop(columns="y")
    frame.loc[0, "x"] = np.nan
    x_num, x_cat = restored.transform_features(frame)
    assert x_num.dtype == np.float32 and x_num.shape == (5, 2) and np.isfinite(x_num).all()
    assert x_cat.dtype == np.int64 and x_cat.shape == (5, 1)
    assert TARGETS[type(task)](task) == {"classes": [], "quantiles": []} and task.d_out == 1
    y = _table()["y"].to_numpy()[:5]
    scaled = task.encode(pd.Series(y))
    assert scaled.dtype == np.float32 and scaled.shape == (5, 1)
    np.testing.assert_allclose(task.decode(scaled).ravel(), y / 10.0, rtol=1e-5)
    with pytest.raises(DataError, match="'z'"):
        restored.transform_features(frame.drop(columns="z"))


def test_quantile_noise_maps_repeated_values_to_the_middle_of_their_quantile_range():
    """A 0/1 feature, 80 % zeros: without tie-breaking noise the quantile fit sends it to about ±5.2."""
    train_rows = pd.DataFrame({"flag": np.r_[np.zeros(800), np.ones(200)], "y": np.arange(1000.0)})
    ones_and_zeros = pd.DataFrame({"flag": [0.0, 1.0]})

    def transformed(noise: float, seed: int = 0) -> np.ndarray:
        prep = TabularPreprocessor("y", ["flag"], [], "quantile", "median",
                                   quantile_noise=noise, noise_seed=seed).fit(train_rows)
        return prep.transform_features(ones_and_zeros)[0].ravel()

    assert np.abs(transformed(0.0)).min() > 5
    zero, one = transformed(1e-3)
    assert zero == pytest.approx(-0.25, abs=0.05)  # the normal quantile at 0.4, the middle of the zeros
    assert one == pytest.approx(1.28, abs=0.1)  # at 0.9, the middle of the ones
    np.testing.assert_array_equal(transformed(1e-3), transformed(1e-3))
    assert not np.array_equal(transformed(1e-3, seed=0), transformed(1e-3, seed=1))


def test_preprocessing_is_fit_on_the_training_split_only(make_cfg, tmp_path):
    frame = _table(400)
    frame.loc[::7, "x"] = np.nan
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=regression", "data.numeric_transform=standard")
    bundle = build_bundle(cfg.data)
    prep = bundle.preprocessor
    train_rows = frame.loc[bundle.splits["train"].rows]
    assert prep.impute_values["x"] == pytest.approx(train_rows["x"].median())
    assert prep.impute_values["x"] != pytest.approx(frame["x"].median())
    filled = train_rows[["x", "z"]].fillna({"x": train_rows["x"].median()})
    np.testing.assert_allclose(prep.numeric_transformer.mean_, filled.mean().to_numpy())
    np.testing.assert_allclose(bundle.task.target_scaler.mean_, [train_rows["y"].mean()])
    assert bundle.task.target_scaler.mean_[0] != pytest.approx(frame["y"].mean())
    # every row missing x, in whichever split, gets the training median
    median = prep.transform_features(pd.DataFrame({"x": [train_rows["x"].median()], "z": [0.0], "color": ["red"]}))
    x_of = {row: x for split in bundle.splits.values()
            for row, x in zip(split.rows, split.x_num[:, 0].tolist(), strict=True)}
    assert [x_of[row] for row in frame.index[frame["x"].isna()]] == [median[0][0, 0]] * int(frame["x"].isna().sum())
    rows = [bundle.splits[s].rows for s in ("train", "val", "test")]
    assert sum(map(len, rows)) == len(frame) and len(np.unique(np.concatenate(rows))) == len(frame)


def test_stratified_split_keeps_class_ratios(make_cfg, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1000),
                          "label": rng.permutation(["a"] * 700 + ["b"] * 200 + ["c"] * 100)})
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=label",
                   "data.task=classification")
    bundle = build_bundle(cfg.data)
    assert bundle.task.classes == ["a", "b", "c"] and bundle.spec["d_out"] == 3
    for name, split in bundle.splits.items():
        counts = np.bincount(split.targets().numpy(), minlength=3) / len(split)
        np.testing.assert_allclose(counts, [0.7, 0.2, 0.1], atol=1.5 / len(split), err_msg=name)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_tiny_classification_is_learned_well_above_chance(make_cfg, n_classes):
    cfg = make_cfg(*TINY_TABULAR, "data.task=classification", f"data.generator.n_classes={n_classes}")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 1.0 / n_classes + 0.3
    assert metrics["test_f1_macro"] > 1.0 / n_classes + 0.2
    assert metrics["test_log_loss"] < np.log(n_classes)
    assert ("test_roc_auc" in metrics) == (n_classes == 2)
    if n_classes == 2:
        assert metrics["test_roc_auc"] > 0.85
    predictions = pd.read_csv(run_dir / "predictions_test.csv")
    assert set(predictions["actual"]) == {f"class_{k}" for k in range(n_classes)}
    assert np.allclose(predictions.filter(like="prob_").sum(axis=1), 1.0, atol=1e-5)
    assert (run_dir / "confusion_matrix.png").stat().st_size > 0


def test_tiny_regression_is_learned_in_original_units(make_cfg):
    cfg = make_cfg(*TINY_TABULAR, "data.task=regression")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_r2"] > 0.7
    predictions = pd.read_csv(run_dir / "predictions_test.csv")
    errors = predictions["predicted"] - predictions["actual"]
    assert metrics["test_rmse"] == pytest.approx(float(np.sqrt((errors**2).mean())), rel=1e-4)
    frame = generate_table(800, 6, 2, 5, None, 0.1, 0)
    np.testing.assert_allclose(predictions["actual"], frame.loc[predictions["row"], "target"], atol=1e-3)
    assert (run_dir / "predicted_vs_actual.png").stat().st_size > 0


def test_model_and_data_kind_mismatches_say_what_to_use(make_cfg):
    with pytest.raises(ConfigError, match="data=synthetic_tabular or data=csv_tabular, or model=lstm"):
        train(make_cfg("model=ft_transformer", "data=synthetic", "hardware=cpu"))
    with pytest.raises(ConfigError, match="data=synthetic or data=csv_timeseries, or model=ft_transformer"):
        train(make_cfg("model=lstm", "data=synthetic_tabular", "hardware=cpu"))


@pytest.mark.parametrize(("change", "overrides", "message"), [
    ("none", ["data.target_column=price"], r"data.target_column: column\(s\) \['price'\] not in the data"),
    ("constant", ["data.target_column=y"], "constant .* pick a data.target_column whose values vary"),
    ("one_class", ["data.target_column=color", "data.task=classification"],
     "single class .* at least two classes"),
    ("none", ["data.target_column=color"], "not numeric .* use data.task=classification"),
    ("none", ["data.target_column=y", "data.task=classification"], "looks continuous; use data.task=regression"),
])
def test_bad_targets_get_one_clear_message(make_cfg, tmp_path, change, overrides, message):
    frame = _table(60)
    if change == "constant":
        frame["y"] = 3.0
    if change == "one_class":
        frame["color"] = "red"
    cfg = make_cfg("model=ft_transformer", "data=csv_tabular", f"data.path={_csv(tmp_path, frame)}",
                   "data.task=regression", "hardware=cpu", *overrides)
    with pytest.raises(DataError, match=message):
        train(cfg)


def test_task_must_be_chosen(make_cfg, tmp_path):
    cfg = make_cfg("model=ft_transformer", "data=csv_tabular", f"data.path={_csv(tmp_path, _table(60))}",
                   "data.target_column=y")
    with pytest.raises(ConfigError, match=r"data\.task: must be one of regression, classification"):
        dl_core.run(cfg)


def test_infinite_features_are_imputed_and_infinite_targets_dropped_like_missing_ones(make_cfg, tmp_path, caplog):
    frame = _table(400)
    frame.loc[[3, 50], "x"] = np.inf
    frame.loc[7, "z"] = -np.inf
    frame.loc[9, "x"] = np.nan
    frame.loc[11, "y"] = np.inf
    frame.loc[12, "y"] = np.nan
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=regression")
    with caplog.at_level("WARNING", logger="dl_core.data.tabular"):
        bundle = build_bundle(cfg.data)
    assert "infinite values in x: 2, z: 1 are treated as missing and imputed with the training median" in caplog.text
    assert "2 row(s) without a target y are dropped (1 missing, 1 infinite)" in caplog.text
    kept = np.concatenate([split.rows for split in bundle.splits.values()])
    assert len(kept) == 398 and not {11, 12} & set(kept)  # the rows whose target is infinite or missing
    assert {3, 50, 9, 7} <= set(kept)  # rows with an infinite or missing feature are kept, imputed below
    assert all(np.isfinite(v) for v in bundle.preprocessor.impute_values.values())
    for split in bundle.splits.values():
        assert bool(split.x_num.isfinite().all()) and bool(split.y.isfinite().all())
    missing = pd.DataFrame({"x": [np.nan], "z": [np.nan], "color": ["red"]})
    imputed = bundle.preprocessor.transform_features(missing)[0][0]
    for split in bundle.splits.values():  # an infinity gets exactly what a missing value gets
        inputs = dict(zip(split.rows, split.x_num.numpy(), strict=False))
        for row, column in [(3, 0), (50, 0), (9, 0), (7, 1)]:
            if row in inputs:
                assert inputs[row][column] == imputed[column]


def test_derived_columns_are_computed_alike_for_training_rows_and_new_rows(make_cfg, tmp_path, caplog):
    """Serving sends the raw columns: the run derives the ratio itself, as it did for training, and a division
    by zero is a missing value like any other."""
    frame = _table(400)
    frame.loc[5, "z"] = 0.0
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=regression", "data.numeric_transform=standard", "+data.derived_columns.ratio='x / z'",
                   "data.feature_columns=[ratio,color]")
    with caplog.at_level("WARNING", logger="dl_core.data.tabular"):
        bundle = build_bundle(cfg.data)
    assert "infinite values in ratio: 1" in caplog.text
    prep = bundle.preprocessor
    assert prep.numeric_columns == ["ratio"]
    assert sorted(prep.input_schema().columns) == ["color", "x", "z"]
    test = bundle.splits["test"]
    new = prep.new_rows(frame.loc[test.rows, ["x", "z", "color"]], bundle.task)
    np.testing.assert_array_equal(new.x_num.numpy(), test.x_num.numpy())
    ratio = (frame["x"] / frame["z"]).loc[bundle.splits["train"].rows].replace([np.inf, -np.inf], np.nan)
    np.testing.assert_allclose(prep.numeric_transformer.mean_, [ratio.fillna(ratio.median()).mean()])


@pytest.mark.parametrize(("expression", "message"), [
    ("x / price", r"data.derived_columns.ratio: cannot compute 'x / price' \(.*price"),
    ("color * 2 + x", r"data.derived_columns.ratio: cannot compute"),
])
def test_a_derived_column_that_cannot_be_computed_names_its_key(make_cfg, tmp_path, expression, message):
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, _table())}", "data.target_column=y",
                   "data.task=regression", f"+data.derived_columns.ratio='{expression}'")
    with pytest.raises(DataError, match=message):
        build_bundle(cfg.data)


def test_a_numeric_column_with_a_stray_text_cell_is_refused_unless_listed_as_categorical(make_cfg, tmp_path):
    """It used to become a categorical input with one level per distinct number."""
    frame = _table(300).astype({"z": object})
    frame.loc[[40, 41, 90, 200], "z"] = ["abc", "12,5", "?", "-"]
    path = _csv(tmp_path, frame)
    base = ["data=csv_tabular", f"data.path={path}", "data.target_column=y", "data.task=regression"]
    with pytest.raises(DataError) as err:
        build_bundle(make_cfg(*base).data)
    message = str(err.value)
    assert message.startswith("data.feature_columns: column 'z' holds numbers except in 4 of 300 cells: 'abc' "
                              "(line 42), '12,5' (line 43), '?' (line 92), ... (4 in all);")
    assert "list the column in data.categorical_columns" in message and len(message) < 300
    listed = build_bundle(make_cfg(*base, "data.categorical_columns=[z,color]").data).preprocessor
    assert listed.categorical_columns == ["z", "color"] and listed.numeric_columns == ["x"]
    frame["y"] = frame["y"].astype(object)
    frame.loc[5, "y"] = "n.a."
    with pytest.raises(DataError, match=r"^data.target_column: column 'y' holds numbers except in 1 of 300 cells: "
                                        r"'n.a.' \(line 7\)"):
        build_bundle(make_cfg(*base[:1], f"data.path={_csv(tmp_path, frame)}", *base[2:]).data)


def test_a_column_that_is_mostly_text_is_still_a_category(make_cfg, tmp_path):
    frame = _table(300)
    frame["size"] = np.where(np.arange(300) % 5 == 0, "XL", (np.arange(300) % 3).astype(str))  # 80 % numbers
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=regression")
    assert build_bundle(cfg.data).preprocessor.categorical_columns == ["color", "size"]


@pytest.mark.parametrize(("stratify", "message"), [
    ("false", (r"^data.split: \d+ of the \d+ classes of 'y' are in validation or test rows but in no training row "
              r"\(e.g. [\d, ]+\); if the target is a quantity, use data.task=regression")),
    ("true", (r"^data.task: target 'y' has \d+ distinct numbers, most seen once \(e.g. [\d., ]+\), which looks "
             r"continuous; use data.task=regression$")),
])
def test_classification_of_a_quantity_gets_one_short_line(make_cfg, tmp_path, stratify, message):
    """A whole-number continuous target: the message used to quote every class (10 KB); or to crash on
    classes only the test rows have."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=3000), "y": rng.integers(0, 400, 3000) * 100.0})
    if stratify == "true":
        frame["y"] = rng.integers(0, 100_000, 3000) * 100.0
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=classification", f"data.split.stratify={stratify}")
    with pytest.raises(DataError, match=message) as err:
        build_bundle(cfg.data)
    assert len(str(err.value)) < 300 and "\n" not in str(err.value)


def test_a_category_of_fractional_numbers_is_read_back_from_its_training_file_and_from_json(make_cfg, tmp_path):
    """Training took 0.5 as the label '0.5'; predict.py refused the same file (a label was a string or an integer)."""
    frame = _table(300).assign(ratio=np.random.default_rng(1).choice([0.5, 1.25, 2.0], 300))
    path = _csv(tmp_path, frame)
    bundle = build_bundle(make_cfg("data=csv_tabular", f"data.path={path}", "data.target_column=y",
                                   "data.task=regression", "data.categorical_columns=[color,ratio]").data)
    prep, test = bundle.preprocessor, bundle.splits["test"]
    schema = prep.input_schema()
    new = prep.new_rows(schema.validate_frame(read_table(path).loc[test.rows]), bundle.task)
    np.testing.assert_array_equal(new.x_cat.numpy(), test.x_cat.numpy())
    first = frame.loc[test.rows[0], ["x", "z", "color", "ratio"]].to_dict()
    sent = schema.frame([schema.row_model.model_validate_json(json.dumps(first))])
    np.testing.assert_array_equal(prep.new_rows(sent, bundle.task).x_cat.numpy(), test.x_cat.numpy()[:1])
    assert set(test.x_cat.numpy()[:, 1]) == {1, 2, 3}  # no row of the file fell to the reserved index


def test_numbers_with_thousands_separators_are_refused_by_column_in_training_and_prediction(make_cfg, tmp_path):
    """Read as text they became a category of a level per number, without a word."""
    rng = np.random.default_rng(0)
    frame = _table(300).assign(population=[f"{n:,}" for n in rng.integers(500, 90_000, 300)])
    path = _csv(tmp_path, frame)
    base = ["data=csv_tabular", f"data.path={path}", "data.target_column=y", "data.task=regression"]
    with pytest.raises(DataError) as err:
        build_bundle(make_cfg(*base).data)
    assert str(err.value).startswith("data.feature_columns: column 'population' holds numbers with thousands "
                                     "separators in 298 of 300 cells: '76,630' (line 2), '57,508' (line 3), ")
    assert str(err.value).endswith("; write them without separators, e.g. pandas.read_csv(path, thousands=',')"
                                   ".to_csv(path, index=False)")
    with pytest.raises(DataError, match=r"^data.target_column: column 'population' holds numbers with thousands"):
        build_bundle(make_cfg(*base[:2], "data.target_column=population", "data.task=regression").data)
    pd.read_csv(path, thousands=",").to_csv(path, index=False)  # the fix the message gives
    prep = build_bundle(make_cfg(*base).data).preprocessor
    assert prep.numeric_columns == ["x", "z", "population"]
    with pytest.raises(InputError, match=r"^rows\[0\]\['population'\]: Input should be a valid number, unable to "
                                         r"parse string as a number \(got '76,630'\)$"):
        prep.input_schema().validate_frame(frame)


@pytest.mark.parametrize(("labels", "colors", "classes", "named_classes", "named_colors"), [
    ([" yes", "yes ", "no"], ["red", "Red", "blue"], [" yes", "no", "yes "], "' yes', 'yes '", "'Red', 'red'"),
    (["yes", "yes\u200b", "no"], ["red", "red\u200b", "blue"], ["no", "yes", "yes\u200b"], "'yes', 'yes\\u200b'",
     "'red', 'red\\u200b'"),  # a zero-width space made a fourth class and an extra category without a word
])
def test_labels_that_differ_only_in_case_spaces_or_an_invisible_character_are_warned_about(
        make_cfg, tmp_path, caplog, labels, colors, classes, named_classes, named_colors):
    """They stay distinct classes and categories (only the user knows whether they are one), named in a warning."""
    rng = np.random.default_rng(0)
    frame = _table(300).assign(label=rng.choice(labels, 300), color=rng.choice(colors, 300))
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=label",
                   "data.task=classification")
    with caplog.at_level("WARNING"):
        bundle = build_bundle(cfg.data)
    assert bundle.task.classes == classes
    assert (f"classes {named_classes} of target 'label' differ only in case, surrounding spaces or invisible "
            "characters and are distinct classes; if they are one, write them alike in data.path") in caplog.text
    assert f"categories {named_colors} of column 'color' differ only in case, surrounding spaces or" in caplog.text


def test_drop_columns_leaves_a_row_id_out_and_a_column_with_a_value_per_row_is_warned_about(make_cfg, tmp_path,
                                                                                             caplog):
    frame = _table(300)
    frame.insert(0, "rownames", np.arange(1, 301))
    path = _csv(tmp_path, frame.assign(name=[f"house {i}" for i in range(300)]))
    base = ["data=csv_tabular", f"data.path={path}", "data.target_column=y", "data.task=regression"]
    with caplog.at_level("WARNING", logger="dl_core.data.tabular"):
        taken = build_bundle(make_cfg(*base).data).preprocessor
    assert taken.numeric_columns == ["rownames", "x", "z"] and taken.categorical_columns == ["color", "name"]
    for column in ("rownames", "name"):
        assert (f"column {column!r} has a distinct value in every row and is an input; if it numbers or names the "
                f"rows, list it in data.drop_columns") in caplog.text
    assert "column 'x'" not in caplog.text  # fractional numbers are distinct by nature
    caplog.clear()
    with caplog.at_level("WARNING", logger="dl_core.data.tabular"):
        dropped = build_bundle(make_cfg(*base, "data.drop_columns=[rownames,name]").data).preprocessor
    assert dropped.numeric_columns == ["x", "z"] and dropped.categorical_columns == ["color"]
    assert sorted(dropped.input_schema().columns) == ["color", "x", "z"] and not caplog.text
    with pytest.raises(DataError, match=r"^data.drop_columns: column\(s\) \['rownames2'\] not in the data; "):
        build_bundle(make_cfg(*base, "data.drop_columns=[rownames2]").data)


@pytest.mark.parametrize(("derived", "message"), [
    ("leak='y * 1'", (r"^data.derived_columns.leak: 'y \* 1' reads the target 'y', which would make the target an "
                      r"input \(a leak\) that rows to predict do not have; derive it from other columns$")),
    ("x='z * 2'", (r"^data.derived_columns.x: 'x' is a column of the data already; give the derived column a name "
                   r"of its own, e.g. data.derived_columns.x_derived$")),
    ("leak='\uff59 * 1'", r"^data.derived_columns.leak: '\uff59 \* 1' reads the target 'y'"),  # fullwidth y
])
def test_a_derived_column_that_reads_the_target_or_replaces_a_column_is_refused(make_cfg, tmp_path, derived,
                                                                                message):
    """The target became an input (and predict then required it); a derived `x` silently replaced the file's x."""
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, _table())}", "data.target_column=y",
                   "data.task=regression", f"+data.derived_columns.{derived}")
    with pytest.raises(DataError, match=message):
        build_bundle(cfg.data)


def test_a_float_column_numbering_the_rows_is_warned_about_like_an_integer_one(make_cfg, tmp_path, caplog):
    frame = _table(300)
    frame.insert(0, "rowid", np.arange(300.0))
    cfg = make_cfg("data=csv_tabular", f"data.path={_csv(tmp_path, frame)}", "data.target_column=y",
                   "data.task=regression")
    with caplog.at_level("WARNING", logger="dl_core.data.tabular"):
        build_bundle(cfg.data)
    assert ("column 'rowid' has a distinct value in every row and is an input; if it numbers or names the rows, "
            "list it in data.drop_columns") in caplog.text


def test_unseen_categories_are_found_per_column_with_their_near_misses():
    train_rows = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "city": ["rome", "oslo", "rome", "NA"],
                               "size": ["S", "M", "L", "M"], "y": [0.0, 1.0, 2.0, 3.0]})
    prep = TabularPreprocessor("y", ["x"], ["city", "size"], "standard", "median").fit(train_rows)
    new = pd.DataFrame({"x": [0.5] * 6, "city": ["ROME", "zzz", None, "rome", "zzz", "na"],
                        "size": ["S", "M", "L", "S", None, "M"]})
    (unseen,) = prep.unseen_categories(new)
    assert (unseen.column, unseen.rows, unseen.values, unseen.first) == ("city", 4, ["zzz", "ROME", "na"], 0)
    assert unseen.similar == {"ROME": "rome", "na": "NA"}
    assert unseen.message() == ("column 'city' has categories that training never saw in 4 row(s), read as unknown "
                                "(as a missing value is): 'zzz', 'ROME' (training has 'rome'), 'na' (training has "
                                "'NA')")
    assert prep.unseen_categories(train_rows) == []

"""Windows, splits, scaling and bad-input messages of dl_core.data.timeseries, on random data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from dl_core.data.loading import read_table
from dl_core.data.splits import SPLITS, SplitConfig
from dl_core.data.timeseries import TimeSeriesDataConfig, build_timeseries_bundle
from dl_core.errors import DataError, InputError

LENGTHS = {"a": 90, "b": 61, "c": 120}


def random_frame(seed: int = 0) -> pd.DataFrame:
    """Three entities of different lengths, rows shuffled so sorting is exercised."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, n in LENGTHS.items():
        parts.append(pd.DataFrame({
            "when": pd.date_range("2021-01-01", periods=n, freq="D"),
            "shop": name,
            "price": rng.normal(10, 3, n),
            "promo": rng.integers(0, 2, n).astype(float),
            "sales": rng.normal(100, 20, n),
        }))
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def data_cfg(**overrides) -> TimeSeriesDataConfig:
    base = {"path": "unused.csv", "timestamp_column": "when", "target_column": "sales", "entity_columns": ["shop"],
                "sequence_length": 7, "horizon": 3, "split": SplitConfig(val_fraction=0.2, test_fraction=0.2)}
    base.update(overrides)
    return OmegaConf.structured(TimeSeriesDataConfig(**base))


def naive_windows(frame: pd.DataFrame, prep, length: int, horizon: int) -> dict[str, set]:
    """Per-row reference: every (entity, first target time) with its raw input and target values."""
    out = {}
    ordered = frame.sort_values(["shop", "when"])
    for shop, group in ordered.groupby("shop"):
        rows = group.reset_index(drop=True)
        for end in range(length, len(rows) - horizon + 1):
            inputs = rows.iloc[end - length:end][prep.feature_columns].to_numpy()
            targets = rows.iloc[end:end + horizon][prep.target_columns].to_numpy()
            out[(shop, rows["when"].iloc[end])] = (inputs, targets)
    return out


def test_windows_equal_a_naive_per_row_reference():
    frame = random_frame()
    bundle = build_timeseries_bundle(data_cfg(), frame)
    prep = bundle.preprocessor
    reference = naive_windows(frame, prep, 7, 3)
    seen = 0
    for split in SPLITS:
        windows = bundle.splits[split]
        (x,), y = windows.batch(np.arange(len(windows)))
        table = bundle.predictions_table(split, y.numpy())
        first_steps = table[table["step"] == 1].reset_index(drop=True)
        for i in range(len(windows)):
            inputs, targets = reference[(first_steps["entity"][i], first_steps["timestamp"][i])]
            np.testing.assert_allclose(prep.feature_scaler.inverse_transform(x[i].numpy()), inputs, rtol=1e-5)
            np.testing.assert_allclose(bundle.task.decode(y[i].numpy()), targets, rtol=1e-5)
            seen += 1
    assert seen == sum(len(bundle.splits[s]) for s in SPLITS)
    # every window whose targets fit inside one split exists; none is invented
    assert seen <= len(reference)


def test_no_window_crosses_an_entity_and_targets_never_overlap_between_splits():
    frame = random_frame(1)
    bundle = build_timeseries_bundle(data_cfg(), frame)
    entity = bundle.predictions_table("train", bundle.splits["train"].targets().numpy())
    labels = bundle.preprocessor.entity_labels(bundle.preprocessor.clean(frame))
    target_rows = {}
    for split in SPLITS:
        windows = bundle.splits[split]
        starts = windows.starts.numpy()
        all_rows = starts[:, None] + np.arange(7 + 3)
        assert (labels[all_rows] == labels[all_rows[:, :1]]).all(), f"a {split} window crosses entities"
        target_rows[split] = set(windows.target_rows().ravel())
    assert not target_rows["train"] & target_rows["val"]
    assert not target_rows["val"] & target_rows["test"]
    assert not target_rows["train"] & target_rows["test"]
    # chronological: within each entity, every train target precedes every val target precedes test
    for name in LENGTHS:
        rows = {s: [r for r in target_rows[s] if labels[r] == name] for s in SPLITS}
        assert max(rows["train"]) < min(rows["val"]) and max(rows["val"]) < min(rows["test"])
    assert set(entity["entity"]) == set(LENGTHS)


def test_scaler_is_fit_on_training_rows_only():
    frame = random_frame(2)
    bundle = build_timeseries_bundle(data_cfg(), frame)
    prep = bundle.preprocessor
    train_rows = set(bundle.splits["train"].target_rows().ravel()) | set(
        (bundle.splits["train"].starts.numpy()[:, None] + np.arange(7)).ravel())
    clean = prep.clean(frame)
    expected = clean.iloc[sorted(train_rows)]["price"].mean()
    assert prep.feature_scaler.mean_[prep.feature_columns.index("price")] == pytest.approx(expected)

    # wrecking every non-training row changes nothing the scaler or the train windows see
    future = clean[frame.columns].copy()  # the rows as a file holds them
    others = sorted(set(range(len(clean))) - train_rows)
    future.loc[others, ["price", "sales"]] = 1e6
    again = build_timeseries_bundle(data_cfg(), future)
    np.testing.assert_array_equal(again.preprocessor.feature_scaler.mean_, prep.feature_scaler.mean_)
    (x1,), y1 = bundle.splits["train"].batch(np.arange(len(bundle.splits["train"])))
    (x2,), y2 = again.splits["train"].batch(np.arange(len(again.splits["train"])))
    assert np.array_equal(x1.numpy(), x2.numpy()) and np.array_equal(y1.numpy(), y2.numpy())


def test_target_can_be_left_out_of_the_inputs():
    bundle = build_timeseries_bundle(data_cfg(include_target_in_inputs=False), random_frame())
    assert "sales" not in bundle.preprocessor.feature_columns
    assert bundle.spec["n_features"] == 2


def test_multi_step_horizon_shapes():
    bundle = build_timeseries_bundle(data_cfg(horizon=5), random_frame())
    (x,), y = bundle.splits["val"].batch(np.arange(4))
    assert tuple(x.shape) == (4, 7, 3) and tuple(y.shape) == (4, 5, 1)


def test_date_split_puts_targets_after_the_boundaries():
    cfg = data_cfg(split=SplitConfig(val_start="2021-02-10", test_start="2021-03-01"))
    bundle = build_timeseries_bundle(cfg, random_frame())
    for split, lo, hi in [("train", None, "2021-02-10"), ("val", "2021-02-10", "2021-03-01"),
                          ("test", "2021-03-01", None)]:
        times = bundle.predictions_table(split, bundle.splits[split].targets().numpy())["timestamp"]
        assert lo is None or times.min() >= pd.Timestamp(lo)
        assert hi is None or times.max() < pd.Timestamp(hi)


def test_missing_values_are_refused_with_columns_counts_and_the_fix():
    frame = random_frame()
    frame.loc[[3, 8, 20], "price"] = np.nan
    frame.loc[5, "sales"] = np.nan
    with pytest.raises(DataError) as err:
        build_timeseries_bundle(data_cfg(), frame)
    message = str(err.value)
    assert "price: 3" in message and "sales: 1" in message and "data.fillna=ffill" in message


def test_ffill_fills_within_each_series_only():
    frame = random_frame().sort_values(["shop", "when"]).reset_index(drop=True)
    first_b = frame.index[frame["shop"] == "b"][0]
    frame.loc[first_b, "price"] = np.nan  # leading gap of series b: nothing earlier in b to carry forward
    frame.loc[first_b + 10, "price"] = np.nan
    bundle = build_timeseries_bundle(data_cfg(fillna="ffill"), frame)
    clean = bundle.preprocessor.clean(frame)
    b_rows = clean[clean["shop"] == "b"].reset_index(drop=True)
    assert len(b_rows) == LENGTHS["b"] - 1  # the leading gap is dropped, not filled from series a
    assert b_rows.loc[8, "price"] == frame.loc[first_b + 9, "price"]


def test_short_series_error_names_the_entity():
    frame = random_frame()
    with pytest.raises(DataError, match=r"series 'b' has 61 rows .* sequence_length \+ horizon = 63"):
        build_timeseries_bundle(data_cfg(sequence_length=60), frame)


def test_missing_column_error_names_it_and_lists_what_exists():
    with pytest.raises(DataError, match=r"data.target_column: column\(s\) \['revenue'\] not in the data; "
                                        r"available columns: when, shop"):
        build_timeseries_bundle(data_cfg(target_column="revenue"), random_frame())


def test_duplicate_timestamps_without_entity_columns_are_explained():
    with pytest.raises(DataError, match=r"add the column that tells series apart to data\.entity_columns"):
        build_timeseries_bundle(data_cfg(entity_columns=[]), random_frame())


def test_infinite_values_are_refused_like_missing_ones_with_counts_and_the_fix():
    frame = random_frame()
    frame.loc[[3, 8], "price"] = np.inf
    frame.loc[20, "price"] = np.nan
    frame.loc[5, "sales"] = -np.inf
    with pytest.raises(DataError) as err:
        build_timeseries_bundle(data_cfg(), frame)
    message = str(err.value)
    assert message.startswith("data.fillna: ")
    assert "price: 3 (2 infinite)" in message and "sales: 1 (1 infinite)" in message
    assert "data.fillna=ffill" in message


def test_infinite_values_are_filled_like_missing_ones(caplog):
    frame = random_frame().sort_values(["shop", "when"]).reset_index(drop=True)
    frame.loc[10, "price"] = np.inf
    frame.loc[30, "sales"] = -np.inf
    with caplog.at_level("WARNING", logger="dl_core.data.timeseries"):
        bundle = build_timeseries_bundle(data_cfg(fillna="ffill"), frame)
    assert "infinite values in price: 1, sales: 1 are treated as missing" in caplog.text
    clean = bundle.preprocessor.clean(frame)
    assert clean.loc[10, "price"] == frame.loc[9, "price"] and clean.loc[30, "sales"] == frame.loc[29, "sales"]
    for split in bundle.splits.values():
        assert bool(split.x.isfinite().all()) and bool(split.y.isfinite().all())


@pytest.mark.parametrize("fillna", [None, "ffill", "drop"])
def test_a_target_without_values_is_named_whatever_the_fill(fillna):
    """The fill the missing-value message suggests used to end in an IndexError: every row was dropped."""
    frame = random_frame().assign(sales=np.nan)
    frame.loc[4, "sales"] = np.inf
    with pytest.raises(DataError, match=r"^data.target_column: column 'sales' has no values \(all 271 rows"):
        build_timeseries_bundle(data_cfg(fillna=fillna), frame)


def test_a_fill_that_leaves_no_rows_is_explained():
    frame = random_frame()
    frame.loc[frame.index % 2 == 0, "price"] = np.nan
    frame.loc[frame.index % 2 == 1, "promo"] = np.nan
    with pytest.raises(DataError, match=r"^data\.fillna: no rows left .*data\.fillna=drop"):
        build_timeseries_bundle(data_cfg(fillna="drop"), frame)


def test_a_numeric_column_with_a_stray_text_cell_is_refused_naming_the_cell(tmp_path):
    """feature_columns=null used to leave such a column out silently; its file line is named."""
    frame = random_frame().astype({"price": object})
    frame.loc[17, "price"] = "abc"
    frame.to_csv(tmp_path / "shops.csv", index=False)
    lines = (tmp_path / "shops.csv").read_text().splitlines()
    raw = read_table(tmp_path / "shops.csv")
    with pytest.raises(DataError) as err:
        build_timeseries_bundle(data_cfg(), raw)
    message = str(err.value)
    assert message.startswith("data.feature_columns: column 'price' holds numbers except in 1 of 271 cells: "
                              "'abc' (line 19)")
    assert "abc" in lines[19 - 1].split(",")
    assert "leave the column out of data.feature_columns" in message
    with pytest.raises(DataError, match=r"^data.target_column: column 'sales' holds numbers with a decimal comma in "
                                        r"1 of 271 cells: '12,5' \(row 40\); write them as plain numbers"):
        build_timeseries_bundle(data_cfg(), _with_text(random_frame(), "sales", 40, "12,5"))
    words = random_frame().assign(note=["good", "bad", "7"] * 90 + ["x"])  # mostly text: not an input, no error
    assert "note" not in build_timeseries_bundle(data_cfg(), words).preprocessor.feature_columns


def _with_text(frame: pd.DataFrame, column: str, row: int, text: str) -> pd.DataFrame:
    out = frame.astype({column: object})
    out.loc[row, column] = text
    return out


def test_a_true_false_column_is_an_input_like_its_0_1_twin_in_training_and_in_new_rows(tmp_path):
    """feature_columns=null used to leave a bool column out without a word, while the same 0/1 column was used."""
    frame = random_frame()
    frame["open"] = np.random.default_rng(3).random(len(frame)) < 0.7
    frame["open_01"] = frame["open"].astype(float)
    frame = frame.astype({"open": object})
    frame.loc[[5, 60], ["open", "open_01"]] = np.nan  # a gap: pandas then reads true/false as objects
    frame.to_csv(tmp_path / "shops.csv", index=False)
    raw = read_table(tmp_path / "shops.csv")
    assert raw["open"].dtype == object
    bundle = build_timeseries_bundle(data_cfg(fillna="ffill"), raw)
    prep = bundle.preprocessor
    assert prep.feature_columns == ["price", "promo", "open", "open_01", "sales"]
    x = bundle.splits["train"].x.numpy()
    np.testing.assert_array_equal(x[:, 2], x[:, 3])
    schema = prep.input_schema()
    assert (schema.columns["open"], schema.columns["open_01"]) == ("boolean", "number")
    new = prep.new_rows(schema.validate_frame(raw), bundle.task)  # what predict.py does with the training file
    np.testing.assert_array_equal(new.x.numpy(), x)


def test_numbers_with_thousands_separators_are_refused_not_left_out():
    visitors = [f"{n:,}" for n in np.random.default_rng(0).integers(900, 9_000, 271)]
    with pytest.raises(DataError, match=r"^data.feature_columns: column 'visitors' holds numbers with thousands "
                                        r"separators in \d+ of 271 cells: .*; write them without separators"):
        build_timeseries_bundle(data_cfg(), random_frame().assign(visitors=visitors))


def test_drop_columns_leaves_a_column_out_and_a_row_number_is_warned_about(caplog):
    frame = random_frame()
    frame["row"] = np.arange(len(frame))
    with caplog.at_level("WARNING", logger="dl_core.data.timeseries"):
        assert "row" in build_timeseries_bundle(data_cfg(), frame).preprocessor.feature_columns
    assert ("column 'row' has a distinct value in every row and is an input; if it numbers or names the rows, list "
            "it in data.drop_columns") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="dl_core.data.timeseries"):
        prep = build_timeseries_bundle(data_cfg(drop_columns=["row", "promo"]), frame).preprocessor
    assert prep.feature_columns == ["price", "sales"] and "row" not in prep.input_schema().columns
    assert not caplog.text
    with pytest.raises(DataError, match=r"^data.drop_columns: column\(s\) \['rows'\] not in the data"):
        build_timeseries_bundle(data_cfg(drop_columns=["rows"]), frame)


def test_true_false_covariates_are_read_back_from_the_training_rows():
    """New rows may not send true for a number, so true/false known-future and static covariates take true/false
    (their input type is `boolean`), and the training rows, with their horizon's future rows, give training's."""
    frame = random_frame().assign(promo=lambda f: f["promo"] > 0, big=lambda f: f["shop"] == "c")
    cfg = data_cfg(future_covariates=["promo"], static_columns=["big"])
    bundle = build_timeseries_bundle(cfg, frame)
    schema = bundle.preprocessor.input_schema()
    assert (schema.columns["promo"], schema.columns["big"]) == ("boolean", "boolean")
    ahead = [pd.DataFrame({"when": group["when"].max() + pd.to_timedelta([1, 2, 3], "D"), "shop": shop,
                           "promo": [True, False, True], "big": shop == "c"})
             for shop, group in frame.groupby("shop")]
    new = bundle.preprocessor.new_rows(schema.validate_frame(pd.concat([frame, *ahead])), bundle.task)
    trained = bundle.splits["train"].covariates
    observed = np.concatenate([np.arange(lo + 3 * k, hi + 3 * k) for k, (lo, hi) in
                               enumerate(itertools.pairwise([0, *np.cumsum(list(LENGTHS.values()))]))])
    np.testing.assert_array_equal(new.covariates.future.numpy()[observed], trained.future.numpy())
    np.testing.assert_array_equal(new.covariates.static.numpy(), trained.static.numpy())


def test_a_series_sent_with_only_its_future_rows_is_refused_naming_the_history_it_needs():
    """Rows that were all future rows (targets null) reached the scaler empty: a 500 from the server."""
    frame = random_frame()
    bundle = build_timeseries_bundle(data_cfg(future_covariates=["promo"]), frame)
    last = frame[frame["shop"] == "a"].sort_values("when").tail(1)
    ahead = last.assign(when=last["when"] + pd.Timedelta(days=1), price=np.nan, sales=np.nan)
    with pytest.raises(InputError, match=r"^rows: series 'a' has 0 row\(s\) after cleaning but the model needs "
                                         r"sequence_length=7 rows of history"):
        bundle.preprocessor.new_rows(bundle.preprocessor.input_schema().validate_frame(ahead), bundle.task)


def test_an_entity_sent_as_a_number_and_as_text_is_refused_naming_the_column():
    """1 and "1" sorted apart, and the error blamed a timestamp off the time line."""
    frame = random_frame().assign(shop=lambda f: f["shop"].map({"a": 1, "b": 2, "c": 3}))
    bundle = build_timeseries_bundle(data_cfg(), frame)
    rows = bundle.preprocessor.input_schema().validate_frame(frame).astype({"shop": object})
    rows.loc[rows.index[::2][rows["shop"].iloc[::2] == 1], "shop"] = "1"
    with pytest.raises(InputError, match=r"^rows: column 'shop' names series by numbers and by text \(1 and '1'\)"):
        bundle.preprocessor.new_rows(rows, bundle.task)


def test_missing_entity_values_in_training_are_refused_naming_the_column():
    """A missing entity became the series 'nan', and the error blamed data.sequence_length."""
    frame = random_frame().astype({"shop": object})
    frame.loc[[4, 9], "shop"] = np.nan
    with pytest.raises(DataError, match=r"^data\.entity_columns: column 'shop' is missing in 2 rows \(first: row 4\); "
                                        r"fill those cells or drop those rows"):
        build_timeseries_bundle(data_cfg(), frame)

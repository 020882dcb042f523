"""The run's time step (dl_core/data/timestep.py): fitted on the training rows or set by data.freq, saved with the
preprocessor, it dates every forecast beyond a series' last row and the calendar features of its horizon. A step
that cannot be told is refused naming data.freq; new rows off the run's time line are refused naming the timestamp.
The data step on small frames, then one real run through predict.py and serve.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import dl_core
from dl_core.data.covariates import CALENDAR
from dl_core.data.splits import SplitConfig
from dl_core.data.timeseries import TimeSeriesDataConfig, build_timeseries_bundle
from dl_core.errors import ConfigError, DataError, InputError
from dl_core.runs.config import validate
from dl_core.runs.pipeline import train
from helpers import run_entry, serving

HORIZON = 3


def series(times: pd.DatetimeIndex | np.ndarray, entity: str = "a", seed: int = 0) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(100, 20, len(times))
    return pd.DataFrame({"when": times, "shop": entity, "sales": values})


def data_cfg(**overrides) -> TimeSeriesDataConfig:
    base = {"path": "unused.csv", "timestamp_column": "when", "target_column": "sales", "entity_columns": ["shop"],
            "sequence_length": 6, "horizon": HORIZON}
    return OmegaConf.structured(TimeSeriesDataConfig(**{**base, **overrides}))


def forecast_times(frame: pd.DataFrame, **overrides) -> dict[str, list]:
    """Each series' dates of the forecast beyond its last row, when the rows it was trained on are sent back."""
    bundle = build_timeseries_bundle(data_cfg(**overrides), frame)
    split = bundle.preprocessor.new_rows(frame, bundle.task)
    table = split.table(bundle.task, np.zeros((len(split), HORIZON, 1), np.float32))
    ahead = table[table["actual"].isna()]
    return {entity: list(part["timestamp"]) for entity, part in ahead.groupby("entity")}


def test_monthly_forecasts_step_by_month_starts_and_their_calendar_features_by_the_same_dates():
    """The last gap (31 days, August to September) repeated gave 2019-10-02, 2019-11-02, 2019-12-03."""
    frame = series(pd.date_range("2015-10-01", "2019-09-01", freq="MS"))
    bundle = build_timeseries_bundle(data_cfg(calendar_features=["month"]), frame)
    split = bundle.preprocessor.new_rows(frame, bundle.task)
    table = split.table(bundle.task, np.zeros((len(split), HORIZON, 1), np.float32))
    expected = list(pd.to_datetime(["2019-10-01", "2019-11-01", "2019-12-01"]))
    assert list(table.loc[table["actual"].isna(), "timestamp"]) == expected
    assert bundle.preprocessor.metadata()["freq"] == "MS"  # what /metadata reports

    value, period = CALENDAR["month"]
    angle = 2 * np.pi * np.asarray(value(pd.DatetimeIndex(expected)), np.float64) / period
    horizon_features = split.covariates.future[-HORIZON:].numpy()  # the rows after the last observed one
    np.testing.assert_allclose(horizon_features, np.stack([np.sin(angle), np.cos(angle)], axis=1), atol=1e-6)


def test_a_step_from_the_training_rows_a_few_missing_rows_and_series_of_different_lengths():
    hours = pd.date_range("2024-03-01", periods=80, freq="h")
    gappy = series(hours.delete([10, 11, 40]), "a")  # three rows missing (filled): the step is still the hour
    short = series(hours[:50], "b", seed=1)
    assert forecast_times(pd.concat([gappy, short]), fillna="ffill") == {
        "a": list(hours[-1] + pd.to_timedelta([1, 2, 3], "h")), "b": list(hours[49] + pd.to_timedelta([1, 2, 3], "h"))}


def test_trading_days_with_holidays_step_over_weekends():
    days = pd.bdate_range("2024-01-01", "2024-04-26").delete([0, 10, 45])  # Friday 26 April last
    assert forecast_times(series(days), fillna="ffill") == {  # the holidays are missing steps, filled
        "a": list(pd.to_datetime(["2024-04-29", "2024-04-30", "2024-05-01"]))}


def test_numeric_timestamps_step_by_their_interval_and_rows_without_one_by_position():
    ticks = np.delete(np.arange(0, 400, 5), [7, 8])
    assert forecast_times(series(ticks), fillna="ffill") == {"a": [400, 405, 410]}
    assert forecast_times(series(ticks).drop(columns="when"), timestamp_column=None) == {"a": [78, 79, 80]}


def test_without_a_regular_step_training_is_refused_naming_data_freq_and_data_freq_makes_it_exact():
    months = pd.date_range("2015-10-01", "2019-09-01", freq="MS").delete(20)  # one month missing
    with pytest.raises(DataError, match=r"^data\.freq: the training timestamps have no regular step .* set "
                                        r"data\.freq to their frequency, a pandas offset alias: e\.g\. data\.freq=MS"):
        forecast_times(series(months))
    assert forecast_times(series(months), freq="MS", fillna="ffill") == {
        "a": list(pd.to_datetime(["2019-10-01", "2019-11-01", "2019-12-01"]))}


def test_series_that_step_differently_are_refused_naming_data_freq():
    frame = pd.concat([series(pd.date_range("2024-01-01", periods=60, freq="h"), "a"),
                       series(pd.date_range("2024-01-01", periods=60, freq="D"), "b")])
    with pytest.raises(DataError, match=r"^data\.freq: series 'a' steps by h but series 'b' by D .* set data\.freq"):
        build_timeseries_bundle(data_cfg(), frame)


def test_a_training_row_off_data_freq_is_refused_naming_it():
    months = pd.date_range("2015-10-01", "2019-09-01", freq="MS")
    frame = series(months.map(lambda t: t + pd.Timedelta(days=1) if t.year == 2018 and t.month == 3 else t))
    with pytest.raises(DataError, match=r"^data\.freq: series 'a' has timestamp 2018-03-02T00:00:00 \(after "
                                        r"2018-02-01T00:00:00, the row before\), off the run's time line of MS steps "
                                        r"\(data\.freq\); fix that timestamp"):
        build_timeseries_bundle(data_cfg(freq="MS"), frame)


def test_new_rows_off_the_time_line_are_refused_naming_the_timestamp():
    frame = series(pd.date_range("2015-10-01", "2019-09-01", freq="MS"))
    bundle = build_timeseries_bundle(data_cfg(), frame)
    late = frame.assign(when=frame["when"].where(frame["when"] != "2019-09-01", pd.Timestamp("2019-09-02")))
    with pytest.raises(InputError, match=r"^rows: series 'a' has timestamp 2019-09-02T00:00:00 \(after "
                                         r"2019-08-01T00:00:00, the row before\), off the run's time line of MS "
                                         r"steps \(inferred from the training rows\); send rows whose timestamps"):
        bundle.preprocessor.new_rows(late, bundle.task)


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.freq=M"], r"^data\.freq: 'M' is not a pandas offset alias; e\.g\. data\.freq=MS"),
    (["data.freq=monthly"], r"^data\.freq: 'monthly' is not a pandas offset alias"),
    (["data.freq=h", "data.timestamp_column=null"], r"^data\.freq: is the step of the timestamps, so set data\.t"),
])
def test_an_invalid_freq_is_refused_naming_the_key(make_cfg, overrides, message):
    cfg = make_cfg("data=csv_timeseries", "data.path=x.csv", "data.timestamp_column=date", "data.target_column=OT",
                   *overrides)
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


@pytest.mark.slow
def test_a_monthly_run_dates_its_forecasts_alike_in_training_predict_and_serve(tmp_path: Path):
    """The rows a run was trained on, sent back through predict.py, give training's test predictions at the same
    timestamps, and a forecast at the next month starts; serve.py refuses a row off the months with a 422."""
    frame = series(pd.date_range("2005-01-01", periods=180, freq="MS")).drop(columns="shop")
    source = tmp_path / "monthly.csv"
    frame.to_csv(source, index=False)
    run_dir = tmp_path / "run"
    train(dl_core.compose("data=csv_timeseries", f"data.path={source}", "data.timestamp_column=when",
                          "data.target_column=sales", "data.sequence_length=12", f"data.horizon={HORIZON}",
                          "data.calendar_features=[month]", "model.hidden_dim=8", "model.num_layers=1",
                          "trainer.max_epochs=1", "hardware=cpu1", run_dir=run_dir))
    out = tmp_path / "predicted.csv"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={out}", "threads=1")
    assert done.returncode == 0, done.stderr[-2000:]

    predicted = pd.read_csv(out, parse_dates=["timestamp"])
    at_training = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    keys = ["timestamp", "entity", "step", "target"]
    both = at_training.merge(predicted, on=keys, suffixes=("", "_predicted"))
    assert len(both) == len(at_training)  # every test prediction, at the same timestamp
    np.testing.assert_allclose(both["predicted_predicted"], both["predicted"], rtol=1e-5)  # batch positions differ
    ahead = predicted[predicted["actual"].isna()]
    assert list(ahead["timestamp"]) == list(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-03-01"]))

    rows = frame.assign(when=frame["when"].dt.strftime("%Y-%m-%d"))
    rows.loc[rows.index[-1], "when"] = "2019-12-02"
    with serving(run_dir) as client:
        assert client.get("/metadata").json()["freq"] == "MS"
        response = client.post("/predict", json={"rows": rows.to_dict("records")})
    assert response.status_code == 422, response.text
    assert "timestamp 2019-12-02T00:00:00 (after 2019-11-01T00:00:00, the row before)" in \
        json.dumps(response.json()["detail"])


def test_a_zoned_run_reads_another_offset_as_the_same_instants_on_its_own_wall_clock():
    """The same instants written at +05:30 gave other calendar features (India's hours) and forecasts stamped
    +05:30; naive times were silently read as UTC."""
    hours = pd.date_range("2024-03-01", periods=80, freq="h", tz="UTC")
    frame = series(hours)
    bundle = build_timeseries_bundle(data_cfg(calendar_features=["hour"]), frame)
    prep, schema = bundle.preprocessor, bundle.preprocessor.input_schema()
    own = prep.new_rows(schema.validate_frame(frame), bundle.task)
    india = frame.assign(when=hours.tz_convert("Asia/Kolkata").map(pd.Timestamp.isoformat))
    moved = prep.new_rows(schema.validate_frame(india), bundle.task)
    np.testing.assert_array_equal(moved.covariates.future.numpy(), own.covariates.future.numpy())
    ahead = moved.table(bundle.task, np.zeros((len(moved), HORIZON, 1), np.float32))
    assert list(ahead.loc[ahead["actual"].isna(), "timestamp"]) == list(hours[-1] + pd.to_timedelta([1, 2, 3], "h"))
    assert prep.metadata()["timezone"] == "UTC"

    naive = frame.assign(when=hours.tz_localize(None))
    with pytest.raises(InputError, match=r"^rows: column 'when' has timestamps without a UTC offset, but the run's "
                                         r"are in UTC; write each with its offset"):
        prep.new_rows(schema.validate_frame(naive), bundle.task)


@pytest.mark.parametrize("offset", ["+05:00", "Z"])
def test_a_run_on_times_without_a_zone_refuses_rows_with_an_offset(offset):
    """The offset was dropped: 00:00+05:00 and 00:00Z were both read as the training rows' 00:00."""
    hours = pd.date_range("2024-03-01", periods=80, freq="h")
    bundle = build_timeseries_bundle(data_cfg(calendar_features=["hour"]), series(hours))
    rows = series(hours).assign(when=hours.strftime("%Y-%m-%dT%H:%M:%S") + offset)
    with pytest.raises(InputError, match=r"^rows: column 'when' has timestamps with a UTC offset, but the run's have "
                                         r"none"):
        bundle.preprocessor.new_rows(bundle.preprocessor.input_schema().validate_frame(rows), bundle.task)
    assert bundle.preprocessor.metadata()["timezone"] is None


def test_clock_changes_need_data_timezone_and_with_it_each_instant_is_read_exactly():
    """A Paris export (+01:00 in winter, +02:00 in summer) was refused with pandas' advice to pass utc=True, and the
    offered fix (data.timestamp_column=null) would have dropped time."""
    paris = pd.date_range("2021-03-26", periods=60, freq="h", tz="Europe/Paris")  # 28 March: 02:00 does not exist
    written = series(paris).assign(when=paris.map(pd.Timestamp.isoformat))
    with pytest.raises(DataError, match=r"^data\.timezone: column 'when' mixes UTC offsets \(\+01:00, \+02:00\), as "
                                        r"clocks that change for daylight saving time write them; set data\.timezone"):
        build_timeseries_bundle(data_cfg(), written)
    bundle = build_timeseries_bundle(data_cfg(timezone="Europe/Paris", calendar_features=["hour"]), written)
    split = bundle.preprocessor.new_rows(written, bundle.task)
    table = split.table(bundle.task, np.zeros((len(split), HORIZON, 1), np.float32))
    assert list(table.loc[table["actual"].isna(), "timestamp"]) == list(paris[-1] + pd.to_timedelta([1, 2, 3], "h"))
    angle = 2 * np.pi * paris.hour.to_numpy() / 24  # Paris' wall clock: 01:00, then 03:00 on 28 March
    np.testing.assert_allclose(split.covariates.future[:len(paris), 0].numpy(), np.sin(angle), atol=1e-6)
    utc = written.assign(when=paris.tz_convert("UTC").map(pd.Timestamp.isoformat))
    again = bundle.preprocessor.new_rows(utc, bundle.task)
    np.testing.assert_array_equal(again.covariates.future.numpy(), split.covariates.future.numpy())


def test_daily_rows_of_a_zone_with_clock_changes_step_by_its_calendar_days():
    """Midnight to midnight over the spring clock change is 23 hours: a zoned daily run was refused as off its time
    line of D steps, with or without a missing day."""
    days = pd.date_range("2021-03-01", periods=60, freq="D", tz="Europe/Paris")  # 28 March: clocks go forward
    written = series(days).assign(when=days.map(pd.Timestamp.isoformat))
    after = list(pd.date_range(days[-1], periods=HORIZON + 1, freq="D", tz="Europe/Paris")[1:])
    assert forecast_times(written, timezone="Europe/Paris") == {"a": after}
    assert forecast_times(written.drop(index=[40]), timezone="Europe/Paris", fillna="ffill") == {"a": after}


def test_split_dates_of_a_zoned_run_are_dates_of_its_zone():
    """Comparing zoned timestamps with data.split.val_start (no offset) raised a TypeError: a traceback."""
    hours = pd.date_range("2021-03-26", periods=100, freq="h", tz="Europe/Paris")
    written = series(hours).assign(when=hours.map(pd.Timestamp.isoformat))
    split = SplitConfig(val_start="2021-03-28 12:00", test_start="2021-03-29T06:00:00+02:00")
    bundle = build_timeseries_bundle(data_cfg(timezone="Europe/Paris", split=split), written)
    first_val = bundle.splits["val"].target_rows()[:, 0].min()
    assert bundle.splits["val"].keys.times[first_val] == pd.Timestamp("2021-03-28 12:00", tz="Europe/Paris")


def test_numbers_sent_to_a_run_on_dates_and_dates_to_a_run_on_numbers_are_refused_naming_the_column():
    """Epoch seconds were taken for dates (as nanoseconds), and ISO dates sent to a run on numbers were stepped by
    the numeric step as nanoseconds (a forecast at 11:00:00.003600)."""
    hours = pd.date_range("2021-01-01", periods=80, freq="h")
    dated = build_timeseries_bundle(data_cfg(), series(hours))
    epoch = series(hours).assign(when=hours.asi8 // 10**9)
    with pytest.raises(InputError, match=r"^rows\[0\]\['when'\]: Input should be a date \(ISO 8601 text, e\.g\. "
                                         r"2021-01-01T00:00:00\): the run's timestamps are dates, not numbers"):
        dated.preprocessor.input_schema().validate_frame(epoch)
    with pytest.raises(InputError, match=r"^rows: column 'when' holds numbers, but the run's timestamps are dates"):
        dated.preprocessor.new_rows(epoch, dated.task)

    ticks = np.arange(0, 400, 5)
    numbered = build_timeseries_bundle(data_cfg(), series(ticks))
    iso = series(ticks).assign(when=hours.map(pd.Timestamp.isoformat))
    with pytest.raises(InputError, match=r"^rows\[0\]\['when'\]: Input should be a number: the run's timestamps "
                                         r"are numbers, not dates"):
        numbered.preprocessor.input_schema().validate_frame(iso)
    with pytest.raises(InputError, match=r"^rows: column 'when' holds dates, but the run's timestamps are numbers"):
        numbered.preprocessor.new_rows(series(hours), numbered.task)


def test_dates_written_as_numbers_are_refused_and_read_as_dates_with_data_timestamp_format():
    """20200101 .. 20200229 were a numeric time line of step 1 with gaps of 69 at month ends, and the forecast after
    20200229 was dated 20200230."""
    days = pd.date_range("2020-01-01", "2020-02-29", freq="D")
    frame = series(days).assign(when=days.strftime("%Y%m%d").astype(int))
    with pytest.raises(DataError, match=r"^data\.timestamp_format: column 'when' holds numbers that read as dates "
                                        r"written yyyymmdd \(20200101, 20200102, \.\.\.\); set "
                                        r"data\.timestamp_format=%Y%m%d"):
        build_timeseries_bundle(data_cfg(), frame)
    assert forecast_times(frame, timestamp_format="%Y%m%d") == {
        "a": list(pd.to_datetime(["2020-03-01", "2020-03-02", "2020-03-03"]))}
    bundle = build_timeseries_bundle(data_cfg(timestamp_format="%Y%m%d"), frame)
    rows = bundle.preprocessor.input_schema().validate_frame(frame)  # the file's numbers, as predict.py reads them
    assert len(bundle.preprocessor.new_rows(rows, bundle.task)) > 0


def test_a_date_pandas_cannot_hold_is_refused_naming_the_column():
    """1500-01-01 was a 500 from the server and a traceback from predict.py (OutOfBoundsDatetime)."""
    hours = pd.date_range("2021-01-01", periods=80, freq="h")
    written = series(hours).assign(when=hours.map(pd.Timestamp.isoformat))
    written.loc[0, "when"] = "1500-01-01T00:00:00"
    with pytest.raises(DataError, match=r"^data\.timestamp_column: column 'when' holds 1500-01-01 00:00:00, a date "
                                        r"outside 1677-09-22 \.\. 2262-04-11"):
        build_timeseries_bundle(data_cfg(), written)
    bundle = build_timeseries_bundle(data_cfg(), series(hours))
    with pytest.raises(InputError, match=r"^rows: column 'when' holds 1500-01-01 00:00:00, a date outside"):
        bundle.preprocessor.new_rows(bundle.preprocessor.input_schema().validate_frame(written), bundle.task)


def test_missing_steps_are_refused_naming_the_series_or_filled_with_data_fillna_and_no_window_spans_them():
    """Three missing hours were stepped over: windows spanned the gap as if the rows were consecutive."""
    hours = pd.date_range("2024-03-01", periods=80, freq="h")
    gappy = pd.concat([series(hours, "a").drop(index=[10, 11, 40]), series(hours, "b", seed=1)])
    with pytest.raises(DataError, match=r"^data\.fillna: series 'a' misses 3 steps of its time line \(h\), first "
                                        r"2024-03-01T10:00:00, 2024-03-01T11:00:00 \(after 2024-03-01T09:00:00\); set "
                                        r"data\.fillna"):
        build_timeseries_bundle(data_cfg(), gappy)

    filled = build_timeseries_bundle(data_cfg(fillna="ffill"), gappy)
    rows = filled.preprocessor.clean(gappy)
    a = rows[rows["shop"] == "a"].reset_index(drop=True)
    assert list(a["when"]) == list(hours) and a.loc[10, "sales"] == a.loc[11, "sales"] == a.loc[9, "sales"]

    dropped = build_timeseries_bundle(data_cfg(fillna="drop"), gappy)
    for name in ("train", "val", "test"):
        split = dropped.splits[name]
        times = split.keys.times[split.starts.numpy()[:, None] + np.arange(6 + HORIZON)]
        assert (np.diff(times, axis=1) == np.timedelta64(1, "h")).all(), f"a {name} window spans a gap"

    whole = build_timeseries_bundle(data_cfg(), series(hours))
    with pytest.raises(InputError, match=r"^rows: series 'a' misses 1 step of its time line \(h\), first "
                                         r"2024-03-01T20:00:00 \(after 2024-03-01T19:00:00\); send"):
        whole.preprocessor.new_rows(series(hours).drop(index=[20]), whole.task)


def read_forecasts(path: Path) -> pd.DataFrame:
    """A predictions file of a zoned run: its timestamps as instants (their offsets change with the clocks)."""
    table = pd.read_csv(path)
    return table.assign(timestamp=pd.to_datetime(table["timestamp"], utc=True))


@pytest.mark.slow
def test_a_run_on_paris_time_predicts_its_own_rows_and_the_same_instants_in_utc_as_training_did(tmp_path: Path):
    """A zoned run's own file through predict.py gives training's test predictions; the same instants written in
    UTC, sent to serve.py, give the same predictions (the hour features of Paris' wall clock)."""
    paris = pd.date_range("2021-03-20", periods=240, freq="h", tz="Europe/Paris")  # the clocks change on 28 March
    frame = series(paris).drop(columns="shop").assign(when=paris.map(pd.Timestamp.isoformat))
    source = tmp_path / "paris.csv"
    frame.to_csv(source, index=False)
    run_dir = tmp_path / "run"
    train(dl_core.compose("data=csv_timeseries", f"data.path={source}", "data.timestamp_column=when",
                          "data.target_column=sales", "data.timezone=Europe/Paris", "data.sequence_length=12",
                          f"data.horizon={HORIZON}", "data.calendar_features=[hour]", "model.hidden_dim=8",
                          "model.num_layers=1", "trainer=tiny", "trainer.max_epochs=1", "hardware=cpu1",
                          run_dir=run_dir))
    out = tmp_path / "predicted.csv"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={source}", f"output={out}", "threads=1")
    assert done.returncode == 0, done.stderr[-2000:]
    predicted = read_forecasts(out)
    keys = ["timestamp", "entity", "step", "target"]
    both = read_forecasts(run_dir / "predictions_test.csv").merge(predicted, on=keys, suffixes=("", "_predicted"))
    assert len(both) == len(read_forecasts(run_dir / "predictions_test.csv"))
    np.testing.assert_allclose(both["predicted_predicted"], both["predicted"], rtol=1e-5)  # batch positions differ

    utc = frame.assign(when=paris.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))
    with serving(run_dir) as client:
        assert client.get("/metadata").json()["timezone"] == "Europe/Paris"
        response = client.post("/predict", json={"rows": utc.to_dict("records")})
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    served = served.assign(timestamp=pd.to_datetime(served["timestamp"], utc=True))
    assert list(served["timestamp"]) == list(predicted["timestamp"])
    np.testing.assert_allclose(served["predicted"], predicted["predicted"], rtol=1e-5)


@pytest.mark.parametrize("fillna", [None, "ffill"])
def test_a_timestamp_a_trillion_steps_off_is_refused_without_listing_the_steps(fillna):
    """Nanoseconds sent to a run on seconds: the missing steps were listed before the refusal (the kernel killed
    predict.py at 24 GB; here numpy's MemoryError), and data.fillna would have filled them all."""
    numbers = np.arange(80)
    whole = build_timeseries_bundle(data_cfg(fillna=fillna), series(numbers))
    far = series(numbers).assign(when=np.r_[numbers[:-1], 10**12])
    shown = "first 79, 80, ... (after 78)"
    reason = ("send the rows" if fillna is None else
              "999999999921 missing steps in all, more than 100 per row given, which reads like a timestamp in "
              "another unit or a typo; check the timestamps sent")
    with pytest.raises(InputError) as refused:
        whole.preprocessor.new_rows(far, whole.task)
    assert str(refused.value).startswith(f"rows: series 'a' misses 999999999921 steps of its time line (1), {shown}")
    assert reason in str(refused.value)


def test_months_written_as_numbers_are_refused_and_read_as_months_with_data_timestamp_format():
    """202001 .. 202012 were a numeric time line of step 1, and the forecast after 202012 was dated 202013."""
    months = pd.date_range("2020-01-01", periods=12, freq="MS")
    frame = pd.concat([series(months, f"s{k}", seed=k) for k in range(20)]).assign(
        when=lambda rows: rows["when"].dt.strftime("%Y%m").astype(int))
    with pytest.raises(DataError, match=r"^data\.timestamp_format: column 'when' holds numbers that read as dates "
                                        r"written yyyymm \(202001, 202002, \.\.\.\); set data\.timestamp_format=%Y%m"):
        build_timeseries_bundle(data_cfg(sequence_length=3), frame)

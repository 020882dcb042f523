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
    gappy = series(hours.delete([10, 11, 40]), "a")  # three rows missing: the step is still the hour
    short = series(hours[:50], "b", seed=1)
    assert forecast_times(pd.concat([gappy, short])) == {
        "a": list(hours[-1] + pd.to_timedelta([1, 2, 3], "h")), "b": list(hours[49] + pd.to_timedelta([1, 2, 3], "h"))}


def test_trading_days_with_holidays_step_over_weekends():
    days = pd.bdate_range("2024-01-01", "2024-04-26").delete([0, 10, 45])  # Friday 26 April last
    assert forecast_times(series(days)) == {"a": list(pd.to_datetime(["2024-04-29", "2024-04-30", "2024-05-01"]))}


def test_numeric_timestamps_step_by_their_interval_and_rows_without_one_by_position():
    ticks = np.delete(np.arange(0, 400, 5), [7, 8])
    assert forecast_times(series(ticks)) == {"a": [400, 405, 410]}
    assert forecast_times(series(ticks).drop(columns="when"), timestamp_column=None) == {"a": [78, 79, 80]}


def test_without_a_regular_step_training_is_refused_naming_data_freq_and_data_freq_makes_it_exact():
    months = pd.date_range("2015-10-01", "2019-09-01", freq="MS").delete(20)  # one month missing
    with pytest.raises(DataError, match=r"^data\.freq: the training timestamps have no regular step .* set "
                                        r"data\.freq to their frequency, a pandas offset alias: e\.g\. data\.freq=MS"):
        forecast_times(series(months))
    assert forecast_times(series(months), freq="MS") == {"a": list(pd.to_datetime(["2019-10-01", "2019-11-01",
                                                                                     "2019-12-01"]))}


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

"""data.scaler=per_series: each series scaled by its own training rows, the same in predict.py as in training, a
series training never saw refused by name, and a series of large values no longer drowning a small one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data.synthetic import generate_series
from dl_core.errors import InputError
from dl_core.runs.pipeline import train
from dl_core.task.scaling import SeriesScaler
from helpers import TINY, run_entry, served_forecast, serving, strict_json

pytestmark = pytest.mark.xdist_group("test_scaling")

PANEL = ["data=csv_timeseries", "data.target_column=target", "data.timestamp_column=timestamp",
         "data.entity_columns=[series_id]", "data.sequence_length=12", "model.hidden_dim=16", "model.num_layers=1",
         "trainer=tiny", "hardware=cpu1"]


def test_each_series_is_standardized_by_its_own_training_rows_and_decoded_back():
    rows = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 4, "v": [1.0, 2.0, 3.0, 4.0, 100.0, 300.0, 500.0, 700.0]})
    scaler = SeriesScaler(["id"]).fit(rows, ["v"])
    scaled = scaler.transform(rows, ["v"])
    for label in ("a", "b"):
        mine = scaled[(rows["id"] == label).to_numpy(), 0]
        assert mine.mean() == pytest.approx(0, abs=1e-6) and mine.std() == pytest.approx(1, rel=1e-6)
    labels = rows["id"].to_numpy(object)
    np.testing.assert_allclose(scaler.inverse(scaled, labels), rows[["v"]].to_numpy(), rtol=1e-6)


def test_a_series_constant_in_its_training_rows_gets_scale_one():
    rows = pd.DataFrame({"id": ["a"] * 3, "v": [5.0, 5.0, 5.0]})
    scaler = SeriesScaler(["id"]).fit(rows, ["v"])
    np.testing.assert_array_equal(scaler.transform(pd.DataFrame({"id": ["a"], "v": [7.0]}), ["v"]), [[2.0]])


def test_a_series_the_scaler_never_saw_is_refused_by_name():
    scaler = SeriesScaler(["id"]).fit(pd.DataFrame({"id": ["a", "a"], "v": [1.0, 2.0]}), ["v"])
    with pytest.raises(InputError, match=r"series 'zz' was not in the training rows; data\.scaler=per_series"):
        scaler.transform(pd.DataFrame({"id": ["a", "zz"], "v": [1.0, 2.0]}), ["v"])


@pytest.mark.slow
def test_predict_py_gives_trainings_test_predictions_and_refuses_an_unseen_series(tmp_path):
    """predict.py on the run's own rows: the forecasts of predictions_test.csv, each window decoded by its own
    series' scale (tolerance: the windows are batched differently, float32 sums differ in the last bits)."""
    run_dir = tmp_path / "run"
    train(dl_core.compose(*TINY, "data.generator.n_series=3", "data.scaler=per_series", run_dir=run_dir))
    frame = generate_series(3, 400, 2, 0.3, 0)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={tmp_path / 'rows.csv'}", f"output={out}",
                     "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(out, parse_dates=["timestamp"])
    test = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    merged = test.merge(predicted, on=["timestamp", "entity", "step", "target"], suffixes=("", "_predict"))
    assert len(merged) == len(test) and set(merged["entity"]) == {"s0", "s1", "s2"}
    np.testing.assert_allclose(merged["predicted_predict"], merged["predicted"], rtol=1e-5)
    np.testing.assert_allclose(merged["actual_predict"], merged["actual"], rtol=1e-9)

    frame.assign(series_id=frame["series_id"].replace("s2", "s7")).to_csv(tmp_path / "rows.csv", index=False)
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={tmp_path / 'rows.csv'}", f"output={out}",
                     "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "series 's7' was not in the training rows; data.scaler=per_series" in done.stderr


def panel_forecasts(tmp_path, scaler: str, factor: float) -> pd.DataFrame:
    """Test forecasts of the tiny LSTM on two series, the second's target and inputs multiplied by `factor`."""
    frame = generate_series(2, 400, 2, 0.3, 0)
    big = frame["series_id"] == "s1"
    frame.loc[big, ["driver_1", "driver_2", "target"]] *= factor
    name = f"{scaler}_{factor:g}"
    frame.to_csv(tmp_path / f"{name}.csv", index=False)
    run_dir = tmp_path / name
    # Without RevIN (the LSTM's default), which standardises each window by itself and so would rescue the small
    # series under either scaler: what is compared here is the scalers.
    train(dl_core.compose(*PANEL, f"data.path={tmp_path / f'{name}.csv'}", f"data.scaler={scaler}",
                          "model.instance_norm=false", run_dir=run_dir))
    return pd.read_csv(run_dir / "predictions_test.csv")


def test_a_series_1000_times_larger_does_not_dominate_per_series(tmp_path):
    """Per series, multiplying one series by 1000 multiplies its forecasts by 1000 and leaves the other's as
    they were: each series trains on the same footing. With one global scaler the small series drowns: its
    values are a flat line on the scale of the large one, and its forecasts move by thousands of its units.
    (Tolerance: the scaled inputs agree to float rounding, not bit for bit.)"""
    same, large = panel_forecasts(tmp_path, "per_series", 1), panel_forecasts(tmp_path, "per_series", 1000)
    small = large["entity"] == "s0"
    np.testing.assert_allclose(large.loc[small, "predicted"], same.loc[small, "predicted"], rtol=1e-4)
    np.testing.assert_allclose(large.loc[~small, "predicted"], 1000 * same.loc[~small, "predicted"], rtol=1e-4)

    same, large = panel_forecasts(tmp_path, "global", 1), panel_forecasts(tmp_path, "global", 1000)
    error = (large.loc[small, "predicted"] - same.loc[small, "actual"]).abs().mean()
    assert error > 100 * (same.loc[small, "predicted"] - same.loc[small, "actual"]).abs().mean()


@pytest.mark.slow
def test_the_server_gives_trainings_test_predictions_and_refuses_an_unseen_series_with_a_422(tmp_path):
    """The HTTP server on the run's own rows: the forecasts of predictions_test.csv, each window decoded by its own
    series' scale, as predict.py's (tolerance: the windows are batched differently, float32 sums differ in the last
    bits). A series training never saw is a 422 of the documented shape naming it, and the server serves on."""
    run_dir = tmp_path / "run"
    train(dl_core.compose(*TINY, "data.generator.n_series=3", "data.scaler=per_series", run_dir=run_dir))
    frame = generate_series(3, 400, 2, 0.3, 0)
    rows = frame.assign(timestamp=frame["timestamp"].astype(str))
    renamed = rows.assign(series_id=rows["series_id"].replace("s2", "s7"))
    with serving(run_dir) as client:
        served = served_forecast(client.post("/predict", json={"rows": rows.to_dict("records")}))
        refused = client.post("/predict", json={"rows": renamed.to_dict("records")})
        again = client.post("/predict", json={"rows": rows.head(60).to_dict("records")})
    test = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    merged = test.merge(served, on=["timestamp", "entity", "step", "target"], suffixes=("", "_served"))
    assert len(merged) == len(test) and set(merged["entity"]) == {"s0", "s1", "s2"}
    np.testing.assert_allclose(merged["predicted_served"], merged["predicted"], rtol=1e-5)
    np.testing.assert_allclose(merged["actual_served"], merged["actual"], rtol=1e-9)
    assert refused.status_code == 422, refused.text
    assert strict_json(refused.text) == {"error_count": 1, "detail": [{
        "loc": ["body", "rows"], "type": "value_error",
        "msg": "series 's7' was not in the training rows; data.scaler=per_series scales each series by its own "
               "training rows, so this run forecasts only those 3 series (train with data.scaler=global to forecast "
               "new ones)"}]}
    assert again.status_code == 200, again.text

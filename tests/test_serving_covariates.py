"""A probabilistic run with known-future and static covariates, used after training: the run's files, load_run,
predict.py and the HTTP service forecast beyond the last row from future rows; a missing future covariate is a
422 naming the column and the timestamp. Real training, real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data.synthetic import generate_series
from dl_core.errors import InputError
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from helpers import ROOT, entry_env, served_forecast, serving

HORIZON, LOOK_BACK = 3, 12
SETTINGS = ["data=synthetic_covariates", "data.generator.length=300", "data.generator.n_series=3",
            f"data.sequence_length={LOOK_BACK}", f"data.horizon={HORIZON}", "model.hidden_dim=16",
            "model.num_layers=1", "model.quantiles=[0.1,0.5,0.9]", "trainer=tiny", "trainer.max_epochs=2",
            "trainer.batch_size=64", "hardware=cpu1"]
QUANTILES = ["q0.1", "q0.5", "q0.9"]
RAW = ["raw_q0.1", "raw_q0.9"]  # the model's own quantiles beside the calibrated ones (dl_core/task/conformal.py)


# One xdist worker runs the whole module, so that `run_dir` is trained once.
pytestmark = pytest.mark.xdist_group("test_serving_covariates")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("covariates") / "run"
    train(dl_core.compose(*SETTINGS, run_dir=path))
    return path


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The rows the run was trained on (the generator with the preset's settings)."""
    return generate_series(3, 300, 2, 0.3, 0, calendar_effect=2.0, event_effect=3.0, static_effect=2.0)


def history_and_future(raw: pd.DataFrame, n_history: int = 40) -> pd.DataFrame:
    """Each series' first rows, then its next `HORIZON` rows as future rows: targets and past inputs null, the
    planned events and the region given."""
    history = raw.groupby("series_id").head(n_history)
    future = raw.groupby("series_id").nth(list(range(n_history, n_history + HORIZON)))
    future = future.assign(target=np.nan, driver_1=np.nan, driver_2=np.nan)
    return pd.concat([history, future]).sort_values(["series_id", "timestamp"], kind="stable")


def request_rows(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: ISO timestamps, null for what is missing."""
    rows = frame.assign(timestamp=frame["timestamp"].map(pd.Timestamp.isoformat))
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def test_the_run_reports_quantiles_and_their_metrics(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_pinball", "test_crps", "test_coverage_80", "test_width_80", "test_mse", "test_mae",
                "test_mse_scaled", "test_crps_scaled"):
        assert np.isfinite(metrics[key]), key
    table = pd.read_csv(run_dir / "predictions_test.csv")
    assert list(table.columns) == ["timestamp", "entity", "step", "target", "actual", "predicted", *QUANTILES, *RAW]
    assert (table["predicted"] == table["q0.5"]).all()
    assert (table["q0.1"] <= table["q0.5"]).all() and (table["q0.5"] <= table["q0.9"]).all()
    inside = (table["actual"] >= table["q0.1"]) & (table["actual"] <= table["q0.9"])
    assert metrics["test_coverage_80"] == pytest.approx(inside.mean())
    assert metrics["test_mse"] == pytest.approx(((table["actual"] - table["predicted"]) ** 2).mean(), rel=1e-6)
    assert (run_dir / "forecast.png").stat().st_size > 0


def test_reloaded_run_predicts_the_test_windows_as_training_did(run_dir: Path, raw: pd.DataFrame) -> None:
    last = raw.groupby("series_id").tail(1)
    future = pd.concat([last.assign(timestamp=last["timestamp"] + pd.Timedelta(hours=k), target=np.nan, event=0.0)
                        for k in range(1, HORIZON + 1)])
    reloaded = load_run(run_dir).predict(pd.concat([raw, future]))
    at_training = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    keys = ["timestamp", "entity", "step", "target"]
    both = at_training.merge(reloaded, on=keys, suffixes=("", "_reloaded"))
    assert len(both) == len(at_training)
    for column in ["predicted", *QUANTILES]:
        np.testing.assert_allclose(both[f"{column}_reloaded"], both[column], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_served_forecast_beyond_the_last_row_reads_the_future_rows(run_dir: Path, raw: pd.DataFrame,
                                                                   tmp_path: Path) -> None:
    frame = history_and_future(raw)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), f"run_dir={run_dir}",
                           f"data.path={tmp_path / 'rows.csv'}", f"output={out}", "threads=1"],
                          env=entry_env(), cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    from_file = pd.read_csv(out, parse_dates=["timestamp"])
    with serving(run_dir) as client:
        response = client.post("/predict", json={"rows": request_rows(frame)})
        served = served_forecast(response)
        pd.testing.assert_frame_equal(served, from_file, check_exact=True, check_dtype=False)
        assert list(served.columns) == ["timestamp", "entity", "step", "target", "actual", "predicted", *QUANTILES,
                                        *RAW]

        forecast = served[served["actual"].isna()]
        expected = frame[frame["target"].isna()][["series_id", "timestamp"]].to_numpy()
        np.testing.assert_array_equal(forecast[["entity", "timestamp"]].to_numpy(), expected)
        assert list(forecast["step"]) == [1, 2, 3] * 3

        events = frame["event"].to_numpy().copy()
        future_rows = np.flatnonzero(frame["target"].isna().to_numpy())
        events[future_rows] = 1.0 - events[future_rows]
        flipped = client.post("/predict", json={"rows": request_rows(frame.assign(event=events))})
        moved = pd.DataFrame(flipped.json()["predictions"])
        assert not np.allclose(moved.loc[moved["actual"].isna(), "predicted"], forecast["predicted"])

        missing = frame.copy()
        missing.loc[missing.index[future_rows[4]], "event"] = np.nan
        response = client.post("/predict", json={"rows": request_rows(missing)})
        assert response.status_code == 422, response.text
        message = response.json()["detail"][0]["msg"]
        when = pd.Timestamp(missing["timestamp"].iloc[future_rows[4]]).isoformat()
        assert f"future covariate 'event' is missing for series 's1' at timestamp {when}" in message

        without_future = client.post("/predict", json={"rows": request_rows(frame[frame["target"].notna()])})
        assert without_future.status_code == 200, without_future.text  # every window, no forecast past the rows
        windows = pd.DataFrame(without_future.json()["predictions"])
        assert windows["actual"].notna().all() and len(windows) == len(served) - len(forecast)
        assert client.get("/metadata").json()["quantiles"] == [0.1, 0.5, 0.9]


def test_id_columns_follow_each_forecast_to_the_row_of_its_target(run_dir: Path, raw: pd.DataFrame) -> None:
    """A forecast beyond the observed rows carries the ids of the future row (targets null) it predicts."""
    frame = history_and_future(raw)
    frame = frame.assign(rid=[f"r{k}" for k in range(len(frame))]).sample(frac=1.0, random_state=0)
    out = load_run(run_dir).predict(frame, id_columns=["rid"])
    sent = out.merge(frame[["series_id", "timestamp", "rid"]], how="left", left_on=["entity", "timestamp"],
                     right_on=["series_id", "timestamp"], suffixes=("", "_sent"))
    assert len(sent) == len(out) and (sent["rid"] == sent["rid_sent"]).all()
    assert sorted(out.loc[out["actual"].isna(), "rid"]) == sorted(frame.loc[frame["target"].isna(), "rid"])


def test_a_static_value_that_changes_within_a_series_is_refused_naming_it(run_dir: Path, raw: pd.DataFrame) -> None:
    frame = history_and_future(raw)
    frame.loc[frame.index[3], "region"] = "elsewhere" if frame["region"].iloc[0] != "elsewhere" else "north"
    with pytest.raises(InputError, match=r"column 'region' varies within series 's0'"):
        load_run(run_dir).predict(frame)


@pytest.mark.slow
def test_the_training_file_without_future_rows_gives_every_window_and_says_how_to_get_the_forecast(
        run_dir: Path, raw: pd.DataFrame, tmp_path: Path) -> None:
    """The run's own training file was refused whole: the forecast past its last rows needs the horizon's events,
    which the file does not have."""
    source, out = tmp_path / "train.csv", tmp_path / "out.csv"
    raw.to_csv(source, index=False)
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), f"run_dir={run_dir}", f"data.path={source}",
                           f"output={out}", "threads=1"], env=entry_env(), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert ("no future rows (targets null, after the last observed row) for series 's0', 's1', 's2': the forecast "
            "past their last row needs 'event' over its 3 steps and is left out; send those rows to get it") in said
    predicted = pd.read_csv(out, parse_dates=["timestamp"])
    assert predicted["actual"].notna().all()
    at_training = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    both = at_training.merge(predicted, on=["timestamp", "entity", "step", "target"], suffixes=("", "_predicted"))
    assert len(both) == len(at_training)
    for column in ["predicted", *QUANTILES]:  # batch positions differ from training's: to rounding
        np.testing.assert_allclose(both[f"{column}_predicted"], both[column], rtol=1e-5, atol=1e-5)

"""Predict and serve a trained time-series run: reload equals training, predict.py equals the server,
bad requests are 422 naming the field and the server keeps serving. Real training, real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY, compose_config, serving
from dl_core.data.synthetic import generate_series
from dl_core.errors import ConfigError
from dl_core.pipeline import train
from dl_core.serving import load_run
from dl_core.serving.inputs import InputError

KEYS = ["timestamp", "entity", "step", "target"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained two-series run with a 2-step horizon (so some windows are partly in the future)."""
    path = tmp_path_factory.mktemp("serving") / "run"
    train(compose_config([*TINY, "data.horizon=2"], path))
    return path


@pytest.fixture(scope="module")
def raw_frame() -> pd.DataFrame:
    """The raw rows the run was trained on (the synthetic generator with the TINY settings)."""
    return generate_series(2, 400, 2, 0.3, 0)


@pytest.fixture(scope="module")
def server(run_dir: Path):
    with serving(run_dir) as client:
        yield client


def request_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as a client sends them: JSON-ready values, timestamps as ISO strings."""
    return frame.assign(timestamp=frame["timestamp"].astype(str)).to_dict("records")


def test_reloaded_run_predicts_what_training_predicted(run_dir: Path, raw_frame: pd.DataFrame) -> None:
    at_training = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    reloaded = load_run(run_dir).predict(raw_frame)
    both = at_training.merge(reloaded, on=KEYS, suffixes=("_training", "_reloaded"))
    assert len(both) == len(at_training) > 0
    np.testing.assert_allclose(both["predicted_reloaded"], both["predicted_training"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(both["actual_reloaded"], both["actual_training"])


def test_forecast_covers_complete_windows_and_the_future(run_dir: Path, raw_frame: pd.DataFrame) -> None:
    out = load_run(run_dir).predict(raw_frame)
    s0 = out[out["entity"] == "s0"]
    # 400 rows, window 12, horizon 2: 387 complete windows + 1 forecast window, 2 steps each.
    assert len(s0) == (400 - 12 - 2 + 1 + 1) * 2
    last = raw_frame.loc[raw_frame["series_id"] == "s0", "timestamp"].max()
    future = s0[s0["actual"].isna()]
    assert list(future["timestamp"]) == [last + pd.Timedelta(hours=1), last + pd.Timedelta(hours=2)]
    assert list(future["step"]) == [1, 2]
    assert s0["actual"].notna().sum() == 387 * 2


def test_predict_py_and_server_give_identical_predictions(run_dir: Path, raw_frame: pd.DataFrame, server,
                                                          tmp_path: Path) -> None:
    rows = raw_frame.groupby("series_id").head(40)
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), f"run_dir={run_dir}",
                           f"data.path={tmp_path / 'new.csv'}", f"output={out}", "threads=1"],
                          env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(str(out))
    from_file = pd.read_csv(out, parse_dates=["timestamp"])
    response = server.post("/predict", json={"rows": request_rows(pd.read_csv(tmp_path / "new.csv"))})
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    served["timestamp"] = pd.to_datetime(served["timestamp"])
    served["actual"] = served["actual"].astype(float)
    assert len(served) == 2 * (40 - 12 - 2 + 1 + 1) * 2
    pd.testing.assert_frame_equal(served, from_file, check_exact=True, check_dtype=False)


@pytest.mark.parametrize("case", ["wrong_type", "missing_column", "short_history", "duplicate_time", "no_rows"])
def test_bad_requests_are_422_naming_the_field(server, raw_frame: pd.DataFrame, case: str) -> None:
    rows = request_rows(raw_frame.groupby("series_id").head(20))
    expected_field = {"wrong_type": "driver_1", "missing_column": "target", "short_history": "rows",
                      "duplicate_time": "rows", "no_rows": "rows"}[case]
    if case == "wrong_type":
        rows[3]["driver_1"] = "not a number"
    elif case == "missing_column":
        del rows[0]["target"]
    elif case == "short_history":
        rows = rows[:25]  # s0 complete, s1 only 5 rows
    elif case == "duplicate_time":
        rows[1]["timestamp"] = rows[0]["timestamp"]
    else:
        rows = []
    response = server.post("/predict", json={"rows": rows})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert expected_field in detail["loc"]
    if case == "short_history":
        assert "'s1'" in detail["msg"] and "sequence_length=12" in detail["msg"]
    if case == "duplicate_time":
        assert "duplicate timestamps" in detail["msg"]
    assert server.get("/health").json() == {"status": "ok"}
    good = server.post("/predict", json={"rows": request_rows(raw_frame.groupby("series_id").head(14))})
    assert good.status_code == 200 and len(good.json()["predictions"]) == 2 * 2 * 2


def test_metadata_and_docs(server) -> None:
    meta = server.get("/metadata").json()
    assert meta["task"] == "forecast" and meta["sequence_length"] == 12 and meta["horizon"] == 2
    assert meta["model"]["class"] == "LSTMForecaster"
    features = {f["name"]: f["type"] for f in meta["features"]}
    assert features["driver_1"] == "number" and features["series_id"].startswith("string")
    assert "timestamp" in features and "test_mse" in meta["metrics"]
    assert server.get("/docs").status_code == 200
    schema = server.get("/openapi.json").json()["components"]["schemas"]["Row"]
    assert set(schema["required"]) == {"series_id", "timestamp", "driver_1", "driver_2", "target"}


def test_file_input_errors_name_the_column(run_dir: Path, raw_frame: pd.DataFrame) -> None:
    run = load_run(run_dir)
    with pytest.raises(InputError, match=r"\['driver_2'\] missing"):
        run.predict(raw_frame.drop(columns="driver_2"))
    bad = raw_frame.astype({"driver_1": object})
    bad.loc[7, "driver_1"] = "oops"
    with pytest.raises(InputError, match=r"rows\[7\]\['driver_1'\]: Input should be a valid number"):
        run.predict(bad)
    with pytest.raises(ConfigError, match="run_dir: no checkpoints/best.ckpt"):
        load_run(run_dir / "nowhere")

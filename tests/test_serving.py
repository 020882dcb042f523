"""Predict and serve a trained time-series run: reload equals training, predict.py equals the server,
bad requests are 422 naming the field and the server keeps serving. Real training, real HTTP."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data.synthetic import generate_series
from dl_core.errors import ConfigError, InputError
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from dl_core.serving.app import create_app
from helpers import JSON, TINY, connection, run_entry, served_forecast, serving, strict_json, with_token

# One xdist worker runs the whole module, so that its trained run and server are built once.
pytestmark = pytest.mark.xdist_group("test_serving")

KEYS = ["timestamp", "entity", "step", "target"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained two-series run with a 2-step horizon (so some windows are partly in the future)."""
    path = tmp_path_factory.mktemp("serving") / "run"
    train(dl_core.compose(*TINY, "data.horizon=2", run_dir=path))
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
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={tmp_path / 'new.csv'}", f"output={out}",
                     "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(str(out))
    from_file = pd.read_csv(out, parse_dates=["timestamp"])
    response = server.post("/predict", json={"rows": request_rows(pd.read_csv(tmp_path / "new.csv"))})
    served = served_forecast(response)
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


def test_metadata_and_docs(server, run_dir: Path) -> None:
    meta = server.get("/metadata").json()
    assert meta["run"] == "run" and meta["task"] == "forecast" and meta["sequence_length"] == 12
    assert meta["horizon"] == 2
    assert meta["model"]["class"] == "LSTMForecaster"
    features = {f["name"]: f["type"] for f in meta["features"]}
    assert features["driver_1"] == "number" and features["series_id"].startswith("string")
    assert "timestamp" in features and "test_mse" in meta["metrics"]
    assert server.get("/docs").status_code == 200
    docs = server.get("/openapi.json")
    assert set(docs.json()["components"]["schemas"]["Row"]["required"]) == {"series_id", "timestamp", "driver_1",
                                                                             "driver_2", "target"}
    assert docs.json()["info"]["description"] == "forecast model from run run"
    for text in (docs.text, server.get("/metadata").text):  # the server's file layout is not the client's business
        assert str(run_dir.parent) not in text


def test_file_input_errors_name_the_column(run_dir: Path, raw_frame: pd.DataFrame) -> None:
    run = load_run(run_dir)
    with pytest.raises(InputError, match=r"\['driver_2'\] missing"):
        run.predict(raw_frame.drop(columns="driver_2"))
    bad = raw_frame.astype({"driver_1": object})
    bad.loc[7, "driver_1"] = "oops"
    with pytest.raises(InputError, match=r"rows\[7\]\['driver_1'\]: Input should be a valid number"):
        run.predict(bad)
    with pytest.raises(ConfigError, match=r"run_dir: no checkpoints/best\.ckpt"):
        load_run(run_dir / "nowhere")


# case: (column, what the request carries there, field the 422 names, part of its message)
BAD_CELLS = {
    "Infinity": ("driver_1", "Infinity", "driver_1", "finite number, not inf"),
    "-Infinity": ("target", "-Infinity", "target", "finite number, not -inf"),
    "Infinity string": ("driver_2", '"Infinity"', "driver_2", "finite number, not inf"),
    "1e400": ("driver_1", "1e400", "driver_1", "like 1e400, read as infinity"),
    "NaN where the run cannot impute": ("target", "NaN", "target", "cannot be missing"),
    "NaN string": ("driver_2", '"NaN"', "driver_2", "cannot be missing"),
    "Infinity timestamp": ("timestamp", "Infinity", "timestamp", "the run's timestamps are dates, not numbers"),
    "1e39, beyond float32 once scaled": ("driver_1", "1e39", "rows", "['driver_1'] hold values too large"),
}


@pytest.mark.parametrize("case", [*BAD_CELLS, "one row with NaN and a missing column"])
def test_non_finite_numbers_are_422_and_the_connection_serves_the_next_request(server, raw_frame: pd.DataFrame,
                                                                               case: str) -> None:
    good_rows = request_rows(raw_frame.groupby("series_id").head(14))
    if case in BAD_CELLS:
        column, token, field, message = BAD_CELLS[case]
        rows = [dict(row) for row in good_rows]
        rows[3][column] = "@"
    else:
        token, field, message = "NaN", "target", "Field required"
        rows = [{key: ("@" if key == "driver_1" else value)
                 for key, value in good_rows[0].items() if key != "target"}]
    bad = server.post("/predict", content=with_token(rows, token), headers=JSON)
    assert bad.status_code == 422, bad.text
    detail = strict_json(bad.text)["detail"]
    assert any(field in error["loc"] and message in error["msg"] for error in detail), detail
    good = server.post("/predict", json={"rows": good_rows})
    assert good.status_code == 200, good.text
    assert connection(good) == connection(bad)


def test_a_request_over_max_rows_gets_a_small_strict_json_422(server, raw_frame: pd.DataFrame) -> None:
    rows = request_rows(pd.concat([raw_frame] * 13).head(10_001))  # serve.py's default max_rows is 10,000
    rows[5]["driver_1"] = "@"
    answer = server.post("/predict", content=with_token(rows, "NaN"), headers=JSON)
    assert answer.status_code == 422, answer.text[:300]
    too_long = "List should have at most 10000 items after validation, not 10001"
    assert strict_json(answer.text) == {"detail": [{"loc": ["body", "rows"], "type": "too_long", "msg": too_long}],
                                        "error_count": 1}


@pytest.mark.parametrize("case", ["not UTF-8", "nested too deeply", "an integer of 5,000 digits"])
def test_unreadable_bodies_are_422_in_the_documented_shape(server, raw_frame: pd.DataFrame, case: str) -> None:
    """A body that is not UTF-8, JSON nested past the parser's recursion limit, or an integer past Python's
    4,300-digit limit got FastAPI's 400 `{"detail": "There was an error parsing the body"}` instead of the
    documented 422 shape."""
    good_rows = request_rows(raw_frame.groupby("series_id").head(14))
    body, message = {
        "not UTF-8": (json.dumps({"rows": [{**good_rows[0], "series_id": "@"}]}).encode().replace(b'"@"', b'"caf\xe9"'),
                      "not UTF-8 text"),
        "nested too deeply": (b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        "an integer of 5,000 digits": (with_token([{**good_rows[0], "driver_1": "@"}], "1" + "0" * 4999).encode(),
                                       "an integer of more than 4300 digits"),
    }[case]
    bad = server.post("/predict", content=body, headers=JSON)
    assert bad.status_code == 422, bad.text
    answer = strict_json(bad.text)
    assert answer["error_count"] == 1 and len(answer["detail"]) == 1, answer
    error = answer["detail"][0]
    assert set(error) == {"loc", "msg", "type"} and error["loc"][0] == "body" and error["type"] == "json_invalid"
    assert error["msg"].startswith("JSON decode error: ") and message in error["msg"], error
    good = server.post("/predict", json={"rows": good_rows})
    assert good.status_code == 200, good.text
    assert connection(good) == connection(bad)


@pytest.mark.parametrize("column", ["series_id", "timestamp"])
def test_a_lone_surrogate_in_a_text_field_is_422_naming_the_field(server, raw_frame: pd.DataFrame,
                                                                  column: str) -> None:
    """JSON may escape half of a surrogate pair ("\\ud800"), which no UTF-8 text holds: pandas then failed to
    encode it and the server answered 500."""
    good_rows = request_rows(raw_frame.groupby("series_id").head(14))
    rows = [dict(row) for row in good_rows]
    rows[2][column] = "@"
    bad = server.post("/predict", content=with_token(rows, '"s\\ud800"'), headers=JSON)
    assert bad.status_code == 422, bad.text
    assert strict_json(bad.text) == {"error_count": 1, "detail": [{
        "loc": ["body", "rows", 2, column], "type": "string_unicode",
        "msg": "Input should be Unicode text, not a lone surrogate (\\ud800) at position 1"}]}
    good = server.post("/predict", json={"rows": good_rows})
    assert good.status_code == 200 and connection(good) == connection(bad)


@pytest.mark.slow
def test_a_corrupt_metrics_file_leaves_predict_and_serve_working(run_dir: Path, raw_frame: pd.DataFrame,
                                                                 tmp_path: Path) -> None:
    """A torn metrics.json crashed predict.py and serve.py with a JSONDecodeError, though neither needs it to
    predict: both warn naming the file, and /metadata says the metrics are unavailable."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.json").write_text('{"test_mse": 0.12, "test_')
    rows = raw_frame.groupby("series_id").head(14)
    rows.to_csv(tmp_path / "new.csv", index=False)
    done = run_entry("predict.py", f"run_dir={copy}", f"data.path={tmp_path / 'new.csv'}",
                     f"output={tmp_path / 'out.csv'}", "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{copy / 'metrics.json'} is not valid JSON" in done.stdout + done.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) == 2 * 2 * 2  # two series, two windows, two steps
    with serving(copy) as client:
        meta = client.get("/metadata")
        assert meta.status_code == 200, meta.text
        assert meta.json()["metrics"] is None and meta.json()["metrics_unavailable"].startswith("metrics.json is not")
        assert str(tmp_path) not in meta.text
        answer = client.post("/predict", json={"rows": request_rows(rows)})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2 * 2 * 2


def test_a_bug_answers_a_json_500_and_keeps_the_connection(run_dir: Path, raw_frame: pd.DataFrame,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """An exception injected into the loaded run stands in for a bug; uvicorn serves the app on 127.0.0.1."""
    import uvicorn

    run = load_run(run_dir)

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("injected bug")

    run.predict_checked = broken
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(run), log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=30) as client, \
                caplog.at_level(logging.ERROR, logger="uvicorn.error"):
            failed = client.post("/predict", json={"rows": request_rows(raw_frame.head(14))})
            health = client.get("/health")
            same_connection = connection(health) == connection(failed)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
    assert failed.status_code == 500
    assert failed.json() == {"detail": "internal server error; the traceback is in the server log"}
    assert health.status_code == 200 and same_connection
    assert any(record.exc_info and "injected bug" in str(record.exc_info[1]) for record in caplog.records)


def test_predict_py_refuses_infinite_numbers_in_one_line(run_dir: Path, raw_frame: pd.DataFrame,
                                                         tmp_path: Path) -> None:
    rows = raw_frame.groupby("series_id").head(20).reset_index(drop=True)
    rows.loc[[2, 25], "driver_1"] = np.inf
    rows.loc[7, "target"] = -np.inf
    rows.to_csv(tmp_path / "new.csv", index=False)
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={tmp_path / 'new.csv'}",
                     f"output={tmp_path / 'out.csv'}", "threads=1", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: rows: numbers that are not finite in column(s) driver_1 (2 inf), "
                                  "target (1 -inf); replace them with finite numbers; ['driver_1', 'target'] "
                                  "cannot be missing for this run")
    assert not (tmp_path / "out.csv").exists()


def test_no_rows_through_the_python_api_is_an_input_error(run_dir: Path, raw_frame: pd.DataFrame) -> None:
    """Was scikit-learn's ValueError from the scaler ("Found array with 0 sample(s)"): predict.py and the server
    refuse no rows as an input error, and so does the API they share."""
    with pytest.raises(InputError, match="no rows to predict on; pass at least one row"):
        load_run(run_dir).predict(raw_frame.head(0))


@pytest.mark.parametrize("address", ["port_in_use", "host=nosuchhost.invalid", "host=999.1.1.1"])
def test_an_address_serve_py_cannot_listen_on_is_one_line_naming_the_key(run_dir: Path, address: str) -> None:
    """uvicorn logged its own error ("address already in use", "Name or service not known") and exited with 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        host = address if address.startswith("host=") else "host=127.0.0.1"
        done = run_entry("serve.py", f"run_dir={run_dir}", host, f"port={port}", timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    expected = {"port_in_use": f"error: port: {port} is in use on 127.0.0.1; stop what listens there, or pass "
                               f"another port (e.g. port={port + 1})",
                "host=nosuchhost.invalid": "error: host: cannot resolve 'nosuchhost.invalid' (",
                "host=999.1.1.1": "error: host: cannot resolve '999.1.1.1' ("}[address]
    assert done.stderr.startswith(expected), done.stderr

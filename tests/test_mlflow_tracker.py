"""MLflow tracking, read back with MlflowClient from the local store and from a real `mlflow server`: config,
per-epoch curves, final metrics, plots, the run as a pyfunc model that predicts what predict.py predicts;
boosting rounds; resume; a server that does not answer never holds training up."""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.data import load_frame
from dl_core.runs.pipeline import train
from dl_core.tracking.mlflow_tracker import RUN_ID_FILE, MlflowTracker, client_limits
from helpers import TINY, run_entry
from mlflow_server import mlflow_server

# Ten times the tiny LSTM's rate, without RevIN (the LSTM's default, which steadies it): losses jump, and the best
# epoch is not the last.
NOISY = ("trainer.lr=1", "model.instance_norm=false")


def local_store(log_dir: Path) -> str:
    return f"sqlite:///{log_dir / 'mlflow.db'}"


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(uri)


def logged_run(uri: str, run_dir: Path):
    return client_for(uri).get_run((run_dir / RUN_ID_FILE).read_text().strip())


def history(uri: str, run_id: str, name: str) -> tuple[list[int], list[float]]:
    points = sorted(client_for(uri).get_metric_history(run_id, name), key=lambda point: point.step)
    return [point.step for point in points], [point.value for point in points]


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """A predictions table as predict.py's CSV reads back (timestamps as text)."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def load_model(uri: str, model_uri: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(None)


def check_run(uri: str, run_dir: Path) -> str:
    """The MLflow run of `run_dir` holds its config, curves, final metrics and plots; its id."""
    run = logged_run(uri, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = pd.read_csv(run_dir / "metrics.csv")
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"LSTMForecaster-synthetic-{run_dir.name}"
    assert run.data.params["model.hidden_dim"] == "16" and run.data.params["trainer.max_epochs"] == "4"
    for curve in ("train_loss", "val_loss", "lr"):
        steps, values = history(uri, run.info.run_id, curve)
        assert steps == list(epochs["epoch"])
        np.testing.assert_allclose(values, epochs[curve], rtol=1e-12)
    assert run.data.metrics["best_val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-12)
    for name in ("test_mse", "test_rmse_scaled", "val_mae", "best_epoch", "n_parameters"):
        assert run.data.metrics[name] == pytest.approx(metrics[name], rel=1e-12), name
    client = client_for(uri)
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/learning_curve.png", "plots/forecast.png", "plots/forecast_series.png"}
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(run_dir.parent))
    assert "hidden_dim: 16" in Path(config).read_text()
    return run.info.run_id


@pytest.mark.slow
def test_a_run_in_the_local_store_holds_its_record_and_a_model_that_predicts_as_predict_py(make_cfg, tmp_path):
    """lr=1 makes the best epoch not the last: `best_val_loss` is the best epoch's, beside the whole curve."""
    cfg = make_cfg(*TINY, "trainer.max_epochs=4", *NOISY, "logger=mlflow", "logger.log_model=true",
                   "tags=[tiny]", f"paths.log_dir={tmp_path}")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] < 4
    uri = local_store(tmp_path)
    run_id = check_run(uri, run_dir)
    run = logged_run(uri, run_dir)
    assert run.data.tags["tiny"] == "true" and "group" not in run.data.tags  # a single run belongs to no sweep
    assert run.info.artifact_uri.startswith(str(tmp_path / "mlartifacts"))

    rows = tmp_path / "rows.csv"
    load_frame(cfg.data).to_csv(rows, index=False)
    done = run_entry("predict.py", f"run_dir={run_dir}", f"data.path={rows}", f"output={tmp_path / 'preds.csv'}")
    assert done.returncode == 0, done.stderr[-3000:]
    model = load_model(uri, run.data.tags["model_uri"])
    assert model.metadata.run_id == run_id
    predicted = as_written(model.predict(pd.read_csv(rows)))
    pd.testing.assert_frame_equal(predicted, pd.read_csv(tmp_path / "preds.csv"), check_exact=True)


def test_a_tree_model_logs_every_boosting_round(tmp_path):
    run_dir = tmp_path / "run"
    train(dl_core.compose("model=xgboost", "model.n_estimators=30", "model.early_stopping_rounds=5",
                          "data=synthetic_tabular", "data.generator.n_rows=300", "hardware=cpu1",
                          "logger=mlflow", f"paths.log_dir={tmp_path}", run_dir=run_dir))
    rounds = pd.read_csv(run_dir / "metrics.csv")
    uri = local_store(tmp_path)
    steps, values = history(uri, logged_run(uri, run_dir).info.run_id, "val_loss")
    assert len(rounds) > 5 and steps == list(rounds["epoch"])
    np.testing.assert_allclose(values, rounds["val_loss"], rtol=1e-12)


def test_a_resumed_run_continues_its_mlflow_run_and_logs_each_epoch_once(make_cfg, tmp_path):
    """A run resumed from an epoch before the last one it logged (its best checkpoint copied over `last`, as
    after a kill with trainer.checkpoint_every > 1) trains those epochs again, to the same numbers."""
    overrides = [*TINY, "trainer.max_epochs=4", *NOISY, "logger=mlflow", f"paths.log_dir={tmp_path}"]
    first = make_cfg(*overrides, run="r")
    train(first)
    run_dir = Path(first.paths.output_dir)
    run_id = (run_dir / RUN_ID_FILE).read_text().strip()
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] < 4
    shutil.copyfile(run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt")
    train(make_cfg(*overrides, "trainer.resume=true", run="r"))

    uri = local_store(tmp_path)
    run = logged_run(uri, run_dir)
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    steps, values = history(uri, run_id, "val_loss")
    assert steps == [1, 2, 3, 4]
    np.testing.assert_allclose(values, pd.read_csv(run_dir / "metrics.csv")["val_loss"], rtol=1e-12)
    assert len(client_for(uri).search_runs([run.info.experiment_id])) == 1


@pytest.mark.xdist_group("timing")  # it measures how long training took
@pytest.mark.parametrize("server", ["refused_url", "black_hole_url"])
def test_a_server_that_does_not_answer_is_replaced_by_the_local_store_at_once(server, request, make_cfg, tmp_path,
                                                                              caplog):
    url = request.getfixturevalue(server)
    cfg = make_cfg(*TINY, "trainer.max_epochs=1", "logger=mlflow", f"logger.tracking_uri={url}",
                   f"paths.log_dir={tmp_path}")
    caplog.set_level(logging.WARNING, logger="dl_core.tracking.mlflow_tracker")
    started = time.monotonic()
    train(cfg)
    assert time.monotonic() - started < 60

    warnings = [record.getMessage() for record in caplog.records if record.name == "dl_core.tracking.mlflow_tracker"]
    assert len(warnings) == 1 and f"MLflow server {url} unreachable" in warnings[0]
    assert local_store(tmp_path) in warnings[0]
    assert logged_run(local_store(tmp_path), Path(cfg.paths.output_dir)).info.status == "FINISHED"


@pytest.mark.slow
def test_a_run_logged_to_a_real_mlflow_server(make_cfg, tmp_path, caplog):
    """Then the server stops: logging to it again costs seconds and one warning, and raises nothing."""
    with mlflow_server(tmp_path) as url:
        cfg = make_cfg(*TINY, "trainer.max_epochs=4", *NOISY, "logger=mlflow", "logger.log_model=true",
                       f"logger.tracking_uri={url}", f"paths.log_dir={tmp_path / 'outputs'}")
        train(cfg)
        run_dir = Path(cfg.paths.output_dir)
        run_id = check_run(url, run_dir)
        assert not (tmp_path / "outputs" / "mlflow.db").exists()  # nothing fell back to the local store
        run = logged_run(url, run_dir)
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        model = load_model(url, run.data.tags["model_uri"])
        rows = load_frame(cfg.data)
        pd.testing.assert_frame_equal(model.predict(rows), dl_core.load_run(run_dir).predict(rows), check_exact=True)
        tracker = MlflowTracker(client_for(url), run_id, run_dir, log_model=False, first_epoch=5)

    caplog.set_level(logging.WARNING, logger="dl_core.tracking.mlflow_tracker")
    started = time.monotonic()
    with client_limits():  # as while a run logs
        tracker.log_epoch([{"epoch": 5, "val_loss": 1.0}])
        tracker.log_epoch([{"epoch": 6, "val_loss": 1.0}])
    assert time.monotonic() - started < 60
    warnings = [record.getMessage() for record in caplog.records if record.name == "dl_core.tracking.mlflow_tracker"]
    assert len(warnings) == 1 and "log_batch failed" in warnings[0] and "logs no more to MLflow" in warnings[0]


def test_a_store_that_cannot_be_used_leaves_the_run_without_mlflow_and_one_warning(make_cfg, tmp_path, caplog):
    """The local store's folder is taken by a file: the run trains and writes its files, without MLflow."""
    (tmp_path / "taken").write_text("not a folder")
    cfg = make_cfg(*TINY, "trainer.max_epochs=1", "logger=mlflow", f"paths.log_dir={tmp_path / 'taken'}")
    caplog.set_level(logging.WARNING, logger="dl_core.tracking.mlflow_tracker")
    train(cfg)
    warnings = [record.getMessage() for record in caplog.records if record.name == "dl_core.tracking.mlflow_tracker"]
    assert len(warnings) == 1 and warnings[0].startswith("MLflow: cannot log to the local store")
    run_dir = Path(cfg.paths.output_dir)
    assert (run_dir / "metrics.json").is_file() and not (run_dir / RUN_ID_FILE).exists()


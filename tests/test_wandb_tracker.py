"""W&B tracking, read back from real offline runs: config, per-epoch history, summary, artifact, resume."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dl_core
from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from dl_core.tracking.wandb_tracker import MAX_TABLE_ROWS, RUN_ID_FILE, WandbTracker, resolve_mode
from helpers import TINY, entry_env, run_entry
from wandb_reader import offline_runs, read_history, read_run_record, read_summary, record_types

# Ten times the tiny LSTM's rate, without RevIN (the LSTM's default, which steadies it): losses jump, and the best
# epoch is not the last.
NOISY = ("trainer.lr=1", "model.instance_norm=false")

FAKE_KEY = "k" * 40


@pytest.fixture
def fresh_wandb() -> Iterator[None]:
    """wandb reads its environment (base URL, key) once per process, at `wandb.setup()`: start afresh."""
    import wandb

    wandb.teardown()
    yield
    wandb.teardown()


@pytest.mark.slow
def test_offline_run_holds_config_history_summary_and_model(make_cfg, monkeypatch):
    """lr=1 makes the tiny LSTM's validation loss jump: its best epoch is not its last, and the summary holds the
    best one's val_loss (the last epoch's row, held by W&B until the run ended, used to overwrite it)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(*TINY, "trainer.max_epochs=4", *NOISY, "logger=wandb", "logger.log_model=true",
                   "tags=[tiny]")
    objective = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["best_epoch"] < metrics["epochs"] == 4  # what this test is about
    assert epochs["val_loss"].iloc[-1] != pytest.approx(objective)

    (offline,) = offline_runs(run_dir)
    run = read_summary(offline)
    assert run["state"] == "finished" and run["exit_code"] == 0
    assert run["run_id"] == (run_dir / RUN_ID_FILE).read_text().strip()
    assert run["config"]["model"]["hidden_dim"] == 16 and run["config"]["trainer"]["max_epochs"] == 4
    assert run["tags"] == ["tiny"]
    assert run["summary"]["val_loss"] == pytest.approx(objective)
    history = read_history(offline)
    *per_epoch, media = history
    assert [row["_step"] for row in per_epoch] == [1, 2, 3, 4]
    np.testing.assert_allclose([row["val_loss"] for row in per_epoch], epochs["val_loss"], rtol=1e-12)
    assert run["summary"]["test_mse"] == pytest.approx(metrics["test_mse"])
    assert run["summary"]["best_epoch"] == metrics["best_epoch"]

    # The run's plots as images and its test predictions as a table, after the last epoch.
    assert media["_step"] == 5 and "val_loss" not in media
    assert media["learning_curve._type"] == media["forecast._type"] == "image-file"
    predictions = pd.read_csv(run_dir / "predictions_test.csv")
    table = json.loads((offline / "files" / media["predictions_test.path"]).read_text())
    assert table["columns"] == list(predictions.columns) and len(table["data"]) == len(predictions) <= MAX_TABLE_ROWS
    np.testing.assert_allclose([row[-1] for row in table["data"]], predictions["predicted"], rtol=1e-12)
    assert run["summary"]["predictions_test_rows"] == run["summary"]["predictions_test_rows_logged"] == len(predictions)

    record = read_run_record(offline)
    assert record["project"] == "dl_core" and record["job_type"] == "train"
    assert record["display_name"] == f"LSTMForecaster-synthetic-{run_dir.name}"
    assert "run_group" not in record  # a single run belongs to no sweep
    assert "artifact" in record_types(offline)


def test_a_tree_model_logs_one_point_per_boosting_round(tmp_path, monkeypatch):
    """A boosted-tree fit reports all its rounds at once, when the library returns: W&B logged only the last."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "run"
    train(dl_core.compose("model=xgboost", "model.n_estimators=30", "model.early_stopping_rounds=5",
                          "data=synthetic_tabular", "data.generator.n_rows=300", "hardware=cpu1",
                          "logger=wandb", run_dir=run_dir))
    rounds = pd.read_csv(run_dir / "metrics.csv")
    assert len(rounds) > 5
    (offline,) = offline_runs(run_dir)
    *history, media = read_history(offline)
    assert [row["_step"] for row in history] == list(rounds["epoch"])
    assert media["predicted_vs_actual._type"] == "image-file"
    np.testing.assert_allclose([row["val_loss"] for row in history], rounds["val_loss"], rtol=1e-12)
    assert read_summary(offline)["summary"]["val_loss"] == pytest.approx(rounds["val_loss"].min(), rel=1e-4)


def test_each_epoch_is_logged_once_and_a_resumed_run_logs_only_what_it_trains(tmp_path, monkeypatch):
    """The engine reports the whole history after each epoch; a resumed run's first report carries the epochs
    that the process before it logged."""
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    history = [{"epoch": k, "train_loss": 1.0 / k, "val_loss": 2.0 / k} for k in (1, 2, 3, 4)]
    steps = {}
    for resumed, reports in ((False, [history[:1], history[:2], history[:3]]), (True, [history[:3], history])):
        (tmp_path / str(resumed)).mkdir()
        with wandb.init(project="dl_core", mode="offline", dir=str(tmp_path / str(resumed))) as run:
            tracker = WandbTracker(run, tmp_path, log_model=False, resumed=resumed)
            for report in reports:
                tracker.log_epoch(report)
        (offline,) = offline_runs(tmp_path / str(resumed))
        steps[resumed] = [row["_step"] for row in read_history(offline)]
    assert steps == {False: [1, 2, 3], True: [3, 4]}


def test_resumed_training_continues_the_same_wandb_run(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    first = make_cfg(*TINY, "trainer.max_epochs=1", "logger=wandb", run="resumable")
    objective = train(first)
    time.sleep(1.1)  # wandb names offline run dirs by the second
    assert train(make_cfg(*TINY, "logger=wandb", "trainer.resume=true", run="resumable")) == pytest.approx(objective)

    runs = [read_summary(path) for path in offline_runs(Path(first.paths.output_dir))]
    assert len(runs) == 2
    assert runs[0]["run_id"] == runs[1]["run_id"]
    assert runs[1]["state"] == "finished"
    assert runs[1]["summary"]["val_loss"] == pytest.approx(objective)


def test_mode_auto_is_offline_without_credentials_and_online_with_them(tmp_path, monkeypatch, fresh_wandb):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login user password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert resolve_mode("auto") == "offline"
    with pytest.raises(ConfigError, match=r"logger\.mode"):
        resolve_mode("online")

    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") is None  # the environment decides


@pytest.mark.xdist_group("timing")  # it measures how long training took
@pytest.mark.parametrize("server", ["refused_url", "black_hole_url"])
def test_logged_in_without_network_trains_offline_at_once_with_one_warning(
        server, request, make_cfg, monkeypatch, caplog, fresh_wandb):
    """A logged-in user on a node without network used to stall ~100 s in wandb.init, then crash (CommError)."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", request.getfixturevalue(server))
    cfg = make_cfg(*TINY, "trainer.max_epochs=1", "logger=wandb")
    caplog.set_level(logging.WARNING, logger="dl_core.tracking.wandb_tracker")

    started = time.monotonic()
    train(cfg)
    assert time.monotonic() - started < 30

    warnings = [record.getMessage() for record in caplog.records if record.name == "dl_core.tracking.wandb_tracker"]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "wandb sync" in warnings[0]
    run_dir = Path(cfg.paths.output_dir)
    (offline,) = offline_runs(run_dir)
    assert read_summary(offline)["state"] == "finished"
    assert not list((run_dir / "wandb").glob("run-*"))  # no online run was started


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "wandb_mode", "named"), [
    (["logger.mode=online"], None, "logger.mode=online"), ([], "online", "WANDB_MODE=online")], ids=["logger", "env"])
def test_online_without_credentials_is_one_line_and_exit_status_2(overrides, wandb_mode, named, tmp_path):
    env = {key: value for key, value in entry_env().items() if not key.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "netrc"), WANDB_SILENT="true")
    if wandb_mode:
        env["WANDB_MODE"] = wandb_mode
    done = run_entry("train.py", "logger=wandb", *TINY, "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'run'}",
                     *overrides, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and named in errors[0] and "needs W&B credentials" in errors[0], done.stderr


def test_wandb_and_optuna_are_imported_only_when_used():
    code = ("import sys, dl_core.runs.pipeline, dl_core.tracking.wandb_tracker, dl_core.sweep.summary; "
            "print(sorted(m for m in ('wandb', 'optuna') if m in sys.modules))")
    done = run_entry("-c", code, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.strip() == "[]"

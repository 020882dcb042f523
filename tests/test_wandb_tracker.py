"""W&B tracking, read back from real offline runs: config, per-epoch history, summary, artifact, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY
from dl_core.errors import ConfigError
from dl_core.pipeline import train
from dl_core.tracking.wandb_tracker import RUN_ID_FILE, resolve_mode
from wandb_reader import offline_runs, read_run_record, read_summary, record_types


def test_offline_run_holds_config_history_summary_and_model(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(*TINY, "trainer.max_epochs=2", "logger=wandb", "logger.log_model=true", "tags=[tiny]")
    objective = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())

    (offline,) = offline_runs(run_dir)
    run = read_summary(offline)
    assert run["state"] == "finished" and run["exit_code"] == 0
    assert run["run_id"] == (run_dir / RUN_ID_FILE).read_text().strip()
    assert run["config"]["model"]["hidden_dim"] == 16 and run["config"]["trainer"]["max_epochs"] == 2
    assert run["tags"] == ["tiny"]
    assert run["step"] == 2
    assert run["summary"]["val_loss"] == pytest.approx(objective)
    assert run["summary"]["test_mse"] == pytest.approx(metrics["test_mse"])
    assert run["summary"]["best_epoch"] == metrics["best_epoch"]

    record = read_run_record(offline)
    assert record["project"] == "dl_core" and record["job_type"] == "train"
    assert record["display_name"] == f"LSTMForecaster-synthetic-{run_dir.name}"
    assert "run_group" not in record  # a single run belongs to no sweep
    assert "artifact" in record_types(offline)


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


def test_mode_auto_is_offline_without_credentials_and_online_with_them(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login user password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert resolve_mode("auto") == "offline"
    with pytest.raises(ConfigError, match="logger.mode"):
        resolve_mode("online")

    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") is None  # the environment decides


def test_wandb_and_optuna_are_imported_only_when_used():
    code = ("import sys, dl_core.pipeline, dl_core.tracking.wandb_tracker, dl_core.tracking.sweep_summary; "
            "print(sorted(m for m in ('wandb', 'optuna') if m in sys.modules))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root)}).stdout
    assert out.strip() == "[]"

"""The engine: learning, early stopping with best-weight restore, exact resume, atomic checkpoints, AMP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from dl_core.engine import checkpoint as ckpt
from dl_core.engine.checkpoint import atomic_save, load_checkpoint
from dl_core.errors import ConfigError, TrainingError
from dl_core.pipeline import train
from dl_core.tracking.files import FileTracker
from helpers import ROOT, TINY

TIMING = {"train_time_s", "train_samples_per_s"}


def comparable(run_dir: Path) -> tuple[dict, pd.DataFrame]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = pd.read_csv(run_dir / "metrics.csv").drop(columns="time_s")
    return {k: v for k, v in metrics.items() if k not in TIMING}, history


def test_loss_falls_on_synthetic_data(make_cfg, tmp_path):
    train(make_cfg(*TINY, "trainer.max_epochs=8", "trainer.lr=0.01"))
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert history["val_loss"].min() < 0.5 * history["val_loss"].iloc[0]


def test_early_stopping_restores_the_best_weights(make_cfg, tmp_path):
    objective = train(make_cfg(*TINY, "trainer.max_epochs=30", "trainer.patience=2", "trainer.lr=0.05"))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    history = pd.read_csv(run / "metrics.csv")
    assert metrics["stopped_early"] and metrics["epochs"] == metrics["best_epoch"] + 2
    assert history["val_loss"].iloc[-1] > history["val_loss"].min()  # the last epoch was worse than the best
    # the final evaluation used the best epoch's weights, not the last epoch's
    assert metrics["val_mse_scaled"] == pytest.approx(history["val_loss"].min(), rel=1e-5)
    assert objective == pytest.approx(history["val_loss"].min())
    best = load_checkpoint(run / "checkpoints" / "best.ckpt")
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert best["epoch"] == metrics["best_epoch"] and last["epoch"] == metrics["epochs"]


class CrashAfterTwoEpochs(FileTracker):
    def log_epoch(self, history):
        super().log_epoch(history)
        if len(history) == 2:
            raise KeyboardInterrupt("simulated crash after epoch 2")


def test_crashed_run_resumes_to_the_same_result(make_cfg, tmp_path, monkeypatch):
    train(make_cfg(*TINY, "trainer.max_epochs=5", run="straight"))
    monkeypatch.setattr("dl_core.tracking.FileTracker", CrashAfterTwoEpochs)
    with pytest.raises(KeyboardInterrupt):
        train(make_cfg(*TINY, "trainer.max_epochs=5", run="crashed"))
    assert not (tmp_path / "crashed" / "metrics.json").exists()
    monkeypatch.setattr("dl_core.tracking.FileTracker", FileTracker)
    train(make_cfg(f"trainer.resume={tmp_path / 'crashed'}", run="ignored"))
    straight, resumed = comparable(tmp_path / "straight"), comparable(tmp_path / "crashed")
    assert straight[0] == resumed[0]
    pd.testing.assert_frame_equal(straight[1], resumed[1])
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "best.ckpt")["model"]
    b = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "best.ckpt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_killed_process_resumes_bit_identical(tmp_path):
    """SIGKILL a real training process mid-run, resume it, and match an uninterrupted run exactly."""
    args = [*TINY, "data.generator.length=2500", "trainer.max_epochs=8", "trainer.patience=8",
            "trainer.progress_bar=false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(run_dir: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "train.py", *args, f"hydra.run.dir={run_dir}", *extra],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    killed = start(tmp_path / "killed")
    csv = tmp_path / "killed" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) >= 3:  # header + 2 epochs
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = start(tmp_path / "other", f"trainer.resume={tmp_path / 'killed'}")
    straight = start(tmp_path / "straight")
    for proc in (resumed, straight):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    assert comparable(tmp_path / "killed")[0] == comparable(tmp_path / "straight")[0]
    pd.testing.assert_frame_equal(comparable(tmp_path / "killed")[1], comparable(tmp_path / "straight")[1])


def test_interrupted_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"format_version": ckpt.FORMAT_VERSION, "epoch": 1, "w": torch.arange(5.0)}, path)

    def torn_save(payload, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full / killed midway")

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(OSError):
        atomic_save({"format_version": ckpt.FORMAT_VERSION, "epoch": 2, "w": torch.zeros(5)}, path)
    monkeypatch.undo()
    restored = load_checkpoint(path)
    assert restored["epoch"] == 1 and torch.equal(restored["w"], torch.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_non_finite_loss_stops_with_a_clear_message(make_cfg):
    with pytest.raises(TrainingError, match=r"non-finite loss at epoch 1 .* lower trainer.lr"):
        train(make_cfg(*TINY, "trainer.lr=1e30", "trainer.grad_clip=null"))


def test_bf16_mixed_precision_trains_on_cpu(make_cfg, tmp_path):
    train(make_cfg(*TINY, "hardware.precision=bf16-mixed"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["precision"] == "bf16-mixed"
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_fp16_on_cpu_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="16-mixed needs a CUDA GPU"):
        train(make_cfg(*TINY, "hardware.precision=16-mixed"))


def test_resume_without_a_checkpoint_says_what_to_pass(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint not found"):
        train(make_cfg(*TINY, f"trainer.resume={tmp_path / 'nowhere'}"))

"""The engine: learning, early stopping with best-weight restore, atomic checkpoints, AMP (resume: test_resume.py)."""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest
import torch

from dl_core.engine import checkpoint as ckpt
from dl_core.engine.checkpoint import atomic_save, load_checkpoint
from dl_core.errors import CheckpointError, ConfigError, TrainingError
from dl_core.runs.pipeline import train
from helpers import TINY


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


def test_interrupted_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"format_version": ckpt.FORMAT_VERSION, "epoch": 1, "w": torch.arange(5.0)}, path)

    def torn_save(payload, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full / killed midway")

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"format_version": ckpt.FORMAT_VERSION, "epoch": 2, "w": torch.zeros(5)}, path)
    monkeypatch.undo()
    restored = load_checkpoint(path)
    assert restored["epoch"] == 1 and torch.equal(restored["w"], torch.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_a_checkpoint_of_a_class_no_longer_where_it_was_is_refused_in_one_line(tmp_path, monkeypatch):
    """A run trained before a class it pickles moved (the task, from dl_core.tasks to dl_core.task): refused naming
    the file and what is missing, as a checkpoint of another format is, not a traceback from unpickling."""
    moved = types.ModuleType("dl_core_moved")
    moved.Task = type("Task", (), {"__module__": "dl_core_moved"})
    monkeypatch.setitem(sys.modules, "dl_core_moved", moved)
    atomic_save({"format_version": ckpt.FORMAT_VERSION, "task": moved.Task()}, tmp_path / "best.ckpt")
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"best.ckpt: checkpoint written by another version of dl_core \(No "
                                              r"module named 'dl_core_moved'\); train the run again"):
        load_checkpoint(tmp_path / "best.ckpt")


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

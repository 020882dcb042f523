"""hardware=auto resolves device, threads and precision from the machine and records the choice."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from omegaconf import OmegaConf

from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.hardware import resolve_hardware, supports_bf16
from dl_core.pipeline import train
from helpers import TINY, TINY_GPU, needs_gpu


def test_auto_precision_is_bf16_exactly_where_the_device_computes_it_natively():
    hw = resolve_hardware(OmegaConf.create({"device": "cpu", "precision": "auto", "threads": 1, "compile": False}))
    assert hw.precision == ("bf16-mixed" if supports_bf16(torch.device("cpu")) else "32")


def test_hardware_auto_records_what_it_chose_in_metrics(make_cfg):
    overrides = [o for o in TINY if not o.startswith("hardware")]
    cfg = make_cfg(*overrides, "hardware=auto", "hardware.threads=1", "trainer.max_epochs=1")
    train(cfg)
    metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert metrics["device"] == str(device)
    assert metrics["precision"] == ("bf16-mixed" if supports_bf16(device) else "32")
    assert metrics["threads"] == 1
    for key in ("n_train_samples", "epochs", "train_time_s"):
        assert metrics[key] > 0


@needs_gpu
def test_16_mixed_on_a_gpu_trains_through_the_grad_scaler(make_cfg):
    """fp16 is the one precision whose gradients are scaled: the run must end with finite losses and a
    checkpoint that holds the scaler's state (its scale), which a resumed run needs."""
    cfg = make_cfg(*TINY_GPU, "hardware.precision=16-mixed")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["device"].startswith("cuda") and metrics["precision"] == "16-mixed"
    assert math.isfinite(metrics["val_loss"]) and math.isfinite(metrics["test_mse"])
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["scaler"]["scale"] > 0

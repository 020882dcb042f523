"""The precision rule where nothing is timed (DDP; runs resumed from before auto timed its choice), and 16-mixed's
grad scaler on a GPU. What hardware=auto times and records: test_autotune.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.hardware import choose_precision
from dl_core.errors import ConfigError
from dl_core.runs.pipeline import train
from helpers import TINY_GPU, needs_gpu


@pytest.mark.parametrize(("device", "native_bf16", "requested", "expected"), [
    ("cpu", True, "auto", "bf16-mixed"),  # AVX512-BF16 / AMX
    ("cpu", False, "auto", "32"),  # emulated bf16 is slower than fp32
    ("cuda", True, "auto", "bf16-mixed"),  # Ampere and later
    ("cuda", False, "auto", "32"),  # Volta, Turing
    ("mps", False, "auto", "32"),
    ("cpu", False, "bf16-mixed", "bf16-mixed"),  # asked for: kept, even emulated
    ("cuda", True, "32", "32"),
    ("cuda", False, "16-mixed", "16-mixed"),
])
def test_the_precision_decision_on_fixed_inputs(device, native_bf16, requested, expected):
    assert choose_precision(device, native_bf16, requested) == expected


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_16_mixed_off_cuda_is_refused_naming_the_key(device):
    with pytest.raises(ConfigError, match=rf"^hardware\.precision: 16-mixed needs a CUDA GPU; use bf16-mixed or 32 on "
                                          rf"{device}$"):
        choose_precision(device, True, "16-mixed")


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

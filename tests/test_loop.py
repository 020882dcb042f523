"""The epoch loop: an improving epoch writes `best` and `last` from one payload; the scheduler's settings
come from the config. Resuming from the payload: test_resume.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.loop import build_scheduler
from dl_core.pipeline import train
from helpers import TINY


def test_best_and_last_of_an_improving_epoch_hold_the_same_weights_once(make_cfg):
    cfg = make_cfg(*TINY, "trainer.max_epochs=1")
    train(cfg)
    ckpts = Path(cfg.paths.output_dir) / "checkpoints"
    best, last = load_checkpoint(ckpts / "best.ckpt"), load_checkpoint(ckpts / "last.ckpt")
    for name, weights in best["model"].items():
        assert torch.equal(weights, last["model"][name])
        assert last["model"][name].untyped_storage().data_ptr() == last["best_model"][name].untyped_storage().data_ptr()


def test_the_plateau_schedule_takes_its_factor_and_patience_from_the_config(make_cfg):
    """They were constants in the loop (0.5, and a third of the early-stopping patience)."""
    def schedule(*overrides: str) -> tuple[torch.optim.lr_scheduler.ReduceLROnPlateau, torch.optim.Optimizer]:
        optimizer = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1.0)
        return build_scheduler(optimizer, make_cfg("trainer.scheduler=plateau", *overrides).trainer), optimizer

    given, optimizer = schedule("trainer.plateau_factor=0.2", "trainer.plateau_patience=0")
    given.step(1.0)
    given.step(2.0)  # no improvement, and no patience: the rate drops at once
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    derived, _ = schedule("trainer.patience=9")
    assert (derived.factor, derived.patience) == (0.5, 3)

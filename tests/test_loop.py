"""Engine checkpoints: an improving epoch writes `best` and `last` from one payload, and resuming
from it still ends exactly where an uninterrupted run does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dl_core.data import build_bundle
from dl_core.engine import FitContext, fit, resolve_hardware
from dl_core.engine.checkpoint import load_checkpoint, seed_everything
from dl_core.engine.loop import build_scheduler
from dl_core.models import build_model
from dl_core.pipeline import train
from helpers import TINY, TINY_TABULAR


def test_best_and_last_of_an_improving_epoch_hold_the_same_weights_once(make_cfg):
    cfg = make_cfg(*TINY, "trainer.max_epochs=1")
    train(cfg)
    ckpts = Path(cfg.paths.output_dir) / "checkpoints"
    best, last = load_checkpoint(ckpts / "best.ckpt"), load_checkpoint(ckpts / "last.ckpt")
    for name, weights in best["model"].items():
        assert torch.equal(weights, last["model"][name])
        assert last["model"][name].untyped_storage().data_ptr() == last["best_model"][name].untyped_storage().data_ptr()


class KillAfter:
    """A tracker that stops the run after `epochs` epochs, as a kill between epochs would."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        if len(history) == self.epochs:
            raise KeyboardInterrupt


def fit_run(cfg, resume=None, trackers=()):
    seed_everything(cfg.seed)
    hw = resolve_hardware(cfg.hardware)
    bundle = build_bundle(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    fit(model, bundle, FitContext(cfg.trainer, hw, Path(cfg.paths.output_dir), cfg.seed, {}, trackers, resume))
    return model


# The FT-Transformer case: rtdl builds its no-weight-decay group from a set, whose order differs from model to
# model (and process to process), so a resumed run gave one parameter's Adam moments to another of its shape.
@pytest.mark.parametrize(("args", "kill_after"), [(TINY, 2),
                                              ([*TINY_TABULAR, "data.generator.n_rows=300", "trainer.max_epochs=3"], 1)])
def test_resume_from_shared_payload_ends_like_an_uninterrupted_run(make_cfg, args, kill_after):
    straight = fit_run(make_cfg(*args, run="straight"))
    killed = make_cfg(*args, run="killed")
    with pytest.raises(KeyboardInterrupt):
        fit_run(killed, trackers=[KillAfter(kill_after)])
    resumed = fit_run(killed, resume=load_checkpoint(Path(killed.paths.output_dir) / "checkpoints" / "last.ckpt"))
    for name, weights in straight.state_dict().items():
        assert torch.equal(weights, resumed.state_dict()[name]), name


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

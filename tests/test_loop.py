"""The epoch loop: an improving epoch writes `best` and `last` from one payload; the scheduler's settings
come from the config; a diverging run stops, a noisy one does not. Resuming from the payload: test_resume.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from dl_core.data import build_bundle
from dl_core.engine import FitContext, resolve_hardware
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.engine.loop import build_scheduler, fit
from dl_core.errors import ConfigError, TrainingError
from dl_core.models.build import build_model
from dl_core.runs.config import validate
from dl_core.runs.pipeline import train
from helpers import TINY

# Ten times the tiny LSTM's rate, without RevIN (the LSTM's default, which steadies it): losses jump, and the best
# epoch is not the last.
NOISY = ("trainer.lr=1", "model.instance_norm=false")


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


def test_a_diverging_run_stops_with_one_line_naming_the_learning_rate(make_cfg):
    """lr=1e10 keeps the loss finite (about 1e21: grad_clip bounds each step) and used to finish with exit status 0
    and val_loss 2e19."""
    with pytest.raises(TrainingError) as err:
        train(make_cfg(*TINY, "trainer.lr=1e10"))
    message = str(err.value)
    assert message.startswith("training diverged at epoch 1: its mean loss ") and "\n" not in message
    assert "lower trainer.lr (now 1e+10)" in message and "trainer.divergence_factor=1000" in message


def test_a_healthy_but_noisy_run_trains_to_the_end(make_cfg):
    """lr=1 is ten times the tiny LSTM's usual rate: its losses jump around (the first epoch's mean about ten
    times the first batch's, validation up and down) and it still learns; the guard must let it finish."""
    cfg = make_cfg(*TINY, *NOISY, "trainer.max_epochs=5")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    history = pd.read_csv(run_dir / "metrics.csv")
    reference = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["divergence"]["reference"]
    assert len(history) == 5
    assert history["train_loss"].max() > 5 * reference  # noisy indeed, and within the factor
    assert (history["val_loss"].diff().dropna() > 0).any()  # not a steady descent


def test_a_resumed_run_keeps_the_reference_of_its_first_batch(make_cfg):
    """Taken again after a resume, the reference would be a trained model's loss, and the check stricter."""
    cfg = make_cfg(*TINY, "trainer.max_epochs=1")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    saved = load_checkpoint(last)
    longer = make_cfg(*TINY, "trainer.max_epochs=2", run="longer")  # the engine alone: a resume may extend
    hw = resolve_hardware(longer.hardware)
    bundle = build_bundle(longer.data)
    model = build_model(longer.model, bundle.spec)
    fit(model, bundle, FitContext(longer.trainer, hw, Path(longer.paths.output_dir), longer.seed, {}, (), saved))
    resumed = load_checkpoint(Path(longer.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert resumed["epoch"] == 2
    assert resumed["divergence"]["reference"] == saved["divergence"]["reference"]


@pytest.mark.parametrize("value", ["1", "0.5"])
def test_a_divergence_factor_of_one_or_less_is_refused_naming_the_key(make_cfg, value):
    with pytest.raises(ConfigError, match=rf"^trainer\.divergence_factor: must be > 1 or null .*got {value}"):
        validate(make_cfg(f"trainer.divergence_factor={value}"))

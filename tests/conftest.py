"""Shared fixtures: compose the real Hydra config the way train.py does, with a run dir under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import dl_core  # noqa: E402,F401  (registers the schemas)

# Small enough to train in a second or two on one CPU core, big enough to learn something.
TINY = [
    "data.generator.length=400",
    "data.sequence_length=12",
    "model.hidden_dim=16",
    "model.num_layers=1",
    "trainer.max_epochs=3",
    "trainer.batch_size=64",
    "hardware=cpu",
    "hardware.threads=1",
]


def compose_config(overrides: list[str], run_dir: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(ROOT / "conf")):
            return compose("train", overrides=[f"paths.output_dir={run_dir}", "trainer.progress_bar=false",
                                               *overrides])
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg("model.hidden_dim=8", run="a")` -> composed config writing to tmp_path/<run>."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        return compose_config(list(overrides), tmp_path / run)

    return make

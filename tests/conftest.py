"""Shared fixtures: compose the real Hydra config the way train.py does, with a run dir under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

import dl_core


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """`make_cfg("model.hidden_dim=8", run="a")` -> composed config writing to tmp_path/<run>."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        return dl_core.compose("trainer.progress_bar=false", *overrides, run_dir=tmp_path / run)

    return make

"""Shared fixtures: compose the real Hydra config the way train.py does, with a run dir under tmp_path.
And the order tests run in under pytest-xdist."""

from __future__ import annotations

import signal
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


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background (`make test &` in a script, nohup) inherits SIGINT ignored, and
    Python leaves an ignored SIGINT ignored, in this process and in every script a test starts: the Ctrl-C
    test's interrupt would never arrive. A handler of this process's own is reset to the default in its
    children, so they get Ctrl-C as from a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (the sort is stable): under xdist the long ones then overlap the many short ones,
    instead of one of them ending the run alone on one worker while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)

"""trainer.batch_size=auto: the search on its own, and the CPU path end to end through train()."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


from dl_core.engine.batch_size import DEFAULT_BATCH_SIZE, largest_batch
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.pipeline import train
from tests.conftest import TINY


def probe_log(limit_that_fits: int) -> tuple[list[int], Callable[[int], bool]]:
    tried: list[int] = []

    def fits(size: int) -> bool:
        tried.append(size)
        return size <= limit_that_fits

    return tried, fits


def test_largest_batch_doubles_until_out_of_memory_and_keeps_the_last_fit():
    tried, fits = probe_log(300)
    assert largest_batch(fits, 32, 10_000) == 256
    assert tried == [32, 64, 128, 256, 512]


def test_largest_batch_never_exceeds_the_split():
    _, fits = probe_log(10_000)
    assert largest_batch(fits, 32, 100) == 100


def test_largest_batch_backs_off_below_the_start_when_the_start_does_not_fit():
    _, fits = probe_log(20)
    assert largest_batch(fits, 32, 10_000) == 16


def test_auto_batch_size_on_cpu_keeps_the_default_and_records_it(make_cfg):
    cfg = make_cfg(*TINY, "trainer.batch_size=auto", "trainer.max_epochs=1")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["batch_size"] == DEFAULT_BATCH_SIZE == 32
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["config"]["trainer"]["batch_size"] == 32

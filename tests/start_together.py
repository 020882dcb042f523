"""A Hydra callback for the sweep-worker tests: sweep processes started at once really start together.

Four processes launched at the same instant reach their sweep seconds apart on a loaded machine (Python,
torch and Hydra start-up), so a worker may find another's trial already in the study and the test
would not be the worst case of the issue. Each process waits here, in `on_multirun_start` (after the
sweep summary's callback, before Hydra builds the sweeper and its sampler), until all have arrived.
Test code only, passed on the command line as `+hydra.callbacks.start_together=...`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class StartTogether(Callback):
    def __init__(self, folder: str, count: int, timeout_s: float = 300) -> None:
        self.folder, self.count, self.timeout_s = Path(folder), count, timeout_s

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / str(os.getpid())).touch()
        deadline = time.monotonic() + self.timeout_s
        while len(list(self.folder.iterdir())) < self.count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count} sweep processes did not all start within {self.timeout_s} s")
            time.sleep(0.05)

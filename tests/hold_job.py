"""A Hydra callback for the sweep-worker tests: a trial that is still running when its worker is killed.

The tests of dead workers kill a worker mid-trial, then launch more sweeps on the same study, whose trials
must end. A longer training would make the first trial long, but every launch on a study must sweep the
same config (dl_core.sweep.sweeper refuses another), so the trial is held instead: its job waits at its start,
after the sweeper asked the trial and the worker claimed it, while the worker's heartbeat goes on.
The run-directory tests hold a multirun's job the same way, after Hydra opened its log, while another run takes its
directory. Test code only, passed on the command line as `+hydra.callbacks.hold_job._target_=hold_job.HoldJob`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class HoldJob(Callback):
    """Holds each job `seconds`, or until the file `until` exists (a test lets another process go first)."""

    def __init__(self, seconds: float = 600, until: str | None = None) -> None:
        self.seconds = seconds  # longer than a test waits for the trial: it is killed first
        self.until = until

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not (self.until and os.path.exists(self.until)):
            time.sleep(0.1)

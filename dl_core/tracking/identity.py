"""What a run computes: its config less the keys that cannot change its numbers, and the fingerprint of that.

Two configs that differ only in where a run writes, what it is called, how it is tracked or shown, how
often `last.ckpt` is written, how many CPU threads it uses, which card of a kind it takes, or whether it
may reuse a finished run, compute the same numbers (threads move the last bits of some kernels at most, as
another machine would: a resume may change them for the same reason). The sweep wing compares the configs
of a study's launches on what is left (dl_core/sweep/sweeper.py `study_config`), and a run with
`reuse=true` finds a finished run by the fingerprint of it (dl_core/tracking/run_index.py): one rule for
both, here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any

# Keys of a run's config that cannot change what it computes: where files go (and the run to continue, and
# hardware=auto's answers), the run's name and labels, tracking, display, how often `last` is written, CPU threads,
# the trial's bookkeeping (which the sweeper sets), whether a finished run may be reused, and the table a suite
# renders.
NOT_WHAT_A_RUN_COMPUTES = ("paths", "task_name", "tags", "logger", "trial", "reuse", "benchmark",
                           "trainer.resume", "trainer.progress_bar", "trainer.checkpoint_every", "hardware.threads",
                           "hardware.probe_cache")


def computed_config(config: dict[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """`config` (a plain container) less `NOT_WHAT_A_RUN_COMPUTES` and the keys `also` names; the card's index in
    `hardware.device` (cuda:0, cuda:1) is dropped, since which card of a kind a run takes is where it runs."""
    config = copy.deepcopy(config)
    for key in (*NOT_WHAT_A_RUN_COMPUTES, *also):
        _pop(config, key)
    hardware = config.get("hardware")
    if isinstance(hardware, dict) and isinstance(hardware.get("device"), str):
        hardware["device"] = hardware["device"].split(":")[0]
    return config


def fingerprint(config: dict[str, Any]) -> str:
    """The identity of a run's composed config (a resolved plain container): sha256 of `computed_config` as
    canonical JSON, so that key order, a tuple for a list and the interpreter never change it."""
    text = json.dumps(computed_config(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _pop(tree: dict[str, Any], key: str) -> None:
    *parents, last = key.split(".")
    node: Any = tree
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)

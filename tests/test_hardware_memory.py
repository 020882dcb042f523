"""The allocator set-up of `resolve_hardware`: a training step reuses freed heap memory from the first step on.

Measured in fresh processes, since glibc's thresholds are per process and move once a large block is
freed: 20 steps of a 2-layer LSTM over a batch of 32 windows of 60 steps (temporaries of a few MB).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import ROOT

STEPS = """
import resource, sys
import torch
from omegaconf import OmegaConf
from dl_core.engine.hardware import resolve_hardware

if sys.argv[1] == "resolved":
    resolve_hardware(OmegaConf.create({"device": "cpu", "precision": 32, "threads": 1, "compile": False}))
torch.set_num_threads(1)
torch.manual_seed(0)
lstm = torch.nn.LSTM(8, 64, num_layers=2, batch_first=True)
optimizer = torch.optim.AdamW(lstm.parameters())
x = torch.randn(32, 60, 8)

def step():
    out, _ = lstm(x)
    optimizer.zero_grad()
    out.square().mean().backward()
    optimizer.step()

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", STEPS, mode], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc") if "CS_GNU_LIBC_VERSION"
                    in os.confstr_names else True, reason="the allocator set-up is for glibc")
def test_training_steps_stop_faulting_in_fresh_pages_once_the_hardware_is_resolved() -> None:
    """Without it every step maps its temporaries anew (tens of thousands of page faults over 20 steps, the
    first epoch's extra seconds); with it the steps reuse the heap."""
    assert page_faults("resolved") < 500
    assert page_faults("plain") > 10_000

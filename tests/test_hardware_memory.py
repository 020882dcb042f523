"""The allocator set-up of `resolve_hardware`: a step's multi-megabyte temporaries come from the heap and stay there.

Read through glibc's own accounting (mallinfo2) in fresh processes, since its thresholds are per process and move
once a large block is freed. The effect on training time and page faults is measured, not tested:
`experiments/short_trials.py` (experiments/README.md, "Short trials"). Counting a step's page faults here was
flaky: how soon glibc's dynamic threshold rises in an untouched process depends on what the imports freed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import entry_env

BLOCK = """
import ctypes, sys
import torch
from omegaconf import OmegaConf
from dl_core.engine.hardware import resolve_hardware

FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "resolved":
    resolve_hardware(OmegaConf.create({"device": "cpu", "precision": 32, "threads": 1, "compile": False,
                                       "compile_mode": "default"}))
mapped_before = libc.mallinfo2().hblkhd
block = torch.ones(24 << 18)
mapped = libc.mallinfo2().hblkhd - mapped_before
heap_with_block = libc.mallinfo2().arena
del block
print(mapped, heap_with_block - libc.mallinfo2().arena)
"""

GLIBC = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else ""


def allocate_24_mib(mode: str) -> tuple[int, int]:
    """Bytes freshly mapped for one 24 MiB tensor, and bytes the heap gave back when it was freed."""
    env = entry_env()
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", BLOCK, mode], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    mapped, returned = done.stdout.split()
    return int(mapped), int(returned)


@pytest.mark.skipif(not GLIBC.startswith("glibc") or tuple(map(int, GLIBC.split()[1].split(".")[:2])) < (2, 33)
                    if GLIBC else True, reason="the allocator set-up is for glibc; mallinfo2 needs 2.33+")
def test_a_step_sized_block_is_served_from_the_heap_and_kept_once_the_hardware_is_resolved() -> None:
    """Untouched glibc maps such a block fresh (faulted in page by page, unmapped on free, at every step until its
    threshold rises); resolved, the block comes from the heap and its pages stay for the next step."""
    plain_mapped, _ = allocate_24_mib("plain")
    resolved_mapped, resolved_returned = allocate_24_mib("resolved")
    assert plain_mapped >= 24 << 20
    assert resolved_mapped == 0
    assert resolved_returned == 0

"""Resolve `conf/hardware` into a concrete device, precision, thread count and compile setting, and set up the
process's memory allocator for training.

`resolve_hardware` settles the device and what the config fixes; what it leaves to `auto` takes a provisional
value (full precision, torch's threads) until `autotune.settle_hardware` has the model and its batches to time.
The decisions are pure functions of their inputs (`choose_precision`, `rule_threads`, `autotune.candidates`,
`autotune.choose`), so they are tested on fixed inputs, without the machine.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from dl_core.errors import ConfigError

log = logging.getLogger(__name__)

# torch's thread count as this process started (OMP_NUM_THREADS, else one per physical core), before any run set
# it: a process that trains several runs one after another (a joblib worker) starts each from it again.
DEFAULT_THREADS = torch.get_num_threads()
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class Hardware:
    device: torch.device
    precision: str  # "32" | "bf16-mixed" | "16-mixed"
    threads: int
    compile: bool
    compile_mode: str = "default"  # torch.compile's mode: "reduce-overhead" captures the step in CUDA graphs
    probe: dict[str, Any] | None = field(default=None, compare=False)  # what hardware=auto timed, if it did

    def autocast(self) -> AbstractContextManager:
        """Mixed precision for the forward pass; a no-op at full precision."""
        dtype = AUTOCAST_DTYPES.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    @property
    def needs_grad_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.precision == "16-mixed"

    def describe(self) -> dict[str, object]:
        return {"device": str(self.device), "precision": self.precision, "threads": self.threads,
                "compile": self.compile, **({"compile_mode": self.compile_mode} if self.compile else {})}

    def record(self) -> dict[str, object]:
        """What a run's metrics.json says of its hardware: `describe()`, and what auto timed to choose it."""
        return {**self.describe(), **({"hardware_probe": self.probe} if self.probe is not None else {})}

    def settings(self) -> dict[str, object]:
        """The config values that reproduce this choice (the schema's 32 is an int), which the run's saved config
        records so that a resume trains as the run did."""
        return {"precision": 32 if self.precision == "32" else self.precision, "threads": self.threads,
                "compile": self.compile}


def resolve_hardware(cfg, concurrent_runs: int = 1) -> Hardware:
    """The device, and each setting the config fixes; `auto` precision and threads are full precision and
    torch's threads shared among `concurrent_runs` until `settle_hardware` has timed the model. `compile=auto`
    does not compile: on the CPU compiled training steps of PatchTST, the FT-Transformer and the LSTMs ran at
    0.71-1.05x the eager steps' speed after 2-107 s of compiling (experiments/README.md, "torch.compile on the
    CPU"), which no run pays back; on a GPU, capturing the step (`compile_mode=reduce-overhead`) is not
    measured yet (experiments/gpu_timing.sh measures it). With several runs side by side on one GPU each may
    allocate its share of the GPU's memory, so that none takes what the others need (a batch-size search finds
    what fits in the share)."""
    reuse_freed_memory()
    device = _device(cfg.device)
    requested = str(cfg.precision)  # the schema's int 32 is "32" like the other names
    # An explicit precision asks nothing of the device (16-mixed is checked against it); auto is timed later.
    precision = "32" if requested == "auto" else choose_precision(device.type, False, requested)
    torch.set_num_threads(rule_threads(cfg.threads, concurrent_runs))
    if device.type == "cuda" and concurrent_runs > 1:
        torch.cuda.set_per_process_memory_fraction(1 / concurrent_runs, device)
    if concurrent_runs > 1:
        log.info("%d runs side by side on this machine (hydra.launcher.n_jobs): %s", concurrent_runs,
                 f"at most 1/{concurrent_runs} of {device}'s memory each" if device.type == "cuda"
                 else "the CPU's cores shared among them")
    return Hardware(device, precision, torch.get_num_threads(), cfg.compile is True, str(cfg.compile_mode))


def rule_threads(requested: int | str | None, concurrent_runs: int) -> int:
    """The thread count where none is timed: the config's number; torch's default for null; and for auto (on
    a GPU, whose threads only launch kernels; on a CPU until timed) torch's default shared among the runs side
    by side."""
    if isinstance(requested, int):
        return requested
    return DEFAULT_THREADS if requested is None else max(1, DEFAULT_THREADS // max(1, concurrent_runs))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or a SLURM task's share)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def concurrent_runs() -> int:
    """How many runs share this machine by design: the joblib launcher's `n_jobs` when this run is one job of a
    Hydra multirun it launched (-1 meaning a job per core, as joblib counts), else 1."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return 1
    jobs = OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=None)
    if not isinstance(jobs, int):
        return 1
    return max(1, jobs if jobs > 0 else (os.cpu_count() or 1) + 1 + jobs)


# mallopt(3) parameters of glibc, and the largest mmap threshold its own dynamic rule ever reaches on 64-bit
# systems (DEFAULT_MMAP_THRESHOLD_MAX); the trim threshold is twice the mmap threshold, as that rule sets it.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def reuse_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MiB in the heap for the next training step (glibc only; True when set).

    glibc serves blocks above its mmap threshold (128 KiB at start) with fresh pages from the kernel and
    returns them on free, and it raises the threshold only once a block that large is freed. A step's
    temporaries (an LSTM's gates over a batch of windows: megabytes) were therefore mapped, faulted in
    page by page and unmapped at every step until the first validation pass freed a block big enough:
    the first epoch of an LSTM on ETTh1 took 700,000 page faults and 2 s of system time more than the
    next (experiments/README.md, "Short trials"). Fixing the thresholds at the values glibc would
    reach gives every epoch the speed of the later ones. Settings from the environment
    (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) are left alone.
    """
    libc_version = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else None
    if not libc_version or not libc_version.startswith("glibc") or any(name in os.environ for name in MALLOC_ENV):
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))


def _device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"hardware.device: {name} requested but no CUDA GPU is visible; "
                          f"use hardware=cpu (or hardware.device=auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("hardware.device: mps requested but not available; use hardware=cpu")
    return torch.device(name)


def choose_precision(device_type: str, native_bf16: bool, requested: str) -> str:
    """The precision a run trains at where nothing is timed: an explicit choice is kept, except 16-mixed, whose
    grad scaler needs CUDA; `auto` is bf16-mixed where the device computes bf16 natively (emulated bf16 is slower
    than fp32) and 32 elsewhere, the rule for DDP and for runs resumed from before auto timed its choice
    (`autotune.settle_hardware` times it otherwise). A pure function of its inputs, so the decision is tested
    without the machine."""
    if requested == "auto":
        return "bf16-mixed" if native_bf16 else "32"
    if requested == "16-mixed" and device_type != "cuda":
        raise ConfigError(f"hardware.precision: 16-mixed needs a CUDA GPU; use bf16-mixed or 32 on {device_type}")
    return requested


def supports_bf16(device: torch.device) -> bool:
    """The probe of this machine: native bf16 math on Ampere+ GPUs, and CPUs with AVX512-BF16 or AMX
    (through oneDNN). Elsewhere bf16 is emulated, slower than fp32, so `precision=auto` keeps fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False

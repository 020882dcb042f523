"""Resolve `conf/hardware` into a concrete device, precision and thread count, and set up the process's
memory allocator for training."""

from __future__ import annotations

import ctypes
import functools
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from dl_core.errors import ConfigError

AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class Hardware:
    device: torch.device
    precision: str  # "32" | "bf16-mixed" | "16-mixed"
    threads: int
    compile: bool

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
                "compile": self.compile}


def resolve_hardware(cfg) -> Hardware:
    reuse_freed_memory()
    device = _device(cfg.device)
    requested = str(cfg.precision)  # the schema's int 32 is "32" like the other names
    # The machine is probed only where its answer decides (auto); an explicit precision asks nothing of the device.
    precision = choose_precision(device.type, requested == "auto" and supports_bf16(device), requested)
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    return Hardware(device, precision, torch.get_num_threads(), bool(cfg.compile))


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
    """The precision a run trains at: `auto` is bf16-mixed where the device computes bf16 natively (emulated
    bf16 is slower than fp32) and 32 elsewhere; an explicit choice is kept, except 16-mixed, whose grad
    scaler needs CUDA. A pure function of its inputs, so the decision is tested without the machine."""
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

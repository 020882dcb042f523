"""Resolve `conf/hardware` into a concrete device, precision and thread count."""

from __future__ import annotations

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
    device = _device(cfg.device)
    precision = _precision(str(cfg.precision), device)  # the schema's int 32 is "32" like the other names
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    return Hardware(device, precision, torch.get_num_threads(), bool(cfg.compile))


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


def _precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16-mixed" if supports_bf16(device) else "32"
    if precision == "16-mixed" and device.type != "cuda":
        raise ConfigError("hardware.precision: 16-mixed needs a CUDA GPU; use bf16-mixed or 32 on "
                          f"{device.type}")
    return precision


def supports_bf16(device: torch.device) -> bool:
    """Native bf16 math: Ampere+ GPUs, and CPUs with AVX512-BF16 or AMX (through oneDNN).

    Elsewhere bf16 is emulated, slower than fp32, so `precision=auto` keeps fp32 there.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False

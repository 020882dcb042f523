"""Training engine: the loop, checkpoints, hardware resolution and metrics."""

from dl_core.engine.hardware import Hardware, resolve_hardware
from dl_core.engine.loop import FitResult, fit, predict

__all__ = ["FitResult", "Hardware", "fit", "predict", "resolve_hardware"]

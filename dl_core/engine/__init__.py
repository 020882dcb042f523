"""Training engine: the estimator seam, the loop, checkpoints, hardware resolution."""

from dl_core.engine.autotune import settle_hardware
from dl_core.engine.estimator import Estimator, TorchEstimator
from dl_core.engine.hardware import Hardware, resolve_hardware
from dl_core.engine.loop import FitContext, FitResult, fit, predict

__all__ = ["Estimator", "FitContext", "FitResult", "Hardware", "TorchEstimator", "fit", "predict",
           "resolve_hardware", "settle_hardware"]

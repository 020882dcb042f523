"""dl_core: a Hydra-composed research harness for deep learning on time series and tables."""

from dl_core.config import register_configs

register_configs()

__all__ = ["register_configs"]

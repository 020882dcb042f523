"""dl_core: a Hydra-composed research harness for deep learning on time series and tables.

    import dl_core
    result = dl_core.run(dl_core.compose("trainer.max_epochs=5"))
"""

from dl_core.config import register_configs

register_configs()

from dl_core.api import RunResult, compose, run  # noqa: E402  (schemas must be registered first)

__all__ = ["RunResult", "compose", "register_configs", "run"]

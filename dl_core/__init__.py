"""dl_core: a Hydra-composed research harness for deep learning on time series and tables.

    import dl_core
    result = dl_core.run(dl_core.compose("trainer.max_epochs=5"))
    predictions = dl_core.load_run(result.run_dir).predict(new_rows)
"""

from dl_core.runs.config import register_configs

register_configs()

from dl_core.runs.api import RunResult, compose, run  # noqa: E402  (schemas must be registered first)
from dl_core.serving.load import load_run  # noqa: E402

__all__ = ["RunResult", "compose", "load_run", "register_configs", "run"]

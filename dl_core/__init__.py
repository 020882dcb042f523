"""dl_core: a Hydra-composed research harness for deep learning on time series and tables.

    import dl_core
    result = dl_core.run(dl_core.compose("trainer.max_epochs=5"))
    predictions = dl_core.load_run(result.run_dir).predict(new_rows)

Importing the package imports nothing else: each name below loads its module when first used, and the
config schemas are registered (every model module imported) when a config is first composed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dl_core.runs.api import RunResult, compose, run
    from dl_core.runs.config import register_configs
    from dl_core.serving.load import load_run

# The public API: name -> the module that defines it.
PUBLIC = {"RunResult": "dl_core.runs.api", "compose": "dl_core.runs.api", "run": "dl_core.runs.api",
          "load_run": "dl_core.serving.load", "register_configs": "dl_core.runs.config"}

__all__ = ["RunResult", "compose", "load_run", "register_configs", "run"]


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module 'dl_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(PUBLIC[name]), name)
    globals()[name] = value
    return value

"""Models: one module per model family, its schema beside it, no training code (dl_core/models/build.py builds
them from `conf/model/<module>.yaml`). Heads and output kinds every forecaster shares: heads.py, outputs.py;
RevIN: revin.py; numeric embeddings of the table models: features.py; what the tree models share: trees.py.

This module is what a model module may need of the package, and stays that small: importing the output
kinds (which the task imports) must not import the builder, which imports the data step.
"""

from __future__ import annotations

from dl_core.errors import ConfigError


def require_target_inputs(target_index: list[int] | None, model: str) -> list[int]:
    """Models that forecast a target from its own history need that target among the inputs."""
    if target_index is None:
        raise ConfigError(f"model={model} forecasts each target from its own past values; set "
                          f"data.include_target_in_inputs=true")
    return list(target_index)

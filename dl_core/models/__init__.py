"""Build models from `conf/model/*.yaml`, passing in the data-derived sizes each constructor asks for.

Every `_target_` goes through `build_model`, the one place that instantiates, with Hydra 1.4's
execution whitelist limited to the `dl_core.models` package. A model class states the data it
consumes in `data_kind`, so a model/data mismatch is caught before any data is loaded.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from torch import nn

from dl_core.errors import ConfigError

ALLOWED_PREFIX = "dl_core.models."
DATA_CONFIGS = {"timeseries": "data=synthetic or data=csv_timeseries", "tabular": "data=synthetic_tabular or data=csv_tabular"}
MODELS_FOR = {"timeseries": "model=lstm", "tabular": "model=ft_transformer"}


def model_class(cfg: DictConfig) -> type[nn.Module]:
    target = cfg.get("_target_")
    if not isinstance(target, str) or not target.startswith(ALLOWED_PREFIX):
        raise ConfigError(f"model._target_: {target!r} is not a dl_core model; pick one of conf/model/*.yaml")
    return get_class(target)


def check_model_fits_data(model_cfg: DictConfig, data_kind: str, model_name: str) -> None:
    wanted = getattr(model_class(model_cfg), "data_kind", data_kind)
    if wanted != data_kind:
        raise ConfigError(f"model={model_name} needs {wanted} data but the data config is {data_kind}; "
                          f"use {DATA_CONFIGS.get(wanted, 'a ' + wanted + ' data config')}, or "
                          f"{MODELS_FOR.get(data_kind, 'a model made for ' + data_kind + ' data')} for this data")


def build_model(cfg: DictConfig, spec: dict[str, Any]) -> nn.Module:
    """Instantiate `cfg` with the spec entries its constructor accepts (sizes come from the data)."""
    params = inspect.signature(model_class(cfg).__init__).parameters
    sizes = {k: v for k, v in spec.items() if k in params}
    return instantiate(cfg, **sizes, _convert_="all", _execution_whitelist_=ALLOWED_PREFIX + "*")

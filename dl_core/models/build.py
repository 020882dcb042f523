"""Building a model from `conf/model/<module>.yaml`, and checking it against the data before any is loaded.

A model module holds the model class and its schema, a dataclass whose `_target_` names that class;
`schemas()` finds it (registered as `model/<module>_schema`), so adding a model touches no other
file. Every `_target_` goes through `build_model`, the one place that instantiates, with Hydra
1.4's execution whitelist limited to this package; sizes that depend on the data come from the
bundle's spec. A model class states the data it consumes in `data_kind`, and the covariates it
accepts besides its past inputs in the flags `accepts_future_covariates` and `accepts_static_covariates`
(as neuralforecast's models do; absent means no), so a model/data mismatch is caught before any data
is loaded; the data options it needs it declares in `data_options` (gradient-boosted trees read raw
numbers), which `apply_data_options` sets before the data step. A model is an `nn.Module`, trained by
the epoch engine, or an `Estimator` of its own (`build_estimator` wraps the first and returns the
second as it is). A module that needs more from the engine than its inputs names, in `estimator_class`,
the `TorchEstimator` that wraps it (TabR's tells it which training rows a batch holds).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import pkgutil
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

import dl_core.models as package
from dl_core.data.tabular import RAW
from dl_core.engine.estimator import Estimator, TorchEstimator
from dl_core.engine.hardware import Hardware
from dl_core.errors import ConfigError

log = logging.getLogger(__name__)

ALLOWED_PREFIX = f"{package.__name__}."
DATA_CONFIGS = {"timeseries": "data=synthetic or data=csv_timeseries",
                "tabular": "data=synthetic_tabular or data=csv_tabular"}
MODELS_FOR = {"timeseries": "model=lstm", "tabular": "model=ft_transformer"}
# Covariate kind -> (the model class's flag, the data keys that ask for it).
COVARIATE_KINDS = {
    "known-future": ("accepts_future_covariates", ("future_covariates", "calendar_features")),
    "static": ("accepts_static_covariates", ("static_columns",)),
}


def schemas() -> dict[str, type]:
    """`model/<module>_schema` -> schema, for every module of this package that defines one."""
    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        schema = model_schema(importlib.import_module(f"{package.__name__}.{module.name}"))
        if schema is not None:
            found[f"model/{module.name}_schema"] = schema
    return found


def model_schema(module: Any) -> type | None:
    """The dataclass of `module` whose `_target_` is a class of that module: the model's schema."""
    for value in vars(module).values():
        if dataclasses.is_dataclass(value) and isinstance(value, type) and value.__module__ == module.__name__ \
                and str(getattr(value, "_target_", "")).startswith(f"{module.__name__}."):
            return value
    return None


def model_class(cfg: DictConfig) -> type:
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


def apply_data_options(model_cfg: DictConfig, data_cfg: DictConfig, model_name: str) -> None:
    """Set in `data_cfg` what the model's class declares in `data_options`, saying in one line what that
    replaces, so the run's saved config records the data the model really read. A model that declares
    no raw numbers refuses them: missing values would reach it as NaN."""
    declared = dict(getattr(model_class(model_cfg), "data_options", {}))
    replaced = {key: data_cfg.get(key) for key, value in declared.items() if data_cfg.get(key) != value}
    if replaced:
        log.info("model=%s sets %s", model_name,
                 ", ".join(f"data.{key}={declared[key]} (was {was})" for key, was in replaced.items()))
        with open_dict(data_cfg):
            for key in replaced:
                data_cfg[key] = declared[key]
    if data_cfg.get("numeric_transform") == RAW and declared.get("numeric_transform") != RAW:
        raise ConfigError(f"data.numeric_transform: {RAW} passes missing numbers as NaN, which "
                          f"model={model_name} cannot read; use quantile or standard")


def model_spec(cfg: DictConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec entries the model's constructor takes: what building it again needs (a checkpoint keeps these)."""
    params = inspect.signature(model_class(cfg).__init__).parameters
    return {k: v for k, v in spec.items() if k in params}


def check_model_takes_covariates(model_cfg: DictConfig, data_cfg: DictConfig, model_name: str) -> None:
    """Refuse covariates the model does not declare, naming the model and the kind: never drop them silently."""
    cls = model_class(model_cfg)
    for kind, (flag, keys) in COVARIATE_KINDS.items():
        asked = {f"data.{key}": list(data_cfg.get(key) or []) for key in keys}
        asked = {key: value for key, value in asked.items() if value}
        if asked and not getattr(cls, flag, False):
            settings = ", ".join(f"{key}={value}" for key, value in asked.items())
            raise ConfigError(f"model={model_name} does not take {kind} covariates ({settings}); use a model that "
                              f"does (model=lstm), or leave them out")


def build_model(cfg: DictConfig, spec: dict[str, Any]) -> Any:
    """Instantiate `cfg` with the spec entries its constructor accepts (sizes come from the data)."""
    return instantiate(cfg, **model_spec(cfg, spec), _convert_="all", _execution_whitelist_=ALLOWED_PREFIX + "*")


def build_estimator(cfg: DictConfig, spec: dict[str, Any], hw: Hardware, eval_batch_size: int) -> Estimator:
    """The model of `cfg` as an estimator: an `nn.Module` on `hw`, trained by the epoch engine (through its
    `estimator_class` if it names one), or the model's own `Estimator`."""
    model = build_model(cfg, spec)
    if isinstance(model, nn.Module):
        return getattr(model, "estimator_class", TorchEstimator)(model.to(hw.device), hw, eval_batch_size)
    return model


def load_estimator(checkpoint: dict[str, Any], hw: Hardware) -> Estimator:
    """The estimator a checkpoint was written by, with its learned state, ready to predict."""
    config = checkpoint["config"]
    estimator = build_estimator(OmegaConf.create(config["model"]), checkpoint["spec"], hw,
                                int(config["trainer"]["eval_batch_size"]))
    estimator.load_state(checkpoint)
    return estimator

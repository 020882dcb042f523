"""The data step: config -> DataBundle. `build_bundle` dispatches on the data config's `kind` and `source`.

The schemas of `conf/data/` live beside the code that reads them: the time series' in timeseries.py,
the table's in tabular.py, ETT's in ett.py, the generators' in synthetic.py and synthetic_tabular.py,
the splits' in splits.py, what every data option says in loading.py. Their field defaults are the one
source of every default; a YAML option states only what it changes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dl_core.data.bundle import DataBundle
from dl_core.data.loading import read_table
from dl_core.errors import ConfigError
from dl_core.task import TABLE_TASKS

__all__ = ["DataBundle", "build_bundle", "load_frame", "schemas"]


def schemas() -> dict[str, type]:
    """`data/<kind>_schema` -> the schema a `conf/data/` option of that kind lists first in its defaults."""
    from dl_core.data.ett import ETTDataConfig
    from dl_core.data.tabular import TabularDataConfig
    from dl_core.data.timeseries import TimeSeriesDataConfig

    return {"data/timeseries_schema": TimeSeriesDataConfig, "data/ett_schema": ETTDataConfig,
            "data/tabular_schema": TabularDataConfig}


def load_frame(cfg: Any) -> pd.DataFrame:
    """The raw frame of a data config, from its built-in generator or its file."""
    if cfg.source == "synthetic" and cfg.kind == "tabular":
        from dl_core.data.synthetic_tabular import generate_table

        gen = cfg.generator
        n_classes = gen.n_classes if TABLE_TASKS[cfg.task].predicts_classes else None
        return generate_table(gen.n_rows, gen.n_numeric, gen.n_categorical, gen.n_categories, n_classes, gen.noise,
                              gen.seed)
    if cfg.source == "synthetic":
        from dl_core.data.synthetic import generate_series

        gen = cfg.generator
        return generate_series(gen.n_series, gen.length, gen.n_drivers, gen.noise, gen.seed,
                               calendar_effect=gen.calendar_effect, event_effect=gen.event_effect,
                               static_effect=gen.static_effect)
    if cfg.source == "csv":
        return read_table(cfg.path)
    if cfg.source == "ett":
        from dl_core.data.ett import load_ett

        return load_ett(cfg)
    raise ConfigError(f"data.source: unknown source {cfg.source!r}; use synthetic, csv or ett")


def build_bundle(cfg: Any) -> DataBundle:
    if cfg.kind == "timeseries":
        from dl_core.data.timeseries import build_timeseries_bundle

        frame = load_frame(cfg)
        if cfg.source == "ett":
            from dl_core.data.ett import with_mode_columns

            cfg = with_mode_columns(cfg, frame)
        return build_timeseries_bundle(cfg, frame)
    if cfg.kind == "tabular":
        from dl_core.data.tabular import build_tabular_bundle

        return build_tabular_bundle(cfg, load_frame(cfg))
    raise ConfigError(f"data.kind: unknown kind {cfg.kind!r}; use timeseries or tabular")

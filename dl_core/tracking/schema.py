"""Schemas of `conf/logger/`: the experiment trackers besides the run files, their types and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dl_core.errors import require


@dataclass
class PlotConfig:
    """What every logger shares: the run's plots.

    Attributes:
        plot_series: the series (entity labels, `a|b` for several entity columns) that a forecast's
            forecast_series.png draws, one panel each, over the whole horizon; null draws the test split's
            first 4. A name not in the test split is refused before training.
    """

    plot_series: list[str] | None = None


@dataclass
class NoLoggerConfig(PlotConfig):
    """No experiment tracker (logger=none): the run directory's files only (metrics, predictions, plots).

    Attributes:
        plot_series: the series that a forecast's forecast_series.png draws (see `PlotConfig`).
    """


@dataclass
class WandbLoggerConfig(PlotConfig):
    """Weights & Biases run settings (logger=wandb).

    Attributes:
        plot_series: the series that a forecast's forecast_series.png draws (see `PlotConfig`).
        backend: `wandb`; selects the tracker.
        project: W&B project.
        entity: W&B team or user; null uses your default.
        group: run group; null means the sweep's name for multirun jobs.
        job_type: W&B job type.
        name: run name; null builds one from model, data and run dir.
        mode: `auto` (online when logged in with `wandb login`, else offline), `online`, `offline` or `disabled`.
        tags: W&B tags.
        log_model: upload the best checkpoint as an artifact.
    """

    backend: Literal["wandb"] = "wandb"
    project: str = "dl_core"
    entity: str | None = None
    group: str | None = None
    job_type: str = "train"
    name: str | None = None
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    tags: list[str] = field(default_factory=list)
    log_model: bool = False

    def validate(self, prefix: str) -> None:
        require(bool(self.project), f"{prefix}.project", f"must name a W&B project, e.g. {prefix}.project=dl_core")


SCHEMAS = {"logger/wandb_schema": WandbLoggerConfig, "logger/none_schema": NoLoggerConfig}

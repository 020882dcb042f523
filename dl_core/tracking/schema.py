"""Schema of `conf/logger/`: the experiment trackers besides the run files, their types and defaults.

One schema for every option, because several trackers can log one run (`logger=[wandb,mlflow]`): Hydra
merges the options listed into one `logger` node, each turning on its own tracker, and a second schema per
option would reset the trackers the options before it turned on. conf/train.yaml puts the schema first
(`logger/logger_schema`), then the option(s); each option states only what it turns on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dl_core.errors import require

BACKENDS = ("wandb", "tensorboard", "mlflow")


@dataclass
class LoggerConfig:
    """Experiment trackers besides the run files (which are written either way): `logger=none` (the default),
    `logger=wandb`, `logger=tensorboard`, `logger=mlflow`, or several at once, e.g. `logger=[wandb,mlflow]`.

    Attributes:
        wandb: log to Weights & Biases (set by logger=wandb).
        tensorboard: write TensorBoard event files into `<run dir>/tensorboard` (set by logger=tensorboard).
        mlflow: log to MLflow (set by logger=mlflow).
        project: the W&B project, and the MLflow experiment.
        entity: W&B team or user; null uses your default.
        group: run group (W&B group, MLflow tag `group`); null means the sweep's name for multirun jobs.
        job_type: W&B job type.
        name: run name (W&B and MLflow); null builds one from model, data and run dir.
        mode: W&B: `auto` (online when logged in with `wandb login`, else offline), `online`, `offline` or
            `disabled`.
        tags: run tags (W&B tags; MLflow tags set to `true`).
        log_model: W&B: upload the best checkpoint as an artifact; MLflow: log the run as a model
            `mlflow.pyfunc.load_model` predicts with (the best checkpoint is its artifact).
        tracking_uri: MLflow tracking server or store, e.g. `http://mlflow.example.org:5000`; null logs to the
            local store `<paths.log_dir>/mlflow.db` (artifacts in `<paths.log_dir>/mlartifacts`), also the
            fallback when the server does not answer.
    """

    wandb: bool = False
    tensorboard: bool = False
    mlflow: bool = False
    project: str = "dl_core"
    entity: str | None = None
    group: str | None = None
    job_type: str = "train"
    name: str | None = None
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    tags: list[str] = field(default_factory=list)
    log_model: bool = False
    tracking_uri: str | None = None

    def validate(self, prefix: str) -> None:
        require(bool(self.project), f"{prefix}.project", f"must name a project, e.g. {prefix}.project=dl_core")
        require(self.tracking_uri is None or self.mlflow, f"{prefix}.tracking_uri",
                "is for MLflow, which this run does not log to; add it, e.g. logger=[wandb,mlflow]")


SCHEMAS = {"logger/logger_schema": LoggerConfig}

"""Load a trained run from its directory alone: the best checkpoint carries the weights, the fitted
preprocessing, the data spec and the resolved config, so nothing else about the run is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf
from torch import nn

from dl_core.engine.checkpoint import load_checkpoint
from dl_core.errors import ConfigError, DataError
from dl_core.models import build_model
from dl_core.serving import predictions
from dl_core.serving.inputs import InputError, InputSchema


@dataclass
class LoadedRun:
    """A trained model ready to predict on raw rows, plus what a client should know about it."""

    run_dir: Path
    model: nn.Module
    preprocessor: Any
    task: str
    spec: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, Any]

    @cached_property
    def schema(self) -> InputSchema:
        return InputSchema.for_run(self.task, self.preprocessor)

    @property
    def name(self) -> str:
        """The run directory's last component: what clients see, never the server's file layout."""
        return self.run_dir.resolve().name

    @property
    def batch_size(self) -> int:
        return int(self.config["trainer"]["eval_batch_size"])

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check raw rows (as a file or a notebook gives them), then predict."""
        return self.predict_checked(self.schema.validate_frame(frame))

    def predict_checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predict on rows already validated by the schema's row model (the server's request rows)."""
        if self.task != "forecast":
            return predictions.tabular(self.model, self.preprocessor, frame, self.batch_size)
        try:
            rows = self.preprocessor.clean(frame)
        except DataError as err:
            raise InputError((), str(err)) from None  # e.g. duplicate timestamps: the request's fault
        self.schema.check_history(rows)
        return predictions.forecast(self.model, self.preprocessor, rows, self.batch_size)

    def metadata(self) -> dict[str, Any]:
        """Task, model, input columns with types, window and horizon, and the run's final metrics."""
        prep, schema = self.preprocessor, self.schema
        info: dict[str, Any] = {
            "run": self.name, "task": self.task,
            "model": {"class": type(self.model).__name__,
                      "n_parameters": sum(p.numel() for p in self.model.parameters()),
                      "config": self.config["model"]},
            "features": [{"name": name, "type": kind, "nullable": name in schema.nullable}
                         for name, kind in schema.columns.items()],
            "metrics": self.metrics,
        }
        if self.task == "forecast":
            info.update(sequence_length=prep.sequence_length, horizon=prep.horizon, targets=prep.target_columns,
                        timestamp_column=prep.timestamp_column, entity_columns=prep.entity_columns)
        else:
            info.update(target=prep.target_column, classes=list(prep.classes))
        return info


def load_run(run_dir: str | Path) -> LoadedRun:
    """The run's best weights in eval mode on CPU, with its preprocessing and metrics."""
    run_dir = Path(run_dir).expanduser()
    path = run_dir / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise ConfigError(f"run_dir: no checkpoints/best.ckpt under {run_dir.resolve()}; pass the directory of a "
                          f"finished training run, e.g. run_dir=outputs/train/runs/<timestamp>")
    state = load_checkpoint(path)
    model = build_model(OmegaConf.create(state["config"]["model"]), state["spec"])
    model.load_state_dict(state["model"])
    model.eval()
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return LoadedRun(run_dir, model, state["preprocessor"], state["task"], state["spec"], state["config"], metrics)

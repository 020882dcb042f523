"""Batch prediction on a file: what `predict.py` runs."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from dl_core.data.loading import read_table
from dl_core.serving.inputs import InputError
from dl_core.serving.load import load_run


def predict_file(cfg: DictConfig) -> Path:
    """Validate `data.path` against the run's inputs, predict, write the CSV and return its path."""
    OmegaConf.to_object(cfg).validate()
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    run = load_run(cfg.run_dir)
    frame = read_table(cfg.data.path)
    try:
        predictions = run.predict(frame)
    except InputError as err:
        raise InputError(err.loc, f"{err.reason} (in data.path={cfg.data.path})") from None
    output = Path(cfg.output) if cfg.output else Path(cfg.run_dir) / "predictions" / f"{Path(cfg.data.path).stem}.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(output, index=False)
    return output

"""Predict on new rows with a trained run: `python predict.py run_dir=<run> data.path=<new.csv>`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import dl_core  # noqa: F401  (registers the config schemas before Hydra composes)
from dl_core.runs.cli import run, run_job
from dl_core.serving.batch import predict_file


@hydra.main(config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    print(run_job(predict_file, cfg))


if __name__ == "__main__":
    run(main)

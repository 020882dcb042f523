"""Train one model: `python train.py model=lstm data.sequence_length=60` (see conf/train.yaml)."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import dl_core  # noqa: F401  (registers the config schemas before Hydra composes)
from dl_core.runs.cli import run, run_job
from dl_core.runs.pipeline import train


@hydra.main(config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return run_job(train, cfg)


if __name__ == "__main__":
    run(main)

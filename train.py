"""Train one model: `python train.py model=lstm data.sequence_length=60` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from dl_core.runs.cli import run, run_job
from dl_core.runs.pipeline import train


@hydra.main(config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return run_job(train, cfg)


if __name__ == "__main__":
    run(main)

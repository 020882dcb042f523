"""Predict on new rows with a trained run: `python predict.py run_dir=<run> data.path=<new.csv>`."""

import hydra
from omegaconf import DictConfig

from dl_core.runs.cli import run, run_job
from dl_core.serving.batch import predict_file


@hydra.main(config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    print(run_job(predict_file, cfg))


if __name__ == "__main__":
    run(main)

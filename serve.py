"""Serve a trained run over HTTP: `python serve.py run_dir=<run> host=127.0.0.1 port=8000` (docs at /docs)."""

import hydra
from omegaconf import DictConfig

from dl_core.runs.cli import run, run_job
from dl_core.serving.app import serve


@hydra.main(config_path="conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    run_job(serve, cfg)


if __name__ == "__main__":
    run(main)

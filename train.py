"""Train one model: `python train.py model=lstm data.sequence_length=60` (see conf/train.yaml)."""

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

os.environ.setdefault("PROJECT_ROOT", str(Path(__file__).resolve().parent))

import dl_core  # noqa: E402  (registers the config schemas before Hydra composes)
from dl_core.errors import DLCoreError  # noqa: E402
from dl_core.pipeline import train  # noqa: E402


@hydra.main(config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)
    except DLCoreError as err:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a sweep job: the sweeper records the trial as failed and goes on with the others
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""Optuna sweep helpers behind `conf/hparams_search`: config resolvers and reading a study back.

The resolvers run when Hydra builds the Optuna sweeper. They are resolvers, not callback edits of the
sweeper config, because Hydra refuses a sweep whose jobs' `hydra.sweeper` differs from the primary's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def sweep_batch(launcher_jobs: int) -> int:
    """Trials the Optuna sweeper asks per batch: the launcher's parallelism (joblib's -1 = all CPUs)."""
    return (os.cpu_count() or 1) if launcher_jobs < 1 else launcher_jobs


def continued_seed(seed: int, storage: Any, study_name: Any) -> int:
    """The sampler seed for this launch: `seed` offset by the trials the study already holds.

    A seeded sampler built afresh replays the same suggestions, so a re-launch that continues a study
    would repeat the first launch's trials; with the offset each launch is new and still reproducible.
    """
    study = load_study(storage, study_name)
    return seed + (len(study.trials) if study is not None else 0)


def load_study(storage: Any, study_name: Any) -> Any | None:
    """The study from its storage; None for in-memory storage, a missing SQLite file or an unknown name."""
    if storage is None or study_name is None:
        return None
    if str(storage).startswith("sqlite:///") and not Path(str(storage)[len("sqlite:///"):]).exists():
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=str(study_name), storage=str(storage))
    except KeyError:
        return None


def register_resolvers() -> None:
    OmegaConf.register_resolver("sweep_batch", sweep_batch, replace=True)
    OmegaConf.register_resolver("continued_seed", continued_seed, replace=True)

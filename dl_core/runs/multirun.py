"""A multirun of train.py (`-m`), checked before its first job, so that a refusal leaves nothing behind: no job has
trained, no trial was asked, no directory was made.

Each job a sweeper is about to launch (dl_core/sweep/jobs.py: the basic sweeper's every job, an Optuna sweep's
representative trial) is composed as its launcher composes it and checked as the job itself would check it
(`validate`); a job whose directory holds a run (an earlier multirun's job, `hydra.sweep.dir=<it>`) is refused,
as is a sweep whose jobs would share one directory, and a study file that cannot be written. A job's own checks
still run in the job: these only bring the refusals a config can tell forward.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.errors import ConfigError
from dl_core.runs.config import check_task_name, validate
from dl_core.runs.rundir import claim, refuse_if_in_use, refuse_run_dir, run_files
from dl_core.sweep.jobs import launches_study, planned_jobs
from dl_core.sweep.workers import check_storage_writable

# A trial directory of its own at every launch of a study: the presets' `hydra.sweep.subdir`.
OWN_TRIAL_SUBDIR = "${now:%Y-%m-%d_%H-%M-%S_%f}_${hydra.job.num}"


def check_multirun(config: DictConfig) -> None:
    """Refuse a multirun any of whose jobs would be refused, then make its sweep dir (`claim`: one this process
    made is removed if the sweeper then refuses the sweep before it writes anything there)."""
    check_task_name(str(config.task_name))
    sweep_dir = str(config.hydra.sweep.dir)
    if not sweep_dir.strip():
        raise ConfigError("hydra.sweep.dir: is empty, which would make the current directory the sweep's; pass a "
                          "directory (e.g. hydra.sweep.dir=outputs/my_sweep), or leave it out for a new one under "
                          "outputs/")
    loader = GlobalHydra.instance().config_loader()
    study = launches_study(config)
    taken: dict[Path, int] = {}
    for job in planned_jobs(config, OverridesParser.create(config_loader=loader)):
        composed = loader.load_sweep_config(config, job.overrides)
        for number in job.numbers:
            directory = as_job(composed, sweep_dir, number)
            if directory in taken:
                raise ConfigError(f"hydra.sweep.subdir: jobs {taken[directory]} and {number} would share the "
                                  f"directory {directory}; name each job's own, e.g. "
                                  f"hydra.sweep.subdir={OWN_TRIAL_SUBDIR if study else '${hydra.job.num}'}")
            taken[directory] = number
            if not directory.is_dir():
                continue
            if study:
                refuse_trial_dir(directory, number)
            else:
                refuse_run_dir(directory, "hydra.sweep.dir")
        as_job(composed, sweep_dir, job.numbers.start)
        validate_as_job(composed)
    storage = OmegaConf.select(config, "hydra.sweeper.storage")
    if storage is not None:
        check_storage_writable(str(storage), Path(sweep_dir))
    claim(sweep_dir, "hydra.sweep.dir")


def as_job(composed: DictConfig, sweep_dir: str, number: int) -> Path:
    """Make `composed` job `number`'s config, as its launcher does (`hydra.job.num`, `hydra.job.id` and the output
    dir); return that job's directory."""
    with open_dict(composed):
        composed.hydra.job.num = number
        composed.hydra.job.id = str(number)
        directory = Path(os.path.abspath(Path(sweep_dir) / str(composed.hydra.sweep.subdir)))
        composed.hydra.runtime.output_dir = str(directory)
    return directory


def refuse_trial_dir(directory: Path, number: int) -> None:
    """Refuse the directory of job `number` of a study's launch where it holds a run: the launches of a study
    share its sweep dir and number their jobs from 0 each, so a `hydra.sweep.subdir` named by the job number alone
    is an earlier launch's trial's directory. Its job would be refused there only after the study asked its
    trial, leaving a FAIL trial."""
    refuse_if_in_use(directory, "hydra.sweep.subdir")
    found = run_files(directory)
    if found:
        raise ConfigError(f"hydra.sweep.subdir: job {number} of this launch would run in {directory}, which holds a "
                          f"run ({', '.join(found)}): every launch of a study numbers its jobs from 0; leave "
                          f"hydra.sweep.subdir out, as the hparams_search presets set it, naming a trial's directory "
                          f"by its launch's start time and job number ({OWN_TRIAL_SUBDIR})")


def validate_as_job(composed: DictConfig) -> None:
    """`validate` a job's config under its own Hydra config, as the job will be (its `${hydra:...}` interpolations
    resolve against it)."""
    hydra = HydraConfig.instance()
    previous = hydra.cfg
    hydra.set_config(composed)
    try:
        validate(composed)
    finally:
        hydra.cfg = previous

"""One training run: config -> data bundle -> estimator -> fit -> evaluation -> artifacts -> objective."""

from __future__ import annotations

import logging
import os
import shlex
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.data import build_bundle
from dl_core.data.bundle import DataBundle
from dl_core.data.fingerprint import data_fingerprint
from dl_core.engine import FitContext, resolve_hardware, settle_hardware
from dl_core.engine.batch_size import resolve_batch_size
from dl_core.engine.checkpoint import NO_SPACE, atomic_save, load_checkpoint, seed_everything
from dl_core.engine.distributed import Distributed, process_group
from dl_core.engine.evaluate import series_metric_names, split_metric_names, split_metrics, write_series_metrics
from dl_core.engine.hardware import concurrent_runs
from dl_core.engine.loop import RunTracker
from dl_core.errors import CheckpointError, ConfigError, RunInterrupted, TrainingError
from dl_core.models.build import (
    apply_data_options,
    build_estimator,
    check_model_fits_data,
    check_model_takes_covariates,
    model_spec,
)
from dl_core.models.outputs import declared_kind, interval_pairs
from dl_core.runs.resume import DATA_FINGERPRINT, resolve_resume
from dl_core.runs.reuse import index_if_finished, reused_objective, run_identity, write_run_record
from dl_core.runs.rundir import (
    RunLock,
    continue_logging_in,
    discard_unfinished,
    location_key,
    make_writable_dir,
    record_run,
    refuse_run_dir,
    refuse_run_files,
)
from dl_core.sweep.trials import RunPruned, pruned_metrics, trial_reporters
from dl_core.task import Task
from dl_core.task.conformal import check_calibration_size
from dl_core.tracking import build_trackers
from dl_core.tracking.plots import chosen_series, plot_learning_curve, plot_test

log = logging.getLogger(__name__)
# The run's own numbers in metrics.json; with each split's task metrics (`split_metric_names`), what
# objective.metric may name. (metrics.json also says stopped_early, pruned in a trial, and the device.)
RUN_METRICS = ("val_loss", "best_epoch", "epochs", "n_train_samples", "train_time_s", "train_samples_per_s",
               "n_parameters", "batch_size", "threads")


def train(cfg: DictConfig) -> float:
    """Train and evaluate one run of a checked config (the entry point's `validate`); return the objective metric
    for a sweeper.

    Under `torchrun ... hardware=ddp` every rank runs this in rank 0's run dir; only rank 0 writes.
    """
    with process_group(cfg.hardware) as ddp:
        return train_process(ddp.share_run_dir(cfg), ddp)


def train_process(cfg: DictConfig, ddp: Distributed) -> float:
    """This process's part of the run (the whole run outside DDP).

    Rank 0 holds the run directory's lock while it trains there, so a second process (another run
    pointed at the same directory, a resume of a run still training) is refused before it writes
    anything there, and so is a new run in a directory that holds a run's files; a new run's `.hydra/`
    record is written once the lock is held. With `reuse=true` a config that finished before under
    `paths.log_dir` is not trained again (dl_core/runs/reuse.py). Ctrl-C ends with `RunInterrupted`, whose
    message is the resume command, and so does a checkpoint or another file of the run that cannot be written
    for want of room; a new run stopped so before its first checkpoint leaves no directory.
    """
    cfg, resume = resolve_resume(cfg)
    run_dir = Path(cfg.paths.output_dir)
    identity = run_identity(cfg, None if resume is None else run_dir)
    key = location_key(run_dir) if resume is None else "trainer.resume"
    make_writable_dir(run_dir, key)
    if ddp.is_main and resume is None:
        refuse_run_dir(run_dir, key)  # before taking the lock, which writes this process's pid into the lock file
    try:
        with RunLock(run_dir, key) if ddp.is_main else nullcontext():
            if ddp.is_main and resume is None:
                refuse_run_files(run_dir, key)  # again: another run may have started there since
                record_run(run_dir, cfg)
            elif ddp.is_main:
                continue_logging_in(run_dir)  # the other ranks log into <run dir>/ranks/ (share_run_dir)
            reused = None if resume is not None else reused_objective(cfg, run_dir, identity, write=ddp.is_main)
            if reused is not None:
                return reused
            if resume is not None:
                log.info("resuming %s from epoch %d", run_dir, resume["epoch"])
            if ddp.is_main:
                write_run_record(run_dir, cfg, identity)
            with build_trackers(cfg, run_dir) if ddp.is_main else nullcontext([]) as trackers:
                score = train_tracked(cfg, run_dir, resume, trackers, ddp)
            if ddp.is_main:
                index_if_finished(cfg, run_dir, identity)
            return score
    except KeyboardInterrupt:
        raise RunInterrupted(stopped(run_dir, ddp)) from None
    except CheckpointError as err:  # a checkpoint the file system refused to write; the previous one is intact
        raise CheckpointError(f"{err}; {stopped(run_dir, ddp)}") from None
    except OSError as err:  # metrics, predictions or a plot the file system refused for want of room
        if err.errno not in NO_SPACE:
            raise
        raise TrainingError(f"{err.filename or run_dir}: cannot write the run's files ({err.strerror}); free disk "
                            f"space or raise the file-size limit (ulimit -f); {stopped(run_dir, ddp)}") from None


def stopped(run_dir: Path, ddp: Distributed) -> str:
    """What to do about a run that stopped early (`resume_command`); a new run stopped before its first checkpoint
    leaves no directory (`discard_unfinished`)."""
    if ddp.is_main:
        discard_unfinished(run_dir)
    return resume_command(run_dir)


def resume_command(run_dir: Path) -> str:
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return f"resume with: python train.py trainer.resume={shlex.quote(str(run_dir))}"
    return "stopped before the first checkpoint, nothing to resume: run the same command again"


def train_tracked(cfg: DictConfig, run_dir: Path, resume: dict[str, Any] | None, trackers: list[RunTracker],
                  ddp: Distributed) -> float:
    """The run itself, inside its trackers (only rank 0 has any): a failure here still closes them (W&B
    marks the run failed). A run that is an Optuna trial also reports to it (every rank: they stop together)."""
    seed_everything(cfg.seed)
    runs = concurrent_runs()
    hw = ddp.place(resolve_hardware(cfg.hardware, runs))
    check_model_fits_data(cfg.model, cfg.data.kind, model_name(cfg))
    check_model_takes_covariates(cfg.model, cfg.data, model_name(cfg))
    apply_data_options(cfg.model, cfg.data, model_name(cfg))
    bundle = build_bundle(cfg.data).to(hw.device)
    estimator = build_estimator(cfg.model, bundle.spec, hw, cfg.trainer.eval_batch_size)
    bundle = replace(bundle, task=bundle.task.with_outputs(declared_kind(estimator)))
    calibrating = cfg.trainer.calibrate_intervals and bool(interval_pairs(bundle.task.outputs.levels))
    if calibrating:
        check_calibration_size(bundle.task.outputs.levels, len(bundle.splits["val"]))
    check_objective(cfg.objective.metric, bundle)
    plot_series = chosen_series(cfg.logger.get("plot_series"), bundle)
    with open_dict(cfg):
        cfg.trainer.batch_size = resolve_batch_size(cfg.trainer.batch_size, estimator, bundle, hw)
        hw = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, concurrent_runs=runs,
                             distributed=ddp.enabled, resumed=resume is not None)
        cfg.hardware.update(hw.settings())  # what auto chose: the run's saved config keeps it for a resume
    config = OmegaConf.to_container(cfg, resolve=True)
    artifacts = {"config": config, "spec": model_spec(cfg.model, bundle.spec), "task": bundle.task,
                 "preprocessor": bundle.preprocessor, DATA_FINGERPRINT: data_fingerprint(cfg.data)}
    log.info("run dir %s | %s | %d train / %d val / %d test samples", run_dir, hw.describe(),
             len(bundle.splits["train"]), len(bundle.splits["val"]), len(bundle.splits["test"]))

    reporters = trial_reporters(cfg.trial, ddp)
    try:
        result = estimator.fit(bundle, FitContext(cfg.trainer, hw, run_dir, cfg.seed, artifacts,
                                                  [*trackers, *reporters], resume, ddp))
    except RunPruned as pruned:
        return finish_pruned(pruned, cfg, run_dir, trackers, ddp)

    metrics: dict[str, Any] = {
        **({"pruned": False} if reporters else {}),
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stopped_early": result.stopped_early,
        "val_loss": result.best_val_loss, "n_train_samples": result.n_train_samples,
        "train_time_s": result.train_time_s,
        "train_samples_per_s": result.n_train_samples * result.epochs / max(result.train_time_s, 1e-9),
        "n_parameters": estimator.n_parameters, "batch_size": cfg.trainer.batch_size,
        **hw.record(),
    }
    outputs = {split: estimator.predict(bundle.splits[split]) for split in ("val", "test")}
    if calibrating:
        val_targets = bundle.splits["val"].targets().cpu().numpy()
        bundle = replace(bundle, task=bundle.task.calibrated(outputs["val"], val_targets))
        if ddp.is_main:
            save_task(run_dir, bundle.task)
    for split in ("val", "test"):
        metrics.update(split_metrics(bundle, split, outputs[split]))
        if split == "test" and ddp.is_main:
            table = bundle.predictions_table("test", outputs[split])
            write_csv(table, run_dir / "predictions_test.csv")
            metrics.update(write_series_metrics(bundle, "test", table, run_dir))
            plot_test(bundle.task, table, run_dir, plot_series)
    if ddp.is_main and result.history:
        plot_learning_curve(result.history, result.best_epoch, run_dir / "learning_curve.png")
    for tracker in trackers:  # last: the trackers log the run's files (plots, predictions, checkpoint) too
        tracker.log_summary(metrics)
    score = float(metrics[cfg.objective.metric])  # there: `check_objective` refused any other name before training
    log.info("best epoch %d of %d | %s %.5f | %s", result.best_epoch, result.epochs, cfg.objective.metric,
             score, run_dir)
    return score


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Write a table whole or not at all (temp file, then rename): a full disk leaves the previous file, or none."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_task(run_dir: Path, task: Task) -> None:
    """The calibrated task into the run's best checkpoint, the one prediction and serving load, so that they
    report the intervals the run's metrics and predictions_test.csv report."""
    path = run_dir / "checkpoints" / "best.ckpt"
    state = load_checkpoint(path)
    state["task"] = task
    atomic_save(state, path)


def finish_pruned(pruned: RunPruned, cfg: DictConfig, run_dir: Path, trackers: list[RunTracker],
                  ddp: Distributed) -> float:
    """A pruned trial keeps what it has: its checkpoints, metrics.csv, and metrics.json marked pruned; its
    objective is its best validation loss so far (the sweeper stores the trial PRUNED)."""
    metrics = pruned_metrics(pruned.history)
    if ddp.is_main:
        plot_learning_curve(pruned.history, metrics["best_epoch"], run_dir / "learning_curve.png")
    for tracker in trackers:
        tracker.log_summary(metrics)
    log.info("%s | best val_loss %.5f | %s", pruned, metrics["val_loss"], run_dir)
    return float(metrics["val_loss"])


def model_name(cfg: DictConfig) -> str:
    target = str(cfg.model.get("_target_", "?"))
    return target.rsplit(".", 1)[-1]


def check_objective(name: str, bundle: DataBundle) -> None:
    """Refuse an objective.metric the run will not report, before training rather than after it."""
    names = [*RUN_METRICS, *split_metric_names(bundle, "val"), *split_metric_names(bundle, "test"),
             *series_metric_names(bundle, "test")]
    if name not in names:
        raise ConfigError(f"objective.metric: {name!r} is not a run metric; pick one of {', '.join(sorted(names))}")

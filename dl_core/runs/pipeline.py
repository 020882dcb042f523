"""One training run: config -> data bundle -> estimator -> fit -> evaluation -> artifacts -> objective."""

from __future__ import annotations

import logging
import shlex
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.data import build_bundle
from dl_core.data.bundle import DataBundle
from dl_core.engine import FitContext, resolve_hardware, settle_hardware
from dl_core.engine.batch_size import resolve_batch_size
from dl_core.engine.checkpoint import seed_everything
from dl_core.engine.distributed import Distributed, process_group
from dl_core.engine.evaluate import split_metric_names, split_metrics
from dl_core.engine.hardware import concurrent_runs
from dl_core.engine.loop import RunTracker
from dl_core.errors import CheckpointError, ConfigError, RunInterrupted
from dl_core.models.build import (
    apply_data_options,
    build_estimator,
    check_model_fits_data,
    check_model_takes_covariates,
    model_spec,
)
from dl_core.models.outputs import declared_kind
from dl_core.runs.resume import resolve_resume
from dl_core.runs.reuse import index_if_finished, reused_objective, run_identity, write_run_record
from dl_core.runs.rundir import RunLock, continue_logging_in, location_key, make_writable_dir, record_run
from dl_core.sweep.trials import RunPruned, pruned_metrics, trial_reporters
from dl_core.tracking import build_trackers
from dl_core.tracking.plots import plot_learning_curve, plot_test

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
    anything there; a new run's `.hydra/` record is written once the lock is held. With `reuse=true` a
    config that finished before under `paths.log_dir` is not trained again (dl_core/runs/reuse.py). Ctrl-C ends with
    `RunInterrupted`, whose message is the resume command, and so does a checkpoint that cannot be written.
    """
    cfg, resume = resolve_resume(cfg)
    run_dir = Path(cfg.paths.output_dir)
    identity = run_identity(cfg, None if resume is None else run_dir)
    key = location_key(run_dir) if resume is None else "trainer.resume"
    make_writable_dir(run_dir, key)
    try:
        with RunLock(run_dir, key) if ddp.is_main else nullcontext():
            if ddp.is_main and resume is None:
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
        raise RunInterrupted(resume_command(run_dir)) from None
    except CheckpointError as err:  # a checkpoint the file system refused to write; the previous one is intact
        raise CheckpointError(f"{err}; {resume_command(run_dir)}") from None


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
    check_objective(cfg.objective.metric, bundle)
    with open_dict(cfg):
        cfg.trainer.batch_size = resolve_batch_size(cfg.trainer.batch_size, estimator, bundle, hw)
        hw = settle_hardware(hw, cfg.hardware, estimator, bundle, cfg.trainer, cfg.model, concurrent_runs=runs,
                             distributed=ddp.enabled, resumed=resume is not None)
        cfg.hardware.update(hw.settings())  # what auto chose: the run's saved config keeps it for a resume
    config = OmegaConf.to_container(cfg, resolve=True)
    artifacts = {"config": config, "spec": model_spec(cfg.model, bundle.spec), "task": bundle.task,
                 "preprocessor": bundle.preprocessor}
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
    for split in ("val", "test"):
        outputs = estimator.predict(bundle.splits[split])
        metrics.update(split_metrics(bundle, split, outputs))
        if split == "test" and ddp.is_main:
            table = bundle.predictions_table("test", outputs)
            table.to_csv(run_dir / "predictions_test.csv", index=False)
            plot_test(bundle.task, table, run_dir)
    if ddp.is_main and result.history:
        plot_learning_curve(result.history, result.best_epoch, run_dir / "learning_curve.png")
    for tracker in trackers:  # last: the trackers log the run's files (plots, predictions, checkpoint) too
        tracker.log_summary(metrics)
    score = float(metrics[cfg.objective.metric])  # there: `check_objective` refused any other name before training
    log.info("best epoch %d of %d | %s %.5f | %s", result.best_epoch, result.epochs, cfg.objective.metric,
             score, run_dir)
    return score


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
    names = [*RUN_METRICS, *split_metric_names(bundle, "val"), *split_metric_names(bundle, "test")]
    if name not in names:
        raise ConfigError(f"objective.metric: {name!r} is not a run metric; pick one of {', '.join(sorted(names))}")

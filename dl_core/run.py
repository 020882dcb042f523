"""One training run: config -> data bundle -> model -> engine.fit -> evaluation -> artifacts -> objective."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.config import validate
from dl_core.data import build_bundle
from dl_core.engine import fit, predict, resolve_hardware
from dl_core.engine.checkpoint import load_checkpoint, seed_everything
from dl_core.engine.evaluate import split_metrics
from dl_core.errors import ConfigError
from dl_core.models import build_model, check_model_fits_data
from dl_core.tracking.files import FileTracker, plot_forecast, plot_learning_curve, write_json

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> float:
    """Train and evaluate one run; return the objective metric for a sweeper."""
    cfg, resume = resolve_resume(cfg)
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    hw = resolve_hardware(cfg.hardware)
    check_model_fits_data(cfg.model, cfg.data.kind, model_name(cfg))
    bundle = build_bundle(cfg.data)
    model = build_model(cfg.model, bundle.spec)
    config = OmegaConf.to_container(cfg, resolve=True)
    artifacts = {"config": config, "spec": bundle.spec, "task": bundle.task, "preprocessor": bundle.preprocessor}
    log.info("run dir %s | %s | %d train / %d val / %d test samples", run_dir, hw.describe(),
             len(bundle.splits["train"]), len(bundle.splits["val"]), len(bundle.splits["test"]))

    bundle = bundle.to(hw.device)
    model.to(hw.device)
    result = fit(model, bundle, cfg.trainer, hw, run_dir, seed=cfg.seed, artifacts=artifacts,
                 trackers=[FileTracker(run_dir)], resume=resume)

    metrics: dict[str, Any] = {
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stopped_early": result.stopped_early,
        "val_loss": result.best_val_loss, "n_train_samples": result.n_train_samples,
        "train_time_s": result.train_time_s,
        "train_samples_per_s": result.n_train_samples * result.epochs / max(result.train_time_s, 1e-9),
        "n_parameters": sum(p.numel() for p in model.parameters()), **hw.describe(),
    }
    for split in ("val", "test"):
        outputs = predict(model, bundle.splits[split], hw, cfg.trainer.eval_batch_size).cpu().numpy()
        metrics.update(split_metrics(bundle, split, outputs))
        if split == "test":
            frame = bundle.prediction_frame("test", outputs)
            frame.to_csv(run_dir / "predictions_test.csv", index=False)
            plot_forecast(frame, run_dir / "forecast.png")
    write_json(metrics, run_dir / "metrics.json")
    if result.history:
        plot_learning_curve(result.history, result.best_epoch, run_dir / "learning_curve.png")
    log.info("best epoch %d of %d | val_loss %.5f | test_mse %.5f | %s", result.best_epoch, result.epochs,
             result.best_val_loss, metrics.get("test_mse", float("nan")), run_dir)
    return objective(metrics, cfg.objective.metric)


def resolve_resume(cfg: DictConfig) -> tuple[DictConfig, dict[str, Any] | None]:
    """With `trainer.resume`, continue the run in its own directory under its saved config."""
    resume = cfg.trainer.resume
    if resume is False or resume in ("false", "False", None):
        return cfg, None
    run_dir = Path(cfg.paths.output_dir) if resume is True or resume in ("true", "True") else Path(str(resume))
    state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    saved = OmegaConf.create(state["config"])
    with open_dict(saved):
        saved.paths.output_dir = str(run_dir)
        saved.trainer.resume = str(run_dir)
    saved = OmegaConf.merge(cfg, saved)
    log.info("resuming %s from epoch %d", run_dir, state["epoch"])
    return saved, state


def model_name(cfg: DictConfig) -> str:
    target = str(cfg.model.get("_target_", "?"))
    return target.rsplit(".", 1)[-1]


def objective(metrics: dict[str, Any], name: str) -> float:
    if name not in metrics:
        raise ConfigError(f"objective.metric: {name!r} is not a run metric; pick one of "
                          f"{', '.join(sorted(k for k, v in metrics.items() if isinstance(v, float)))}")
    return float(metrics[name])

"""Schemas of `conf/trainer/` and `conf/hardware/`: the engine's settings, their types and their defaults.

The field defaults here are the one source of every default (`conf/trainer/default.yaml` and
`conf/hardware/auto.yaml` set nothing); types and choices are checked when the config is composed,
ranges by `validate(prefix)` before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dl_core.errors import require


@dataclass
class TrainerConfig:
    """The training engine: optimizer, schedule, early stopping, checkpoints, resume.

    Attributes:
        max_epochs: upper bound on epochs.
        batch_size: training batch size (per process under DDP), or `auto` (largest that fits on CUDA;
            this default elsewhere).
        eval_batch_size: batch size for validation, test and prediction.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay (never on biases, norms and embeddings).
        scheduler: per-epoch learning-rate schedule: `none`, `cosine` (to zero at max_epochs), `plateau`
            (multiply by plateau_factor after plateau_patience epochs without improvement) or `exponential`
            (exponential_hold epochs at lr, then multiply by exponential_gamma after every epoch).
        plateau_factor: `scheduler: plateau`: the factor the learning rate is multiplied by.
        plateau_patience: `scheduler: plateau`: epochs without validation improvement before the learning
            rate drops; null takes a third of `patience` (at least 1), so it drops before training stops.
        exponential_gamma: `scheduler: exponential`: the factor the learning rate is multiplied by per epoch.
        exponential_hold: `scheduler: exponential`: epochs trained at the full learning rate before it decays
            (1: the first epoch only, as torch's ExponentialLR).
        patience: epochs without validation improvement before stopping; the best weights are restored.
        min_delta: smallest decrease of the validation loss that counts as an improvement.
        grad_clip: maximum gradient norm; null disables clipping.
        divergence_factor: stop the run (the training diverged: lower lr) when an epoch's mean training loss
            exceeds this many times the loss of its first batch, the untrained model's; null turns the check off.
        resume: false, true (continue the run in hydra.run.dir) or the path of a run dir to continue, under
            its saved config: only max_epochs, patience, checkpoint_every, progress_bar and
            hardware.threads may change.
        checkpoint_every: epochs between `last` checkpoints (an improving epoch always writes `best`).
        progress_bar: show a progress bar over epochs.
        calibrate_intervals: after training, calibrate the central intervals of a model's quantiles (or of
            a distribution's) on the validation split, a forecast's per horizon step and target, by conformalized
            quantile regression (Romano et al. 2019); the run then predicts the calibrated quantiles, and its own
            as `raw_q<level>` columns and `_raw` metrics. false: the model's own quantiles.
    """

    max_epochs: int = 100
    batch_size: int | Literal["auto"] = 32
    eval_batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: Literal["none", "cosine", "plateau", "exponential"] = "none"
    plateau_factor: float = 0.5
    plateau_patience: int | None = None
    exponential_gamma: float = 0.9
    exponential_hold: int = 1
    patience: int = 10
    min_delta: float = 0.0
    grad_clip: float | None = 1.0
    divergence_factor: float | None = 1000.0
    resume: bool | str = False
    checkpoint_every: int = 1
    progress_bar: bool = True
    calibrate_intervals: bool = True

    def validate(self, prefix: str) -> None:
        require(self.max_epochs >= 1, f"{prefix}.max_epochs", f"must be >= 1 (got {self.max_epochs})")
        require(self.batch_size == "auto" or self.batch_size >= 1, f"{prefix}.batch_size",
                f"must be a positive integer or 'auto' (got {self.batch_size!r})")
        require(self.eval_batch_size >= 1, f"{prefix}.eval_batch_size", f"must be >= 1 (got {self.eval_batch_size})")
        require(self.lr > 0, f"{prefix}.lr", f"must be > 0 (got {self.lr}), e.g. {prefix}.lr=1e-3")
        require(self.weight_decay >= 0, f"{prefix}.weight_decay", f"must be >= 0 (got {self.weight_decay})")
        require(0 < self.plateau_factor < 1, f"{prefix}.plateau_factor",
                f"must be in (0, 1) (got {self.plateau_factor}), e.g. 0.5")
        require(self.plateau_patience is None or self.plateau_patience >= 0, f"{prefix}.plateau_patience",
                f"must be >= 0 or null for a third of {prefix}.patience (got {self.plateau_patience})")
        require(0 < self.exponential_gamma <= 1, f"{prefix}.exponential_gamma",
                f"must be in (0, 1] (got {self.exponential_gamma}), e.g. 0.9")
        require(self.exponential_hold >= 1, f"{prefix}.exponential_hold",
                f"must be >= 1 (got {self.exponential_hold}): the first epoch always trains at {prefix}.lr")
        require(self.patience >= 1, f"{prefix}.patience", f"must be >= 1 (got {self.patience})")
        require(self.min_delta >= 0, f"{prefix}.min_delta", f"must be >= 0 (got {self.min_delta})")
        require(self.grad_clip is None or self.grad_clip > 0, f"{prefix}.grad_clip",
                f"must be > 0 or null to disable (got {self.grad_clip})")
        require(self.divergence_factor is None or self.divergence_factor > 1, f"{prefix}.divergence_factor",
                f"must be > 1 or null to turn the check off (got {self.divergence_factor}), e.g. 1000")
        require(self.checkpoint_every >= 1, f"{prefix}.checkpoint_every",
                f"must be >= 1 (got {self.checkpoint_every})")


@dataclass
class HardwareConfig:
    """Where and how the math runs. What is left to `auto` is chosen for this model on this machine: its training
    steps are timed under each candidate (threads x precision, a couple of seconds in all) and the fastest is
    kept, recorded in the run's config (a resume keeps it) and in metrics.json with what it was measured against.

    Attributes:
        device: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N` or `mps`.
        precision: `32`, `bf16-mixed`, `16-mixed` (CUDA, with a grad scaler) or `auto` (the faster of 32 and,
            where the device computes bf16 natively, bf16-mixed, timed).
        threads: CPU threads for torch; `auto` times 1 and powers of two up to the cores not busy with other
            work (on a GPU: torch's default, shared among the runs side by side); null keeps torch's default.
        compile: wrap the model in `torch.compile`; `auto` does not (on the CPU it did not pay, measured).
        compile_mode: torch.compile's mode: `default`, `reduce-overhead` (captures the step in CUDA graphs),
            `max-autotune` or `max-autotune-no-cudagraphs`.
        distributed: DistributedDataParallel across the processes torchrun starts (hardware=ddp).
        probe_seconds: the time budget of auto's timing (each candidate gets at least a warm-up and three steps).
        probe_cache: the directory where auto's answers are kept per model signature and machine load, so a
            sweep or a seeds multirun times once; null times every run.
    """

    device: str = "auto"
    precision: Literal[32, "bf16-mixed", "16-mixed", "auto"] = "auto"
    threads: int | Literal["auto"] | None = "auto"
    compile: bool | Literal["auto"] = "auto"
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"
    distributed: bool = False
    probe_seconds: float = 2.0
    probe_cache: str | None = "${paths.log_dir}/hardware_probes"

    def validate(self, prefix: str) -> None:
        require(self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:"),
                f"{prefix}.device", f"must be auto, cpu, cuda, cuda:N or mps (got {self.device!r})")
        require(self.threads in (None, "auto") or self.threads >= 1, f"{prefix}.threads",
                f"must be >= 1, auto, or null for torch's default (got {self.threads})")
        require(self.probe_seconds > 0, f"{prefix}.probe_seconds", f"must be > 0 (got {self.probe_seconds})")


SCHEMAS = {"trainer/trainer_schema": TrainerConfig, "hardware/hardware_schema": HardwareConfig}

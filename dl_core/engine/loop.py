"""The training loop, read top to bottom: epochs of in-memory batches, validation, early stopping,
checkpoints. Everything a resumed run needs is in the `last` checkpoint, so a run killed at any
point continues from its last completed epoch and ends bit-identical to an uninterrupted run.

At the end of every epoch each tracker's `log_epoch` receives the history: that is where a run
reports its progress, and where a hook that stops a run early (pruning) raises.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from dl_core.data.bundle import DataBundle, Split
from dl_core.engine.checkpoint import atomic_save, checkpoint_payload, restore_training
from dl_core.engine.distributed import SINGLE, Distributed
from dl_core.engine.hardware import Hardware
from dl_core.errors import TrainingError
from dl_core.models.outputs import declared_kind
from dl_core.task import LossFn, Task


class RunTracker(Protocol):
    """What a run feeds its trackers (dl_core/tracking/): every epoch's history (the engine), then the final
    metrics (the pipeline), once the run's files (plots, test predictions, checkpoints) are written."""

    def log_epoch(self, history: list[dict[str, float]]) -> None: ...

    def log_summary(self, metrics: dict[str, Any]) -> None: ...


@dataclass
class FitContext:
    """What a fit needs besides the model and the data: the trainer settings, where it runs, where it
    writes, and whom it reports to. Under DDP (`ddp`) each rank trains on its shard of the epoch's
    permutation and only rank 0 writes checkpoints.

    `artifacts` (fitted preprocessing, task, resolved config, data spec) goes into every checkpoint,
    so a checkpoint alone is enough to predict; `resume` is the checkpoint a resumed run continues.
    `trackers` get the history after each epoch's checkpoint is written; in an Optuna trial the last
    is the pruning hook (dl_core.sweep.trials), on every rank, which raises `RunPruned` to stop the run.
    """

    trainer: Any
    hw: Hardware
    run_dir: Path
    seed: int
    artifacts: dict[str, Any]
    trackers: Sequence[RunTracker] = ()
    resume: dict[str, Any] | None = None
    ddp: Distributed = SINGLE


@dataclass
class FitResult:
    best_epoch: int
    epochs: int
    best_val_loss: float
    stopped_early: bool
    n_train_samples: int
    train_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class EarlyStopping:
    """Tracks the best validation loss; its state is checkpointed so resume keeps counting."""

    patience: int
    min_delta: float
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record this epoch's value; True when it is a new best."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return vars(self).copy()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The counters continue; patience and min_delta are this invocation's, so a resume may extend them."""
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


@dataclass
class DivergenceGuard:
    """Stops a run whose training loss grew by orders of magnitude, which would otherwise finish with exit
    status 0 and a useless model (trainer.lr=1e10: val_loss 2e19).

    The reference is the loss of the run's first training batch: the untrained model's, taken before any
    step (free, and no randomness drawn), kept in the checkpoint so that a resumed run judges alike. An
    epoch whose mean training loss exceeds `factor` times its magnitude has diverged.

    The training loss, not the validation loss: overfitting may grow a validation loss without bound
    while training goes well (an overconfident distribution head's likelihood grows with 1/scale^2), and
    early stopping handles that; divergence is the optimizer's failure, and shows where it optimizes.
    The default factor, 1e3: a healthy epoch's mean loss stays near or below the untrained model's (a
    noisy epoch at a high learning rate: a few times it), while lr=1e10 on the tiny LSTM reaches 1e21 in
    its first epoch, so three orders of magnitude leave a wide margin on both sides.
    """

    factor: float | None
    reference: float | None = None

    def start(self, first_batch_loss: float) -> None:
        """Take the reference from the run's first batch (a resumed run has it from its checkpoint)."""
        if self.reference is None:
            self.reference = abs(first_batch_loss)

    def check(self, epoch: int, train_loss: float, trainer: Any) -> None:
        if self.factor is None or not self.reference or train_loss <= self.factor * self.reference:
            return
        clip = " or set trainer.grad_clip" if trainer.grad_clip is None else ""
        raise TrainingError(f"training diverged at epoch {epoch}: its mean loss {train_loss:.3g} is "
                            f"{train_loss / self.reference:.2g} times the untrained model's first batch "
                            f"({self.reference:.3g}); lower trainer.lr (now {trainer.lr:g}){clip} "
                            f"(trainer.divergence_factor={self.factor:g} sets this check; null turns it off)")

    def state_dict(self) -> dict[str, Any]:
        return {"reference": self.reference}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reference = state["reference"]


def fit(model: nn.Module, bundle: DataBundle, context: FitContext) -> FitResult:
    """Train `model` on `bundle` in place and leave the best weights loaded."""
    trainer, hw, ddp = context.trainer, context.hw, context.ddp
    check_outputs(model, bundle.task)
    # An ensemble trains its members each on its own loss but predicts, and is selected on, their average.
    loss_fn, val_loss_fn = bundle.task.loss(), bundle.task.prediction_loss()
    if not any(p.requires_grad for p in model.parameters()):
        return fit_nothing(model, bundle, context, loss_fn)
    net = ddp.wrap(model, hw)
    net = torch.compile(net, mode=hw.compile_mode) if hw.compile else net
    optimizer = torch.optim.AdamW(parameter_groups(model, trainer.weight_decay), lr=trainer.lr)
    scheduler = build_scheduler(optimizer, trainer)
    scaler = torch.amp.GradScaler(hw.device.type, enabled=hw.needs_grad_scaler)
    stopper = EarlyStopping(trainer.patience, trainer.min_delta)
    divergence = DivergenceGuard(trainer.divergence_factor)
    shuffle = torch.Generator().manual_seed(context.seed)
    training = {"optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "early_stopping": stopper,
                "divergence": divergence}
    best_state, history, elapsed, last_epoch = copy.deepcopy(model.state_dict()), [], 0.0, 0
    if context.resume is not None:
        best_state, history, elapsed, last_epoch = restore_training(context.resume, model, training, shuffle)
    # Judged under this invocation's max_epochs and patience, not the saved `finished` flag, so that a
    # finished run resumed with a larger trainer.max_epochs (or patience) trains on.
    done = context.resume is not None and (stopper.should_stop or last_epoch >= trainer.max_epochs)
    val_split = bundle.splits["val"]
    bar = tqdm(total=trainer.max_epochs, initial=last_epoch, desc="epochs", unit="ep",
               disable=not trainer.progress_bar or done or not ddp.is_main, dynamic_ncols=True, leave=False)
    try:
        for epoch in range(0) if done else range(last_epoch + 1, trainer.max_epochs + 1):
            tick = time.perf_counter()
            train_loss, first_loss = train_epoch(net, bundle.splits["train"], loss_fn, optimizer, scaler, shuffle,
                                                 context)
            val_loss = ddp.from_main(float(val_loss_fn(predict(net, val_split, hw, trainer.eval_batch_size),
                                                       val_split.targets().float())))
            check_finite(epoch, train_loss, val_loss, trainer)
            if divergence.reference is None:  # the same on every rank: they stop together
                divergence.start(ddp.from_main(float(first_loss)))
            divergence.check(epoch, train_loss, trainer)
            lr = optimizer.param_groups[0]["lr"]
            step_scheduler(scheduler, val_loss)
            improved = stopper.update(val_loss, epoch)
            elapsed += time.perf_counter() - tick
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                            "time_s": elapsed})
            finished = stopper.should_stop or epoch == trainer.max_epochs
            if improved:
                best_state = copy.deepcopy(model.state_dict())
            # An improving epoch's `best` and `last` checkpoints are the same payload: serialise it once,
            # with `model` and `best_model` sharing storage (torch.save then stores the weights once).
            paths = [context.run_dir / "checkpoints" / "best.ckpt"] if improved else []
            if finished or epoch % trainer.checkpoint_every == 0:
                paths.append(context.run_dir / "checkpoints" / "last.ckpt")
            if paths and ddp.is_main:
                weights = best_state if improved else model.state_dict()
                atomic_save(checkpoint_payload(epoch, finished, weights, best_state, training, shuffle, history,
                                               elapsed, context.artifacts), *paths)
            for tracker in context.trackers:
                tracker.log_epoch(history)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", best=f"{stopper.best:.4f}")
            if stopper.should_stop:
                break
    finally:
        bar.close()  # also on Ctrl-C, so the interrupt message starts on a clean line
    model.load_state_dict(best_state)
    return FitResult(stopper.best_epoch, len(history), stopper.best, stopper.should_stop,
                     len(bundle.splits["train"]), elapsed, history)


def train_epoch(net: nn.Module, split: Split, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, shuffle: torch.Generator,
                context: FitContext) -> tuple[float, torch.Tensor]:
    """One pass over this rank's shard of a fresh permutation; the mean training loss over all ranks, and
    the loss of this rank's first batch, taken before its step (left on the device: read once per run).
    """
    trainer, hw, ddp = context.trainer, context.hw, context.ddp
    batch_size = int(trainer.batch_size)
    net.train()
    total = torch.zeros((), device=hw.device)
    first = total
    perm = ddp.shard(torch.randperm(len(split), generator=shuffle)).to(hw.device)
    for start in range(0, len(perm), batch_size):
        idx = perm[start:start + batch_size]
        loss = train_step(net, split.batch(idx), loss_fn, optimizer, scaler, trainer.grad_clip, hw)
        total += loss * idx.numel()
        if start == 0:
            first = loss
    return ddp.average(total, len(perm)), first


def train_step(net: nn.Module, batch: tuple[Sequence[torch.Tensor], torch.Tensor], loss_fn: LossFn,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, grad_clip: float | None,
               hw: Hardware) -> torch.Tensor:
    """One optimizer step on one batch; its loss, detached (left on the device). `hardware=auto` times this
    very function to choose the run's settings (dl_core/engine/autotune.py), so what it measures is what trains.

    One mixed-precision path: the grad scaler is enabled for fp16 only, and a disabled scaler passes
    the loss, the gradients and the step through unchanged.
    """
    inputs, target = batch
    with hw.autocast():
        output = net(*inputs)
    loss = loss_fn(output.float(), target)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    clip_gradients(net, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def fit_nothing(model: nn.Module, bundle: DataBundle, context: FitContext, loss_fn: LossFn) -> FitResult:
    """A model without trainable parameters (e.g. the naive baseline): no epochs, but the same
    validation loss and the same finished checkpoint, so evaluation and prediction work unchanged."""
    trainer, val_split = context.trainer, bundle.splits["val"]
    val_loss = float(loss_fn(predict(model, val_split, context.hw, trainer.eval_batch_size),
                             val_split.targets().float()))
    stopper = EarlyStopping(trainer.patience, trainer.min_delta, best=val_loss)
    training = {"optimizer": None, "scheduler": None, "scaler": None, "early_stopping": stopper}
    if context.ddp.is_main:
        ckpt_dir = context.run_dir / "checkpoints"
        payload = checkpoint_payload(0, True, model.state_dict(), model.state_dict(), training,
                                     torch.Generator().manual_seed(context.seed), [], 0.0, context.artifacts)
        atomic_save(payload, ckpt_dir / "best.ckpt", ckpt_dir / "last.ckpt")
    return FitResult(0, 0, val_loss, False, len(bundle.splits["train"]), 0.0, [])


@torch.no_grad()
def predict(model: nn.Module, split: Split, hw: Hardware, batch_size: int) -> torch.Tensor:
    """Model outputs for every sample of `split`, in order, in fixed-size batches (so the same samples
    always meet the same batches), as float32 on the split's device. Training, evaluation and
    serving all predict through here."""
    was_training = model.training
    model.eval()
    outputs = []
    order = torch.arange(len(split), device=hw.device)
    for start in range(0, len(split), batch_size):
        with hw.autocast():
            outputs.append(model(*split.inputs(order[start:start + batch_size])).float())
    model.train(was_training)
    return torch.cat(outputs)


def check_outputs(model: nn.Module, task: Task) -> None:
    """The task reads and trains the outputs the model declares (a caller of `fit` builds the task with
    `task.with_outputs(declared_kind(model))`, as the pipeline does); a mismatch would train on the wrong loss."""
    kind, read = declared_kind(model), task.outputs
    if (kind.name, kind.levels) != (read.name, read.levels):
        raise RuntimeError(f"{type(model).__name__} outputs {kind.name} {kind.levels} but the task reads "
                           f"{read.name} {read.levels}: build it with task.with_outputs(declared_kind(model))")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: biases, norm weights and embeddings get none (as in the rtdl recipe).

    A model that knows better (rtdl's FTTransformer) provides `make_parameter_groups` itself. Each
    group lists its parameters in the model's order: the optimizer's checkpoint maps its state to
    parameters by position, and rtdl builds a group from a set, whose order changes from process to
    process, so a resumed run would give one parameter's Adam moments to another.
    """
    if hasattr(model, "make_parameter_groups"):
        position = {id(param): i for i, param in enumerate(model.parameters())}
        groups = model.make_parameter_groups()
        for group in groups:
            group["params"] = sorted(group["params"], key=lambda param: position[id(param)])
            group.setdefault("weight_decay", weight_decay)
        return groups
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embedding" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_scheduler(optimizer: torch.optim.Optimizer, trainer: Any) -> Any:
    """Per-epoch schedules, stepped after validation (so a skipped fp16 step never moves them); None
    for a constant learning rate."""
    if trainer.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=trainer.max_epochs)
    if trainer.scheduler == "plateau":
        patience = max(1, trainer.patience // 3) if trainer.plateau_patience is None else trainer.plateau_patience
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=trainer.plateau_factor, patience=patience)
    if trainer.scheduler == "exponential":
        # After `epochs_done` epochs: epoch k (from 1) trains at lr * gamma ** max(0, k - hold).
        hold, gamma = trainer.exponential_hold, trainer.exponential_gamma
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epochs_done: gamma ** max(0, epochs_done + 1 - hold))
    return None


def step_scheduler(scheduler: Any, val_loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    elif scheduler is not None:
        scheduler.step()


def check_finite(epoch: int, train_loss: float, val_loss: float, trainer: Any) -> None:
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        raise TrainingError(f"non-finite loss at epoch {epoch} (train {train_loss}, val {val_loss}); "
                            f"lower trainer.lr (now {trainer.lr}), set trainer.grad_clip, or use "
                            f"hardware.precision=32")


def clip_gradients(model: nn.Module, max_norm: float | None) -> None:
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

"""The training loop, read top to bottom: epochs of in-memory batches, validation, early stopping,
checkpoints. Everything a resumed run needs is in the `last` checkpoint, so a run killed at any
point continues from its last completed epoch and ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from dl_core.data.bundle import DataBundle, Split
from dl_core.engine.checkpoint import FORMAT_VERSION, atomic_save, capture_rng, restore_rng
from dl_core.engine.distributed import SINGLE, Distributed
from dl_core.engine.hardware import Hardware
from dl_core.engine.metrics import loss_for
from dl_core.errors import TrainingError


class Tracker(Protocol):
    def log_epoch(self, history: list[dict[str, float]]) -> None: ...


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


def fit(model: nn.Module, bundle: DataBundle, trainer: Any, hw: Hardware, run_dir: Path, *, seed: int,
        artifacts: dict[str, Any], trackers: Sequence[Tracker] = (), resume: dict[str, Any] | None = None,
        ddp: Distributed = SINGLE) -> FitResult:
    """Train `model` on `bundle` in place and leave the best weights loaded.

    `artifacts` (fitted preprocessing, resolved config, data spec) goes into every checkpoint so a
    checkpoint alone is enough to predict. Under DDP (`ddp`) each rank trains on its shard of the
    epoch's permutation, losses are averaged over ranks and only rank 0 writes checkpoints.
    """
    ckpt_dir = run_dir / "checkpoints"
    train_split, val_split = bundle.splits["train"], bundle.splits["val"]
    n_train, batch_size = len(train_split), int(trainer.batch_size)
    loss_fn = loss_for(bundle.task, bundle.spec.get("d_out"))
    if not any(p.requires_grad for p in model.parameters()):
        return fit_nothing(model, bundle, trainer, hw, ckpt_dir, seed=seed, artifacts=artifacts, ddp=ddp)
    net = ddp.wrap(model, hw)
    net = torch.compile(net) if hw.compile else net
    optimizer = torch.optim.AdamW(parameter_groups(model, trainer.weight_decay), lr=trainer.lr)
    scheduler = build_scheduler(optimizer, trainer)
    scaler = torch.amp.GradScaler(hw.device.type) if hw.needs_grad_scaler else None
    shuffle = torch.Generator().manual_seed(seed)
    stopper = EarlyStopping(trainer.patience, trainer.min_delta)
    history: list[dict[str, float]] = []
    best_state = copy.deepcopy(model.state_dict())
    start_epoch, elapsed = 1, 0.0

    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None:
            scaler.load_state_dict(resume["scaler"])
        # The counters continue; patience and min_delta are this invocation's, so a resume may extend them.
        saved = resume["early_stopping"]
        stopper = EarlyStopping(trainer.patience, trainer.min_delta, saved["best"], saved["best_epoch"],
                                saved["bad_epochs"])
        history, elapsed = resume["history"], resume["train_time_s"]
        best_state = resume["best_model"]
        restore_rng(resume["rng"], shuffle)
        start_epoch = resume["epoch"] + 1

    def checkpoint(epoch: int, weights: dict[str, torch.Tensor], finished: bool) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION, "epoch": epoch, "finished": finished, "model": weights,
            "best_model": best_state, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "early_stopping": vars(stopper).copy(), "rng": capture_rng(shuffle), "history": history,
            "train_time_s": elapsed, **artifacts,
        }

    # Judged under this invocation's max_epochs and patience, not the saved `finished` flag, so that a
    # finished run resumed with a larger trainer.max_epochs (or patience) trains on.
    done = resume is not None and (stopper.should_stop or resume["epoch"] >= trainer.max_epochs)
    epochs = range(0) if done else range(start_epoch, trainer.max_epochs + 1)
    bar = tqdm(total=trainer.max_epochs, initial=start_epoch - 1, desc="epochs", unit="ep",
               disable=not trainer.progress_bar or done or not ddp.is_main, dynamic_ncols=True, leave=False)
    try:
        for epoch in epochs:
            tick = time.perf_counter()
            model.train()
            total = torch.zeros((), device=hw.device)
            perm = ddp.shard(torch.randperm(n_train, generator=shuffle)).to(hw.device)
            for start in range(0, len(perm), batch_size):
                idx = perm[start:start + batch_size]
                inputs, target = train_split.batch(idx)
                with hw.autocast():
                    output = net(*inputs)
                loss = loss_fn(output.float(), target)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    clip_gradients(model, trainer.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    clip_gradients(model, trainer.grad_clip)
                    optimizer.step()
                total += loss.detach() * idx.numel()
            train_loss = ddp.average(total, len(perm))
            val_loss = ddp.from_main(float(loss_fn(predict(net, val_split, hw, trainer.eval_batch_size),
                                                   val_split.targets().float())))
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                raise TrainingError(f"non-finite loss at epoch {epoch} (train {train_loss}, val {val_loss}); "
                                    f"lower trainer.lr (now {trainer.lr}), set trainer.grad_clip, or use "
                                    f"hardware.precision=32")
            lr = optimizer.param_groups[0]["lr"]
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            elif scheduler is not None:
                scheduler.step()
            improved = stopper.update(val_loss, epoch)
            elapsed += time.perf_counter() - tick
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr,
                            "time_s": elapsed})
            finished = stopper.should_stop or epoch == trainer.max_epochs
            if improved:
                best_state = copy.deepcopy(model.state_dict())
            # An improving epoch's `best` and `last` checkpoints are the same payload: serialise it once,
            # with `model` and `best_model` sharing storage (torch.save then stores the weights once).
            paths = [ckpt_dir / "best.ckpt"] if improved else []
            if finished or epoch % trainer.checkpoint_every == 0:
                paths.append(ckpt_dir / "last.ckpt")
            if paths and ddp.is_main:
                atomic_save(checkpoint(epoch, best_state if improved else model.state_dict(), finished), *paths)
            for tracker in trackers:
                tracker.log_epoch(history)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", best=f"{stopper.best:.4f}")
            if stopper.should_stop:
                break
    finally:
        bar.close()  # also on Ctrl-C, so the interrupt message starts on a clean line
    model.load_state_dict(best_state)
    return FitResult(stopper.best_epoch, len(history), stopper.best, stopper.should_stop, n_train,
                     elapsed, history)


def fit_nothing(model: nn.Module, bundle: DataBundle, trainer: Any, hw: Hardware, ckpt_dir: Path, *, seed: int,
                artifacts: dict[str, Any], ddp: Distributed = SINGLE) -> FitResult:
    """A model without trainable parameters (e.g. the naive baseline): no epochs, but the same
    validation loss and the same finished checkpoint, so evaluation and prediction work unchanged."""
    val_split = bundle.splits["val"]
    val_loss = float(loss_for(bundle.task, bundle.spec.get("d_out"))(
        predict(model, val_split, hw, trainer.eval_batch_size), val_split.targets().float()))
    stopper = EarlyStopping(trainer.patience, trainer.min_delta, best=val_loss)
    state = {
        "format_version": FORMAT_VERSION, "epoch": 0, "finished": True, "model": model.state_dict(),
        "best_model": model.state_dict(), "optimizer": None, "scheduler": None, "scaler": None,
        "early_stopping": vars(stopper).copy(), "rng": capture_rng(torch.Generator().manual_seed(seed)),
        "history": [], "train_time_s": 0.0, **artifacts,
    }
    if ddp.is_main:
        atomic_save(state, ckpt_dir / "best.ckpt", ckpt_dir / "last.ckpt")
    return FitResult(0, 0, val_loss, False, len(bundle.splits["train"]), 0.0, [])


@torch.no_grad()
def predict(model: nn.Module, split: Split, hw: Hardware, batch_size: int) -> torch.Tensor:
    """Model outputs for every sample of `split`, in order, as float32 on the split's device."""
    was_training = model.training
    model.eval()
    outputs = []
    order = torch.arange(len(split), device=hw.device)
    for start in range(0, len(split), batch_size):
        inputs, _ = split.batch(order[start:start + batch_size])
        with hw.autocast():
            outputs.append(model(*inputs).float())
    model.train(was_training)
    return torch.cat(outputs)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: biases, norm weights and embeddings get none (as in the rtdl recipe).

    A model that knows better (rtdl's FTTransformer) provides `make_parameter_groups` itself.
    """
    if hasattr(model, "make_parameter_groups"):
        groups = model.make_parameter_groups()
        for group in groups:
            group.setdefault("weight_decay", weight_decay)
        return groups
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embedding" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_scheduler(optimizer: torch.optim.Optimizer, trainer: Any):
    """Per-epoch schedules, stepped after validation (so a skipped fp16 step never moves them)."""
    if trainer.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=trainer.max_epochs)
    if trainer.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5,
                                                          patience=max(1, trainer.patience // 3))
    return None


def clip_gradients(model: nn.Module, max_norm: float | None) -> None:
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

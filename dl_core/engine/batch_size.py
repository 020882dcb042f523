"""`trainer.batch_size=auto`: the largest training batch that fits on a GPU, the schema's default elsewhere.

On a GPU a bigger batch is nearly free throughput until memory runs out, and the limit depends on
the model, the data shape and the precision, so it is found by trying: double the batch while a
forward + backward pass fits, and back off to the last size that did. On a CPU there is no memory
wall to find (a bigger batch only trades steps for per-step cost), so the default stays; so it does
for an estimator that is not trained in batches by the epoch engine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dl_core.data.bundle import DataBundle
from dl_core.engine.estimator import Estimator, TorchEstimator
from dl_core.engine.hardware import Hardware
from dl_core.engine.schema import TrainerConfig

# The schema's default, the one source of it (no YAML restates it).
DEFAULT_BATCH_SIZE: int = TrainerConfig.batch_size


def resolve_batch_size(requested: int | str, estimator: Estimator, bundle: DataBundle, hw: Hardware) -> int:
    """The batch size to train with: `requested` itself unless it is "auto"."""
    if requested != "auto":
        return int(requested)
    if hw.device.type != "cuda" or not isinstance(estimator, TorchEstimator):
        return DEFAULT_BATCH_SIZE
    return search_batch_size(estimator.module, bundle, hw)


def search_batch_size(model: nn.Module, bundle: DataBundle, hw: Hardware) -> int:
    """The largest batch of training samples whose training step fits in the device's memory."""
    limit = len(bundle.splits["train"])
    return largest_batch(lambda size: _step_fits(model, bundle, hw, size), DEFAULT_BATCH_SIZE, limit)


def largest_batch(fits: Callable[[int], bool], start: int, limit: int) -> int:
    """Double from `start` while `fits(size)`; stop at `limit` (the whole split) or the first failure.

    Returns the last size that fitted, never less than 1: a batch that does not fit even at `start`
    is halved until one does (or 1, where the training step itself will report the error).
    """
    size = min(start, limit)
    while size > 1 and not fits(size):
        size //= 2
    while size < limit and fits(min(size * 2, limit)):
        size = min(size * 2, limit)
    return size


def _step_fits(model: nn.Module, bundle: DataBundle, hw: Hardware, size: int) -> bool:
    """One forward + backward pass of `size` training samples, with the loss training uses; False on
    CUDA out-of-memory.

    RNG state is restored afterwards (dropout draws), and gradients are dropped, so probing leaves
    the run exactly as it was.
    """
    split = bundle.splits["train"]
    loss_fn = bundle.task.loss()
    try:
        with torch.random.fork_rng(devices=[hw.device] if hw.device.type == "cuda" else []):
            inputs, target = split.batch(torch.arange(size, device=hw.device))
            with hw.autocast():
                output = model(*inputs)
            loss_fn(output.float(), target).backward()
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        model.zero_grad(set_to_none=True)
        if hw.device.type == "cuda":
            torch.cuda.empty_cache()

"""DistributedDataParallel under torchrun: process group, data shards, reductions, one writer.

`torchrun --nproc_per_node=N train.py hardware=ddp` starts N copies of the same run. Each rank
composes the same config, seeds the same generators and so draws the same per-epoch permutation;
it trains on its own interleaved shard of it, and DDP averages the gradients. `trainer.batch_size`
is per rank (PyTorch's and Lightning's convention): the global batch is N x batch_size, and a DDP
step on N ranks is the same step a single process takes with batch N x batch_size.

Decisions that must be identical on every rank (early stopping, LR plateaus, the non-finite check)
are taken on values every rank agrees on, and only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import nn

from dl_core.engine.hardware import Hardware
from dl_core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run; the default is a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics, plots and trackers."""
        return self.rank == 0

    def place(self, hw: Hardware) -> Hardware:
        """One GPU per rank: `cuda` becomes `cuda:<local rank>`."""
        if self.enabled and hw.device.type == "cuda":
            return replace(hw, device=torch.device("cuda", self.local_rank))
        return hw

    def wrap(self, model: nn.Module, hw: Hardware) -> nn.Module:
        """DDP averages gradients across ranks during backward; a no-op in a single process."""
        if not self.enabled:
            return model
        device_ids = [hw.device.index] if hw.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's share of the epoch's permutation, interleaved (rank r takes r, r+N, ...).

        Every rank must run the same number of steps or DDP's gradient all-reduce waits forever, so
        like `DistributedSampler` the permutation is padded with its own first samples up to a
        multiple of N. Interleaving makes step k's global batch exactly the single-process batch k.
        """
        if not self.enabled:
            return perm
        padding = -len(perm) % self.world_size
        return torch.cat([perm, perm[:padding]])[self.rank::self.world_size]

    def average(self, total: torch.Tensor, count: int) -> float:
        """Mean over all ranks of a per-sample quantity summed locally over `count` samples."""
        if not self.enabled:
            return float(total) / count
        both = torch.stack([total.detach().double(), torch.tensor(float(count), dtype=torch.float64,
                                                                  device=total.device)])
        dist.all_reduce(both)
        return float(both[0] / both[1])

    def from_main(self, value: float) -> float:
        """Rank 0's value on every rank, so decisions taken on it agree bit for bit even where GPU
        kernels are not deterministic."""
        if not self.enabled:
            return value
        return self.broadcast(value)

    def broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def share_run_dir(self, cfg: DictConfig) -> DictConfig:
        """Make every rank use rank 0's run dir, so one DDP run writes one directory.

        Each rank composed its own timestamped Hydra run dir; the others move what Hydra already
        wrote there (its config copy and the rank's log) to `<run dir>/ranks/rank<k>/`.
        """
        if not self.enabled:
            return cfg
        own = Path(str(cfg.paths.output_dir))
        shared = Path(self.broadcast(str(own)))
        if shared != own:
            if own.is_dir():
                target = shared / "ranks" / f"rank{self.rank}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(own, target)
            cfg.paths.output_dir = str(shared)
        return cfg


SINGLE = Distributed()


@contextmanager
def process_group(hardware: DictConfig) -> Iterator[Distributed]:
    """Join torchrun's process group for `hardware=ddp` (NCCL on CUDA, gloo on CPU); leave it on exit."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if not hardware.distributed:
        if launched > 1:
            raise ConfigError(f"hardware.distributed: launched by torchrun with {launched} processes but "
                              f"distributed is off, so each would train alone; pass hardware=ddp")
        yield SINGLE
        return
    if "RANK" not in os.environ:
        raise ConfigError("hardware.distributed: hardware=ddp runs under torchrun; start it with "
                          "torchrun --nproc_per_node=N train.py hardware=ddp (or pick hardware=auto)")
    ddp = Distributed(int(os.environ["RANK"]), launched, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = str(hardware.device) != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(ddp.local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    log.info("rank %d of %d (%s)", ddp.rank, ddp.world_size, dist.get_backend())
    try:
        yield ddp
    finally:
        dist.destroy_process_group()

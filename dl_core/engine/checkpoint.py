"""Checkpoints: one format for resume and for inference, written so a kill never tears a file.

`checkpoint_payload` builds the one format (weights, the best weights so far, everything training
carries from epoch to epoch, RNG states, and the run's artifacts: config, spec, task, preprocessor);
`restore_training` puts a payload back into a training run. The payload is written to a temp file
in the destination directory, fsynced, then renamed over the old file with `os.replace` (atomic on
POSIX). A crash at any point leaves either the previous checkpoint or the new one, never a partial file.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from dl_core.errors import CheckpointError, ConfigError

# 2: the task is an object (its target encoding included), no longer a name.
# 3: the task is dl_core.task's, built with its model's output kind (dl_core.models.outputs).
FORMAT_VERSION = 3
# What torch.load raises on a truncated or damaged file (a zip reader error, a short read, bad pickle data).
UNREADABLE = (EOFError, OSError, RuntimeError, ValueError, pickle.UnpicklingError)
# What it raises on a checkpoint that pickles a class this version of dl_core no longer has where it was.
FOREIGN = (ImportError, AttributeError)
# A write refused for want of room: a full disk, a full quota, the file-size limit (`ulimit -f`; Python ignores
# SIGXFSZ, so the write fails with EFBIG rather than the process being killed).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def atomic_save(payload: dict[str, Any], *paths: Path) -> None:
    """Write `payload` to every path in `paths`, serialising it once (an epoch's checkpoint is often
    both `best` and `last`, and serialising dominates the cost of a save).

    A write the file system refuses (a full disk, the file-size limit, no permission) is a `CheckpointError`
    naming the file and the fix; the file it would have replaced is left as it was.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    for path in paths:
        try:
            _write(buffer, path)
        except OSError as err:
            fix = ("free disk space or raise the file-size limit (ulimit -f)" if err.errno in NO_SPACE
                   else f"make {path.parent} writable")
            raise CheckpointError(f"{path}: cannot write this checkpoint ({err.strerror}); {fix}") from None


def _write(buffer: io.BytesIO, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by this project (it pickles the fitted preprocessing: trust your files).

    A file that cannot be read (truncated by a copy, a full disk, a damaged drive: our own writes are
    atomic) is refused with one line naming it and how to recover.
    """
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}; point trainer.resume / run_dir at a run directory "
                          f"that has checkpoints/last.ckpt")
    try:
        payload = _read(path)
    except UNREADABLE as err:
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: cannot read this checkpoint, it is truncated or corrupt ({reason}); "
                              f"{_recovery(path)}") from None
    except FOREIGN as err:
        raise CheckpointError(f"{path}: checkpoint written by another version of dl_core ({err}); train the run "
                              f"again with this one") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: checkpoint format {found} is not supported (expected {FORMAT_VERSION}); "
                              f"it was written by another version of dl_core: train the run again with this one")
    return payload


class Stateful(Protocol):
    """What training carries from epoch to epoch: an optimizer, a schedule, a grad scaler, early stopping, the
    divergence guard's reference."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def checkpoint_payload(epoch: int, finished: bool, weights: dict[str, torch.Tensor],
                       best_weights: dict[str, torch.Tensor], training: dict[str, Stateful | None],
                       shuffle: torch.Generator, history: list[dict[str, float]], train_time_s: float,
                       artifacts: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint after `epoch`: `weights` (in `best.ckpt` the best ones), the best weights so far,
    the state of each `training` part (None for a part the run does not use), every RNG, the history
    and `artifacts`."""
    return {"format_version": FORMAT_VERSION, "epoch": epoch, "finished": finished, "model": weights,
            "best_model": best_weights,
            **{name: None if part is None else part.state_dict() for name, part in training.items()},
            "rng": capture_rng(shuffle), "history": history, "train_time_s": train_time_s, **artifacts}


def restore_training(payload: dict[str, Any], model: nn.Module, training: dict[str, Stateful | None],
                     shuffle: torch.Generator) -> tuple[dict[str, torch.Tensor], list[dict[str, float]], float, int]:
    """Put a checkpoint back: the weights into `model`, each training part's state, every RNG. Returns the
    best weights so far, the history, the training time so far and the last completed epoch."""
    model.load_state_dict(payload["model"])
    for name, part in training.items():
        if part is not None and name in payload:  # a part newer than the checkpoint keeps its fresh state
            part.load_state_dict(payload[name])
    restore_rng(payload["rng"], shuffle)
    return payload["best_model"], payload["history"], payload["train_time_s"], payload["epoch"]


def _read(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=False)


def _recovery(path: Path) -> str:
    """What to do about an unreadable checkpoint. `best.ckpt` is a complete checkpoint of the best epoch
    (optimizer, RNG and early-stopping state included), so a run whose `last.ckpt` is lost can
    continue from there and replay the epochs after it exactly."""
    best = path.with_name("best.ckpt")
    if path.name == "last.ckpt" and best.is_file() and _readable(best):
        return (f"to continue from the best epoch instead, copy {best.name} over it "
                f"(cp {best} {path}) and resume again")
    return "restore the file from a copy, or train the run again"


def _readable(path: Path) -> bool:
    try:
        _read(path)
    except (*UNREADABLE, *FOREIGN):
        return False
    return True


def capture_rng(shuffle: torch.Generator) -> dict[str, Any]:
    """Every RNG that influences training, so a resumed run replays exactly what the original would have."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
             "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""User-facing error types, the one way a config check refuses a value, and how a process ends.

A `DLCoreError` is a mistake in the user's config or data: the entry points print its one-line
message (which names the field and the fix) without a traceback. Anything else is a bug and keeps
its traceback. An exit status asked for while a run ends (`exit_when_done`) is applied by the entry
point once its work is done, so whichever module asks for it needs no entry point to do so.
"""

from __future__ import annotations

from types import CodeType
from typing import Any

# Exit statuses asked for by `exit_when_done`, in this process.
_deferred_exits: list[int] = []


class DLCoreError(Exception):
    """Base class for errors the user can fix by changing config or data."""


class ConfigError(DLCoreError):
    """A config value is wrong: the message names the key and a valid value."""


class DataError(DLCoreError):
    """The data cannot be used as configured: the message names the column or entity and the fix."""


class InputError(DataError):
    """Rows that cannot be predicted on; `loc` is the path of the bad field inside `rows`, so the HTTP
    service can answer 422 naming it."""

    def __init__(self, loc: tuple[Any, ...], message: str):
        super().__init__(f"rows{''.join(f'[{part!r}]' for part in loc)}: {message}")
        self.loc, self.reason = loc, message


class TrainingError(DLCoreError):
    """Training cannot go on (e.g. a non-finite loss): the message says which knob to turn."""


class CheckpointError(DLCoreError):
    """A checkpoint file cannot be read: the message names the file and how to recover."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a training run; the message says how to continue it (`trainer.resume=<run dir>`).

    Still a KeyboardInterrupt, so whatever stops on Ctrl-C stops on it; the entry points print its
    one line and exit with status 130 (128 + SIGINT), the shell's convention for an interrupt.
    """


def require(ok: bool, key: str, message: str) -> None:
    """Refuse a config value that its type allows but its meaning does not (a range, a combination).

    Types and choices are checked by the schema at compose time; these checks run in `validate`
    before any work, and `key` is the full dotted key, so the message says where to look.
    """
    if not ok:
        raise ConfigError(f"{key}: {message}")


def require_at_least(section: object, prefix: str, **minimums: float) -> None:
    """`require` a lower bound for each named field of a schema section."""
    for name, low in minimums.items():
        value = getattr(section, name)
        require(value >= low, f"{prefix}.{name}", f"must be >= {low} (got {value})")


def require_dropout(section: object, prefix: str, *names: str) -> None:
    """`require` each named field of a schema section to be a dropout rate: in [0, 1) (1 drops everything)."""
    for name in names:
        value = getattr(section, name)
        require(0.0 <= value < 1.0, f"{prefix}.{name}", f"must be in [0, 1) (got {value})")


def require_once(names: list[str] | None, key: str) -> None:
    """`require` each name of a list of columns to be listed once."""
    names = list(names or [])
    for i, name in enumerate(names):
        require(name not in names[:i], key, f"lists {name!r} twice; name each column once")


def raised_in(err: BaseException, code: CodeType) -> bool:
    """Whether `err` was raised inside the function whose code is `code` (its traceback passes through it)."""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def exit_when_done(status: int) -> None:
    """End the process with `status` once its work is over (the entry point applies it: `deferred_exit`). For a
    Hydra callback: a `sys.exit` inside one would skip the callbacks after it (the multirun summary), and an
    error the sweeper raises wins over it."""
    _deferred_exits.append(status)


def deferred_exit() -> int | None:
    """The highest exit status asked for by `exit_when_done`, or None."""
    return max(_deferred_exits, default=None)

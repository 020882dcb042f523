"""User-facing error types.

A `DLCoreError` is a mistake in the user's config or data: the entry points print its one-line
message (which names the field and the fix) without a traceback. Anything else is a bug and keeps
its traceback.
"""


class DLCoreError(Exception):
    """Base class for errors the user can fix by changing config or data."""


class ConfigError(DLCoreError):
    """A config value is wrong: the message names the key and a valid value."""


class DataError(DLCoreError):
    """The data cannot be used as configured: the message names the column or entity and the fix."""


class TrainingError(DLCoreError):
    """Training cannot go on (e.g. a non-finite loss): the message says which knob to turn."""


class CheckpointError(DLCoreError):
    """A checkpoint file cannot be read: the message names the file and how to recover."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a training run; the message says how to continue it (`trainer.resume=<run dir>`).

    Still a KeyboardInterrupt, so whatever stops on Ctrl-C stops on it; the entry points print its
    one line and exit with status 130 (128 + SIGINT), the shell's convention for an interrupt.
    """

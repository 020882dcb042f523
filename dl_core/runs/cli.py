"""What train.py, predict.py and serve.py share around their `@hydra.main` function.

A refused config, ours or Hydra's (unknown option, bad override syntax, wrong type, unknown key),
ends with one `error:` line and exit status 2, and leaves no run directory behind (only one this
process created: dl_core/runs/rundir.py); Ctrl-C ends with one line (for training: the resume command) and
status 130. Programming errors keep their traceback. In a multirun the job raises instead, so the
sweeper records a failed trial and goes on.

    @hydra.main(config_path="conf", config_name="train")
    def main(cfg):
        return run_job(train, cfg)

    if __name__ == "__main__":
        run(main)
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from dl_core.errors import DLCoreError, deferred_exit, raised_in
from dl_core.runs.config import check_task_name, models_having, register_configs, validate
from dl_core.runs.multirun import check_multirun
from dl_core.runs.rundir import claim, discard_claimed

T = TypeVar("T")
USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, the shell's status for a process stopped by Ctrl-C


def run(main: Callable[[], Any]) -> None:
    """Call a `@hydra.main` function as the script's entry point, once the schemas it composes with are registered."""
    register_configs()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors here instead of printing a report and exiting 1
    # Hydra instantiates `hydra.callbacks` without an execution whitelist and warns about each target, in
    # every run (conf/hydra/default.yaml configures the multirun summary); dl_core's are this package's code.
    warnings.filterwarnings("ignore", message=r"hydra\.utils\.instantiate\(\) resolved _target_='dl_core\.",
                            category=UserWarning)
    try:
        main()
        status = deferred_exit()  # asked for by a Hydra callback (dl_core.errors.exit_when_done)
        if status is not None:
            sys.exit(status)
    except (HydraException, OmegaConfBaseException) as err:
        if raised_in(err, run_job.__code__):
            raise  # a bug in the job, not a config Hydra refused: keep the traceback
        discard_claimed()
        _exit(f"error: {composition_error(err)}", USAGE_ERROR)
    except DLCoreError as err:  # a multirun's, refused by its sweeper or re-raised from a job
        discard_claimed()
        _exit(f"error: {err}", USAGE_ERROR)
    except KeyboardInterrupt as err:
        _exit(_interrupted(err), INTERRUPTED)


def run_job(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """The body of a `@hydra.main` function: check the config (`validate`, once), then run `task` on it."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate(cfg)
        return task(cfg)
    except DLCoreError as err:
        if multirun:
            err.in_job = True  # the multirun ends on it once its other jobs ran: not a refusal before any job
            raise
        discard_claimed()
        _exit(f"error: {err}", USAGE_ERROR)
    except KeyboardInterrupt as err:
        if multirun:
            raise KeyboardInterrupt from None  # a trial's resume command would not continue the sweep
        discard_claimed()
        _exit(_interrupted(err), INTERRUPTED)


class ClaimRunDir(Callback):
    """train.py's run directory (conf/hydra/default.yaml): made by this process before Hydra makes it, so a
    refused run removes it and never a directory it did not create, and refused where it holds a run; a
    multirun's jobs are checked and its sweep dir made before the first job (dl_core/runs/multirun.py). Either
    refused here is one line, not a traceback from Hydra's log set-up, and leaves no directory."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # as Hydra does next, for `${hydra:...}` in hydra.run.dir
        try:
            check_task_name(str(config.task_name))
            claim(str(config.hydra.run.dir), "hydra.run.dir", resuming=resumes_in_place(config))
        except DLCoreError as err:
            refuse(err)  # Hydra turns a callback's exception into a warning and goes on

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_multirun(config)
        except DLCoreError as err:
            refuse(err)
        except (HydraException, OmegaConfBaseException) as err:  # a job's overrides Hydra cannot compose
            refuse_line(f"error: {composition_error(err)}")


def resumes_in_place(config: DictConfig) -> bool:
    """Whether the run resumes the run in its own `hydra.run.dir` (`trainer.resume=true`, or its path)."""
    resume = OmegaConf.select(config, "trainer.resume", default=False)
    if resume is True:
        return True
    run_dir = str(config.hydra.run.dir)
    return isinstance(resume, str) and bool(run_dir.strip()) and os.path.abspath(resume) == os.path.abspath(run_dir)


def composition_error(err: Exception) -> str:
    """Hydra's multi-line report of a config it could not compose, as one line naming the override or key."""
    if isinstance(err, OverrideParseException):
        detail = [line for line in str(err).splitlines()[1:] if line and not line.startswith("See ")]
        return (f"{err.override}: cannot parse this override ({'; '.join(detail)}); see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/")
    if isinstance(err, MissingConfigException):
        options = [option for option in err.options or [] if not option.endswith("_schema")]
        return str(err).splitlines()[0] + (f"; options: {', '.join(options)}" if options else "")
    cause = err if isinstance(err, OmegaConfBaseException) else err.__cause__ or err.__context__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        message = str(cause).splitlines()[0]
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            preset = re.match(r"In '([^']+)'", str(err))  # the config file of the defaults list that set the key
            if preset and cause.object_type is not None:
                group = cause.full_key.split(".")[0]
                return (f"{cause.full_key}: {preset[1]} sets this key, which {cause.object_type.__name__} (the {group} "
                        f"chosen) does not have: that preset is made for another {group}; leave out the {group}= "
                        f"override to use the preset's, or leave out the preset")
            hint = models_having(cause.object_type, str(cause.key))
            return f"{cause.full_key}: not a config key ({message}){hint}; docs/config.md lists them"
        if isinstance(cause, ValidationError) and "is not Optional" in message:
            return f"{cause.full_key}: cannot be null; {value_instead_of_null(cause)}"
        return f"{cause.full_key}: {message}"
    lines = [line.strip() for line in str(err).split("Config search path:")[0].splitlines()]
    return "; ".join(line for line in lines if line)


def value_instead_of_null(err: ValidationError) -> str:
    """What to pass for a key its schema does not let be null: an empty list for a list, else a value."""
    schema = err.object_type
    if not dataclasses.is_dataclass(schema):
        return "pass a value"
    declared = typing.get_type_hints(schema).get(str(err.key))
    if typing.get_origin(declared) is list:
        return f"pass {err.full_key}=[] for none"
    default = {f.name: f.default for f in dataclasses.fields(schema)}.get(str(err.key), dataclasses.MISSING)
    return "pass a value" + ("" if default is dataclasses.MISSING else f" (its default: {default})")


def _interrupted(err: KeyboardInterrupt) -> str:
    return f"interrupted: {err}" if str(err) else "interrupted"


def refuse(err: DLCoreError) -> NoReturn:
    """One `error:` line and exit status 2: for a refusal raised where Hydra would wrap it in its own report."""
    refuse_line(f"error: {err}")


def refuse_line(line: str) -> NoReturn:
    _exit(line, USAGE_ERROR)


def _exit(line: str, status: int) -> NoReturn:
    print(line, file=sys.stderr)
    sys.exit(status)

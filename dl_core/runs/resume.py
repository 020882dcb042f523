"""Resuming a run: continue it in its own directory, under the config saved in its checkpoint.

The resume command composes a config of its own (the defaults plus its overrides); only what its
overrides set is compared with the saved config. What extends the run may change, anything that
would make the continued run a different run than the checkpoint holds is refused by name, and so is
a data file whose content changed since the run trained on it (its fingerprint, in the checkpoint).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.data.fingerprint import changed, data_fingerprint, described
from dl_core.engine.checkpoint import load_checkpoint
from dl_core.errors import ConfigError

# What a resume may change: how long the run goes on (it extends the run), and what cannot change its
# numbers (display, how often `last` is written, CPU threads: these can change the last bits of some
# kernels, as another machine would). Anything else would continue a different run than the
# checkpoint holds, so it is refused.
RESUME_MAY_CHANGE = ("trainer.max_epochs", "trainer.patience", "trainer.checkpoint_every", "trainer.progress_bar",
                     "hardware.threads")
# Where the run is, not what it computes.
RESUME_LOCATION = ("trainer.resume", "paths")
# The checkpoint's record of the data file the run trained on (dl_core/data/fingerprint.py), None for generated data.
DATA_FINGERPRINT = "data_fingerprint"
# What `hardware=auto` decides once, at the run's start, and the run's saved config records: a resume given `auto`
# again (a command that repeats `hardware=ddp` or `hardware=auto`) asks for that decision, which the saved value is.
DECIDED_AT_START = ("hardware.precision", "hardware.threads", "hardware.compile")


def resolve_resume(cfg: DictConfig) -> tuple[DictConfig, dict[str, Any] | None]:
    """With `trainer.resume`, continue the run in its own directory under its saved config."""
    resume = cfg.trainer.resume  # the schema makes it a bool or a path
    if resume is False:
        return cfg, None
    run_dir = Path(cfg.paths.output_dir) if resume is True else Path(resume)
    state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    for directory in (run_dir, run_dir / "checkpoints"):  # refused now, not when the first epoch is saved
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"trainer.resume: cannot write in {directory} (permission denied); make it writable, "
                              f"then resume")
    resumed = resumed_config(state["config"], cfg, command_line_overrides())
    check_same_data(state.get(DATA_FINGERPRINT), resumed)
    with open_dict(resumed):
        resumed.paths.output_dir = str(run_dir)
        resumed.trainer.resume = str(run_dir)
    return resumed, state


def check_same_data(recorded: dict[str, Any] | None, cfg: DictConfig) -> None:
    """Refuse to continue a run on a data file whose content changed since it trained: the scalers would be
    refitted on the new rows and the metrics would mix two data sets. (A checkpoint from before fingerprints
    were recorded has none to compare.)"""
    current = data_fingerprint(cfg.data)
    if changed(recorded, current):
        assert recorded is not None and current is not None
        raise ConfigError(f"{recorded['key']}: {current['file']} is not the file this run trained on "
                          f"({described(recorded, current)}); restore that file to resume, or train a new run on "
                          f"this data (without trainer.resume)")


def command_line_overrides() -> list[str]:
    """The overrides this process was started with, as Hydra recorded them; none outside a Hydra job
    (the Python API resumes under the saved config as it is)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def resumed_config(saved: dict[str, Any], cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The saved config, with the overrides a resume may apply (`RESUME_MAY_CHANGE`) applied.

    Only keys an override sets are compared (the rest of `cfg` is just the defaults the resume command
    composed): an override that repeats the saved value (or gives `auto` for what auto decided at the start)
    is fine, one that changes anything else is refused, naming the keys. A cosine schedule ends at the saved
    max_epochs, so it cannot be extended.
    """
    given, kept = _leaves(OmegaConf.to_container(cfg, resolve=True)), _leaves(saved)
    touched = _overridden(overrides, cfg)
    changed = sorted(key for key in given.keys() | kept.keys()
                     if _under(key, touched) and not _under(key, RESUME_LOCATION)
                     and given.get(key, "<unset>") != kept.get(key, "<unset>")
                     and not (key in DECIDED_AT_START and given.get(key) == "auto"))
    refused = [key for key in changed if key not in RESUME_MAY_CHANGE]
    if refused:
        what = ", ".join(f"{key} (saved {kept.get(key, '<unset>')}, given {given.get(key, '<unset>')})"
                         for key in refused)
        raise ConfigError(f"{what}: cannot change when resuming a run; a resume may change only "
                          f"{', '.join(RESUME_MAY_CHANGE)}: start a new run to change anything else")
    if "trainer.max_epochs" in changed and kept.get("trainer.scheduler") == "cosine":
        raise ConfigError(f"trainer.max_epochs: cannot change when resuming a run with trainer.scheduler=cosine "
                          f"(its schedule ends at the saved max_epochs={kept['trainer.max_epochs']}); "
                          f"start a new run for a longer schedule")
    resumed = OmegaConf.create(with_new_keys(saved, cfg))
    for key in changed:
        OmegaConf.update(resumed, key, given[key])
    return resumed


def with_new_keys(saved: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """The saved config plus the keys its schemas gained since the checkpoint was written, at their schema
    defaults, so that a run saved before e.g. `data.split.folds` existed still resumes (a new key's default
    keeps the old behaviour). A saved section is filled only where it is the composed section's schema: the
    same `_target_` if it has one, and no key that schema lacks (a saved FT-Transformer gets nothing from
    the LSTM the resume command composed by default)."""
    filled = copy.deepcopy(saved)
    _fill_section(filled, cfg)
    return filled


def _fill_section(saved: dict[str, Any], node: DictConfig) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema) or saved.get("_target_", node.get("_target_")) != node.get("_target_"):
        return
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if not saved.keys() <= fields.keys():
        return
    defaults = OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)
    for name, field in fields.items():
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        if name not in saved and has_default:
            saved[name] = defaults[name]
        elif isinstance(saved.get(name), dict) and isinstance(node.get(name), DictConfig):
            _fill_section(saved[name], node[name])


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every non-mapping value of a nested dict (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        leaves.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return leaves


def _overridden(overrides: Iterable[str], cfg: DictConfig) -> list[str]:
    """The keys the overrides set, as prefixes: `model=lstm` sets every `model.*` key, and a group
    with no key of its own (`experiment=...`, a global package) may set any key ("")."""
    keys = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        keys.append(key if key.split(".")[0] in cfg else "")
    return keys


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(prefix in ("", key) or key.startswith(prefix + ".") for prefix in prefixes)

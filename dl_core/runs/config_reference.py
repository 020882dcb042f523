"""The config reference (docs/config.md), generated from the registered schemas so it cannot drift.

Every schema dataclass documents its keys in an `Attributes:` section of its docstring, next to the
code that defines them. A group's table shows each key's type, its default (the schema's field
default, the one source of it) and its meaning; below it, what each option of the group sets, found
by composing `<group>=<option>` as a run does, so schema default + option = what a run gets. An entry
point's table shows its config as `python <entry>.py` composes it. `python -m dl_core.runs.config_reference`
rewrites docs/config.md; the test suite fails when a key has no description or the committed file is stale.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from functools import cache
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from dl_core.runs.config import ROOT, register_configs

DOC_PATH = ROOT / "docs" / "config.md"
CONF_DIR = ROOT / "conf"
ATTRIBUTE = re.compile(r"^\s{4}(\w+):\s*(.+)$")


NOTHING = "—"  # the key column of an option that sets nothing besides the schema's defaults


@dataclasses.dataclass(frozen=True)
class Section:
    """One schema's table: its key prefix, heading, dataclass, and where its options are."""

    prefix: str  # "" for an entry point's top level
    where: str
    cls: type
    config: str  # the entry config composing it: train, predict or serve
    group: str | None = None  # the config group whose options start from this schema


def schemas() -> list[Section]:
    """A section for every registered schema.

    `<group>/<name>_schema` entries document the group's keys; root `<name>_schema` entries are the
    configs of the entry points (train.py, predict.py, serve.py), whose keys have no prefix.
    """
    register_configs()
    found = []
    for group, entries in sorted(ConfigStore.instance().repo.items()):
        if group == "hydra":
            continue
        if not isinstance(entries, dict):
            if group.endswith("_schema.yaml"):
                name = group.removesuffix("_schema.yaml")
                found.append(Section("", f"{name}.py", OmegaConf.get_type(entries.node), name))
            continue
        for name, node in sorted(entries.items()):
            if name.endswith("_schema.yaml"):
                name.removesuffix("_schema.yaml")
                found.append(Section(group, f"conf/{group}/ ({name.removesuffix('.yaml')})",
                                     OmegaConf.get_type(node.node), "train", group))
    return found


def option_values(section: Section) -> dict[str, dict[str, str]]:
    """Option -> {key: value} for each option of the section's group that starts from its schema: the
    keys whose composed value differs from the schema's default, rendered as written (`${...}` kept)."""
    defaults = {key: default for key, _, default, _, _ in rows(section.prefix, section.cls)}
    out = {}
    for path in sorted((CONF_DIR / section.group).glob("*.yaml")):
        node = _compose("train", f"{section.group}={path.stem}")[section.group]
        if OmegaConf.get_type(node) is section.cls:
            out[path.stem] = {key: value for key, value in _values(node, section.prefix).items()
                              if value != defaults.get(key) and not key.rpartition(".")[2].startswith("_")}
    return out


def default_options() -> dict[str, str]:
    """Group -> the option `python train.py` composes."""
    return dict(_compose("train").hydra.runtime.choices)


@cache
def _compose(config: str, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(CONF_DIR)):
            return compose(config, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _values(node: DictConfig, prefix: str) -> dict[str, str]:
    """Rendered values of every key under `node`, unresolved (`${...}` as written); an entry point's
    config groups show the option chosen (`data` -> `synthetic`)."""
    choices = node.hydra.runtime.choices if "hydra" in node else {}
    tree = OmegaConf.to_container(node, resolve=False)
    out: dict[str, str] = {}

    def walk(value: Any, key: str) -> None:
        if key in choices:
            out[key] = str(choices[key])
            return
        out[key] = _render(value)
        if isinstance(value, dict):
            for name, child in value.items():
                walk(child, f"{key}.{name}")

    for name, value in tree.items():
        if name != "hydra":
            walk(value, f"{prefix}.{name}" if prefix else name)
    return out


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}" if value else "{}"
    return "null" if value is None else str(value)


def documented_fields(cls: type) -> dict[str, str]:
    """Descriptions from the `Attributes:` sections of the class's docstring and its bases' (a subclass
    documents only what it adds or changes)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass) and "__doc__" in vars(klass):
            docs.update(_attribute_section(klass.__doc__ or ""))
    return docs


def _attribute_section(docstring: str) -> dict[str, str]:
    docs: dict[str, str] = {}
    lines = inspect.cleandoc(docstring).splitlines()
    in_section, current = False, None
    for line in lines:
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        match = ATTRIBUTE.match(line)
        if match:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif line.startswith("        ") and current:
            docs[current] += " " + line.strip()
        elif line.strip():
            break
    return docs


def rows(prefix: str, cls: type) -> list[tuple[str, str, str, str, type]]:
    """(key, type, default, meaning, owner) for every key, nested dataclasses expanded in place."""
    hints = typing.get_type_hints(cls)
    docs = documented_fields(cls)
    out = []
    for f in _fields(cls):
        key, nested = f"{prefix}.{f.name}" if prefix else f.name, _dataclass_in(hints[f.name])
        if nested is not None:
            out.append((key, nested.__name__, "{...}" if _default(f) != "null" else "null", docs.get(f.name, ""), cls))
            out += rows(key, nested)
        else:
            out.append((key, _type_name(f.type), _default(f), docs.get(f.name, ""), cls))
    return out


def undocumented() -> list[str]:
    """Keys without a description, as `group.key (Class)`."""
    return [f"{key} ({owner.__name__})" for section in schemas()
            for key, _, _, meaning, owner in rows(section.prefix, section.cls) if not meaning]


def render() -> str:
    out = ["# Config reference", "",
           "Generated from the schema dataclasses in `dl_core/` by `python -m dl_core.runs.config_reference`;",
           "do not edit by hand. Every key can be overridden on the command line, e.g.",
           "`python train.py data.sequence_length=60 trainer.lr=3e-4`. A group's table gives each key's",
           "default (the schema's, its one source); the table below it, what each option of the group",
           "sets besides. A run gets the value its option sets, else the default.", ""]
    chosen = default_options()
    for section in schemas():
        summary = (inspect.getdoc(section.cls) or "").split("\n\n")[0].replace("\n", " ")
        out += [f"## {section.where} — {section.cls.__name__}", "", summary, ""]
        composed = {}
        if section.group is None:
            composed = _values(_compose(section.config), "")
            out += [(f"Defaults: as `python {section.config}.py` composes them (a config group: the option its "
                    f"defaults list picks)."), ""]
        out += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        out += [f"| `{key}` | {kind} | `{composed.get(key, default)}` | {meaning} |"
                for key, kind, default, meaning, _ in rows(section.prefix, section.cls)]
        out.append("")
        if section.group is not None:
            out += _options_table(section, chosen.get(section.group))
    return "\n".join(out)


def _options_table(section: Section, chosen: str | None) -> list[str]:
    out = [f"What each option sets (`python train.py {section.group}=<option>`):", "",
           "| option | key | value |", "| --- | --- | --- |"]
    for option, values in option_values(section).items():
        name = f"`{section.group}={option}`" + (" (default)" if option == chosen else "")
        out += [f"| {name} | `{key}` | `{value}` |" for key, value in values.items()] or [f"| {name} | {NOTHING} | |"]
    return [*out, ""]


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]


def _dataclass_in(hint: object) -> type | None:
    """The dataclass inside `X` or `Optional[X]`, else None."""
    candidates = typing.get_args(hint) or (hint,)
    return next((c for c in candidates if dataclasses.is_dataclass(c)), None)


def _type_name(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "").replace("|", "\\|")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return "null" if value is None else str(value)


def main() -> None:
    missing = undocumented()
    if missing:
        sys.exit("undocumented config keys: " + ", ".join(missing))
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")


if __name__ == "__main__":
    main()

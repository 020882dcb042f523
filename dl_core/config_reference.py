"""The config reference (docs/config.md), generated from the registered schemas so it cannot drift.

Every schema dataclass documents its keys in an `Attributes:` section of its docstring, next to the
code that defines them. `python -m dl_core.config_reference` rewrites docs/config.md; the test suite
fails when a key has no description or the committed file is stale.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import dl_core  # noqa: F401  (registers the schemas)
from dl_core.config import ObjectiveConfig

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "config.md"
ATTRIBUTE = re.compile(r"^\s{4}(\w+):\s*(.+)$")


def schemas() -> list[tuple[str, str, type]]:
    """(key prefix, where it is used, dataclass) for every registered schema, plus `objective`.

    `<group>/<name>_schema` entries document the group's keys; root `<name>_schema` entries are the
    configs of the other entry points (predict.py, serve.py), whose keys have no prefix.
    """
    found = []
    for group, entries in sorted(ConfigStore.instance().repo.items()):
        if group == "hydra":
            continue
        if not isinstance(entries, dict):
            if group.endswith("_schema.yaml"):
                found.append(("", group.removesuffix("_schema.yaml") + ".py", OmegaConf.get_type(entries.node)))
            continue
        for name, node in sorted(entries.items()):
            if name.endswith("_schema.yaml"):
                found.append((group, f"conf/{group}/ ({name.removesuffix('.yaml')})", OmegaConf.get_type(node.node)))
    found.append(("objective", "conf/train.yaml", ObjectiveConfig))
    return found


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
    return [f"{key} ({owner.__name__})" for prefix, _, cls in schemas()
            for key, _, _, meaning, owner in rows(prefix, cls) if not meaning]


def render() -> str:
    out = ["# Config reference", "",
           "Generated from the schema dataclasses in `dl_core/` by `python -m dl_core.config_reference`;",
           "do not edit by hand. Every key can be overridden on the command line, e.g.",
           "`python train.py data.sequence_length=60 trainer.lr=3e-4`.", ""]
    for prefix, where, cls in schemas():
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        out += [f"## {where} — {cls.__name__}", "", summary, "",
                "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        out += [f"| `{key}` | {kind} | `{default}` | {meaning} |" for key, kind, default, meaning, _ in rows(prefix, cls)]
        out.append("")
    return "\n".join(out)


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

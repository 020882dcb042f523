"""docs/config.md is generated from the schema: every key documented, the committed file current."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from dl_core.runs.config_reference import DOC_PATH, documented_fields, render, rows, undocumented
from helpers import ROOT


def test_every_schema_key_has_a_description():
    assert undocumented() == []


def test_committed_reference_matches_the_schema():
    assert DOC_PATH.read_text() == render(), "run `python -m dl_core.runs.config_reference` and commit docs/config.md"


def test_a_key_added_without_docs_is_caught():
    @dataclass
    class Partly:
        """A schema with one documented key.

        Attributes:
            width: how wide, explained over
                two lines.
        """

        width: int = 3
        depth: int = 2

    assert documented_fields(Partly) == {"width": "how wide, explained over two lines."}
    assert [(key, meaning) for key, _, _, meaning, _ in rows("model", Partly)] == [
        ("model.width", "how wide, explained over two lines."), ("model.depth", "")]


ROW = re.compile(r"^\| `([^`]+)` \| .+? \| `([^`]*)` \| ")
OPTION_ROW = re.compile(r"^\| `(\w+)=(\w+)`(?: \(default\))? \| `([^`]+)` \| `([^`]*)` \|$")


def reference() -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], dict[str, str]]]:
    """As docs/config.md states them: schema class name -> {key: default}, and (group, option) -> {key:
    value} for what each option sets besides."""
    tables: dict[str, dict[str, str]] = {}
    options: dict[tuple[str, str], dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in DOC_PATH.read_text().splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line.rsplit(" — ", 1)[-1], {})
        elif match := OPTION_ROW.match(line):
            options.setdefault(match.group(1, 2), {})[match.group(3)] = match.group(4)
        elif match := ROW.match(line):
            current[match.group(1)] = match.group(2)
    return tables, options


def composed(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


def leaves(node, prefix: str) -> dict[str, str]:
    """Every leaf under `node` rendered as the reference renders values (unresolved, null for None)."""
    out = {}
    for key, value in OmegaConf.to_container(node, resolve=False).items():
        if isinstance(value, dict):
            out.update(leaves(node[key], f"{prefix}.{key}"))
        elif not key.startswith("_"):
            out[f"{prefix}.{key}"] = "null" if value is None else str(value)
    return out


def expected_values(cfg, group: str) -> dict[str, str]:
    """What the reference says a run composed as `cfg` gets in `group`: its option's value, else the default."""
    tables, options = reference()
    option = cfg.hydra.runtime.choices[group]
    return {**tables[OmegaConf.get_type(cfg[group]).__name__], **options.get((group, option), {})}


def test_reference_defaults_are_what_the_default_run_gets():
    """docs/config.md said hardware.precision defaults to 32 (the dataclass) while a run got auto (the YAML)."""
    cfg = composed()  # `python train.py` with no overrides
    checked = 0
    for group in ("data", "model", "trainer", "hardware", "logger", "paths"):
        expected = expected_values(cfg, group)
        for key, value in leaves(cfg[group], group).items():
            assert expected[key] == value, key
            checked += 1
    tables, _ = reference()
    for key, value in leaves(cfg.objective, "objective").items():
        assert tables["TrainConfig"][key] == value, key
    assert tables["HardwareConfig"]["hardware.precision"] == cfg.hardware.precision == "auto"
    assert tables["TrainConfig"]["seed"] == str(cfg.seed) and tables["TrainConfig"]["data"] == "synthetic"
    assert checked > 40


def group_options() -> list[tuple[str, str]]:
    return [(group, path.stem) for group in ("data", "model", "trainer", "hardware", "logger")
            for path in sorted((ROOT / "conf" / group).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), group_options())
def test_reference_says_what_each_option_gives_a_run(group, option):
    """Schema default + what the option sets, as the reference lists them, is what `group=option` composes to."""
    cfg = composed(f"{group}={option}")
    expected = expected_values(cfg, group)
    for key, value in leaves(cfg[group], group).items():
        assert expected[key] == value, key


def test_no_option_restates_what_it_starts_from():
    """Each default has one source, the schema: an option file that set a key to the value it already has
    (the schema's default, or the option it extends, as ettm extends ett) would be a second source."""
    tables, _ = reference()
    for group, option in group_options():
        written = OmegaConf.load(ROOT / "conf" / group / f"{option}.yaml")
        extends = [name for name in written.pop("defaults", []) if (ROOT / "conf" / group / f"{name}.yaml").is_file()]
        cfg = composed(f"{group}={extends[0] if extends else option}")
        before = leaves(cfg[group], group) if extends else tables[OmegaConf.get_type(cfg[group]).__name__]
        for key, value in leaves(written, group).items():
            assert value != before.get(key), f"conf/{group}/{option}.yaml restates {key}={value}"

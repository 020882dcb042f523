"""docs/config.md is generated from the schema: every key documented, the committed file current."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import ROOT
from dl_core.config_reference import DOC_PATH, documented_fields, render, rows, undocumented


def test_every_schema_key_has_a_description():
    assert undocumented() == []


def test_committed_reference_matches_the_schema():
    assert DOC_PATH.read_text() == render(), "run `python -m dl_core.config_reference` and commit docs/config.md"


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


def reference_defaults() -> dict[str, dict[str, str]]:
    """Schema class name -> {key: default} as docs/config.md states them."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in DOC_PATH.read_text().splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line.rsplit(" — ", 1)[-1], {})
        elif match := ROW.match(line):
            current[match.group(1)] = match.group(2)
    return tables


def test_reference_defaults_are_what_the_default_run_gets():
    """docs/config.md said hardware.precision defaults to 32 (the dataclass) while a run got auto (the YAML)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train")  # `python train.py` with no overrides
    GlobalHydra.instance().clear()
    tables = reference_defaults()
    checked = 0
    for group in ("data", "model", "trainer", "hardware", "objective"):
        table = {**tables.get("TrainConfig", {}), **tables.get(OmegaConf.get_type(cfg[group]).__name__, {})}
        for key, value in OmegaConf.to_container(cfg[group], resolve=False).items():
            if not isinstance(value, dict) and not key.startswith("_"):
                expected = "null" if value is None else str(value)
                assert table[f"{group}.{key}"] == expected, f"{group}.{key}"
                checked += 1
    assert tables["HardwareConfig"]["hardware.precision"] == cfg.hardware.precision == "auto"
    assert tables["TrainConfig"]["seed"] == str(cfg.seed) and tables["TrainConfig"]["data"] == "synthetic"
    assert checked > 30

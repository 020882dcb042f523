"""docs/config.md is generated from the schema: every key documented, the committed file current."""

from __future__ import annotations

from dataclasses import dataclass

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

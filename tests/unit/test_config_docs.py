"""docs/configuration.md cannot drift: its key reference is generated and checked here."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from sla_daemon.config import Config
from sla_daemon.config_docs import BEGIN, END, reference, updated

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def _generated_part() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(BEGIN) : text.index(END) + len(END) + 1]


def test_the_key_reference_in_the_docs_is_current() -> None:
    """The reference in docs/configuration.md is exactly what the schema generates.

    When this fails, run `make docs` and commit the result.
    """
    assert _generated_part() == reference()


def test_every_key_has_a_type_a_default_and_a_meaning() -> None:
    """No row of the reference lacks its meaning: every field carries a comment."""
    rows = [line for line in reference().splitlines() if line.startswith("| `")]
    assert len(rows) > 80
    empty = [row for row in rows if row.rstrip().endswith("|  |")]
    assert empty == []


def test_every_schema_key_is_in_the_reference() -> None:
    """Each key of every section (walked through the pydantic models) has its own row."""
    documented = set(re.findall(r"^\| `([^`]+)` \|", reference(), flags=re.M))

    def keys(model: type[BaseModel]) -> set[str]:
        names = set()
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
            for inner in _section_types(field.annotation):
                names |= keys(inner)
        return names

    assert keys(Config) <= documented


def _section_types(annotation: object) -> list[type[BaseModel]]:
    found = []
    for value in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(value, type) and issubclass(value, BaseModel):
            found.append(value)
    return found


def test_updating_replaces_only_the_generated_part() -> None:
    """`make docs` keeps the hand-written text around the markers as it is."""
    document = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert updated(document, f"{BEGIN}\nnew\n{END}\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"

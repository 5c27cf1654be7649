"""YAML loading that remembers on which line every key stands.

pydantic reports a problem by key path; a person fixes it by line. Composing the YAML
node tree ourselves gives both from one parse.
"""

from __future__ import annotations

from typing import Any

import yaml

KeyPath = tuple[str | int, ...]
"""A path into the configuration: mapping keys and list indexes."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text.

    YAML would turn ``2026-12-24`` into a date itself and fail with a bare ValueError
    (no line, no key) on ``2026-13-01``; as text, pydantic validates it and the error
    names the file, the line and the key like every other.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def compose_with_lines(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse ``text`` as YAML; return the data and a map from key path to 1-based line.

    Aliases are not expanded: an aliased node is one shared object in the data and its
    keys are mapped once, where the anchor stands, so an alias bomb ("billion laughs")
    or a recursive alias costs no more than the text itself. Raises ``yaml.YAMLError``
    for text that is not YAML, and ``RecursionError`` for nesting deeper than Python's
    stack allows.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    _walk(node, (), lines, set())
    return data, lines


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], seen: set[int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:  # an alias of a node already mapped
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, str(key_node.value))
            lines[key_path] = key_node.start_mark.line + 1
            _walk(value_node, key_path, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, seen)


def line_for(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of ``path``, or of its nearest ancestor that is in the file (else 1)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return 1


def describe_path(path: KeyPath) -> str:
    """Write a key path as a person reads it: ``mailboxes[0].folders.sent``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _shown_key(part)
    return text or "(top level)"


def _shown_key(key: str) -> str:
    """A key as written, or quoted when it is empty or holds blanks or control characters."""
    if key and key.isprintable() and not any(char.isspace() for char in key):
        return key
    return repr(key)

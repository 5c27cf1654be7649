"""Hostile configuration files: random text, random YAML in every key, alias bombs.

Whatever the file holds, loading it gives a ``Config`` or a ``ConfigError`` whose every
line is ``file:line: ...``; never another exception, and never unbounded memory.
"""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sla_daemon.config import load_config, parse_config
from sla_daemon.errors import ConfigError

VALID: dict[str, Any] = {
    "state_dir": "/tmp/sla-state",
    "team": {"domains": ["acme.example"], "from": "Acme <support@acme.example>"},
    "mailboxes": [{"name": "support", "host": "imap.acme.example", "username": "s@acme.example"}],
    "smtp": {"host": "smtp.acme.example"},
    "calendars": {"office": {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}},
    "policies": {"standard": {"calendar": "office", "action_plan": {"within": "48h"}}},
    "accounts": [{"name": "Globex", "domains": ["globex.example"], "owner": "a@acme.example"}],
    "markers": {"action_plan": {"body_patterns": ["(?im)^action plan:"]}},
    "ingest": {"max_body_bytes": "256KiB"},
}

_PROBLEM_LINE = re.compile(r"^c\.yaml:\d+: \S")

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["48h", "-1h", "0s", "1e9d", "256KiB", "Europe/Nowhere", "(?P<", "24x7"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _key_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            paths += _key_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            paths += _key_paths(value, (*path, index))
    return paths


_PATHS = _key_paths(VALID)


def _assert_loads_or_explains(text: str) -> None:
    """``text`` validates, or every problem is one ``c.yaml:LINE: ...`` line."""
    try:
        parse_config(text, "c.yaml")
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert _PROBLEM_LINE.match(problem), problem
            assert len(problem) < 1000, problem[:200]
            assert "\n" not in problem, problem


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
@example("a: &x [*x]\n")
@example("a: " + "[" * 3000 + "]" * 3000)
@example("a: " + "{b: " * 3000 + "1" + "}" * 3000)
@example("mailboxes: [{name: " + "x" * 1_000_000 + "}]")
def test_random_text_gives_a_config_or_a_config_error(text: str) -> None:
    """Any text (recursive aliases, deep nesting, a huge value) loads or explains itself."""
    _assert_loads_or_explains(text)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(_PATHS), value=_VALUES)
def test_random_yaml_in_any_key_gives_a_config_or_a_config_error(
    path: tuple[Any, ...], value: Any
) -> None:
    """Any YAML value in place of any key of a valid file loads or explains itself."""
    data: Any = yaml.safe_load(yaml.safe_dump(VALID))
    if path:
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
    else:
        data = value
    _assert_loads_or_explains(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(min_value=0), junk=st.text(max_size=20))
def test_a_valid_file_cut_or_spliced_anywhere_gives_a_config_or_a_config_error(
    cut: int, junk: str
) -> None:
    """A valid file truncated at any character, with junk spliced in, loads or explains."""
    text = yaml.safe_dump(VALID)
    cut %= len(text) + 1
    _assert_loads_or_explains(text[:cut] + junk + text[cut:])


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300))
@example(raw=b"state_dir: /x\nteam: \xff\n")
def test_a_file_of_random_bytes_gives_a_config_error_naming_the_file(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Any bytes in the file (not UTF-8 included) give a ConfigError naming file and line."""
    path = tmp_path_factory.mktemp("config") / "c.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(re.match(rf"^{re.escape(str(path))}:\d+: \S", p) for p in caught.value.problems)


def _alias_bomb(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "placement",
    ["top", "team_domains", "calendar_hours"],
)
def test_a_billion_laughs_alias_bomb_is_refused_in_bounded_memory(
    placement: str, tmp_path: Path
) -> None:
    """Nine levels of nine aliases (9**9 leaves) load in under 20 MB, with an error.

    Placed at the top (unknown keys), and where a list of text is expected (the team's
    domains, a calendar's hours), the bomb is never expanded.
    """
    bomb = _alias_bomb(9)
    last = "*l8"
    if placement == "top":
        text = bomb
    elif placement == "team_domains":
        text = bomb + f"team: {{from: a@acme.example, domains: {last}}}\n"
    else:
        text = bomb + f"calendars: {{office: {{timezone: UTC, hours: {{mon: {last}}}}}}}\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert all(problem.startswith(f"{path}:") for problem in caught.value.problems)

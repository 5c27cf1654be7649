"""The shell commands of docs/operations.md, for tests that check or run them as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

OPERATIONS = Path(__file__).parents[1] / "docs" / "operations.md"
_SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_OPERATORS = {"&&", "||", ";", "|", "(", ")", "&", ">", ">>", "<"}


def shell_lines() -> list[str]:
    """Every command line of the document's ``sh`` blocks, in order (comments dropped)."""
    lines: list[str] = []
    for block in _SHELL_BLOCK.findall(OPERATIONS.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = line.split(" # ", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def shell_line(containing: str) -> str:
    """The one command line that contains ``containing``."""
    (found,) = [line for line in shell_lines() if containing in line]
    return found


def inline_commands() -> list[str]:
    """The ``sla-daemon …`` commands the prose quotes in backticks."""
    return re.findall(r"`sla-daemon ([^`]+)`", OPERATIONS.read_text(encoding="utf-8"))


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def sla_daemon_invocations(line: str) -> list[list[str]]:
    """The arguments of each ``sla-daemon`` run in ``line``, also inside ``sh -c '…'``.

    A word runs the program when it starts a simple command or follows ``--`` (as in
    ``runuser -u sla-daemon -- sla-daemon …``) and its last path part is ``sla-daemon``;
    the same word elsewhere is a unit, user or path name.
    """
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    invocations: list[list[str]] = []
    start = 0
    for index, word in enumerate([*words, ";"]):
        if word in _OPERATORS or index == len(words):
            invocations += _from_simple_command(words[start:index])
            start = index + 1
    return invocations


def _from_simple_command(words: list[str]) -> list[list[str]]:
    found: list[list[str]] = []
    # Leading NAME=value words set the environment of the command that follows them.
    first = next((i for i, word in enumerate(words) if not _ASSIGNMENT.match(word)), 0)
    for index, word in enumerate(words):
        if " " in word:
            found += sla_daemon_invocations(word)
        elif Path(word).name == "sla-daemon" and (index == first or words[index - 1] == "--"):
            found.append(words[index + 1 :])
            break
    return found

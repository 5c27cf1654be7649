"""``sla-daemon inspect``: how each message of some files is parsed, threaded and classified.

The rows come from the daemon's own code: ``app_exports.inspect_paths`` reads the files and parses
them with the daemon's parser; this module threads the parsed messages with
``core.threads`` (in memory, through ``ThreadMap``, exactly as the service threads them into
the state database, subject fallback included), and judges them with
``core.automated.detect_automated``, ``core.classify.marker_reason`` and, with a
configuration, ``core.classify.classify``. Nothing here opens the state database or the
network.

One row per message, keys in this order:

- ``file``: the file, or ``mbox-file#N`` for the N-th message (from 1) of an mbox;
- ``message_id``: as threaded (a message without one gets the parser's stable hash id);
- ``conversation``: the conversation the daemon would file it under, once all the inspected
  messages are threaded (in arrival order, as the daemon stores a batch);
- ``parent``: the id the message replies to, as its headers say: the In-Reply-To id, else
  the last References id (whether or not that message is among the inspected ones);
- ``from``, ``date`` (the Date header, ISO 8601);
- ``automated`` (true/false), ``automated_kind``, ``automated_reasons``;
- ``action_plan``: the action-plan marker the message carries (the configured markers, or
  the default ones without a configuration), whoever wrote it;
- ``error``: why the file could not be read or parsed (then every other field is null);
- with a configuration, also ``role`` and ``account``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sla_daemon.core.automated import detect_automated
from sla_daemon.core.classify import classify, marker_reason
from sla_daemon.core.model import Markers, MessageFacts, Rules
from sla_daemon.core.threads import ThreadMap, related_ids

FIELDS = (
    "file",
    "message_id",
    "conversation",
    "parent",
    "from",
    "date",
    "automated",
    "automated_kind",
    "automated_reasons",
    "action_plan",
    "error",
)
"""The keys of every row, in order."""

CONFIG_FIELDS = ("role", "account")
"""The keys added when a configuration is given."""


@dataclass(frozen=True)
class Inspected:
    """One message read from a file: its facts, or why it could not be parsed."""

    file: str
    facts: MessageFacts | None = None
    error: str | None = None


def inspect_messages(
    messages: Sequence[Inspected], markers: Markers, rules: Rules | None = None
) -> list[dict[str, Any]]:
    """One row per message of ``messages``, in their order (see the module docstring)."""
    threads = _thread([m.facts for m in messages if m.facts is not None], rules)
    rows = []
    for message in messages:
        row: dict[str, Any] = dict.fromkeys(FIELDS)
        if rules is not None:
            row.update(dict.fromkeys(CONFIG_FIELDS))
        row["file"] = message.file
        facts = message.facts
        if facts is None:
            row["error"] = message.error or "unreadable"
            rows.append(row)
            continue
        verdict = detect_automated(facts)
        relations = related_ids(facts)
        row.update(
            message_id=facts.message_id,
            conversation=threads.conversation_of(facts.message_id),
            parent=relations[0] if relations else None,
            date=facts.date.isoformat() if facts.date else None,
            automated=verdict.is_automated,
            automated_kind=verdict.kind.value if verdict.kind else None,
            automated_reasons=list(verdict.reasons),
            action_plan=marker_reason(facts, markers.action_plan),
        )
        row["from"] = facts.sender.email if facts.sender else None
        if rules is not None:
            verdict_role = classify(facts, rules)
            row["role"] = verdict_role.role.value
            row["account"] = verdict_role.account.name if verdict_role.account else None
        rows.append(row)
    return rows


def _thread(messages: Sequence[MessageFacts], rules: Rules | None) -> ThreadMap:
    """Thread ``messages`` as the daemon stores a batch: by arrival, each id once."""
    threads = ThreadMap()
    stored: set[str] = set()
    for facts in sorted(messages, key=lambda f: (f.arrived_at, f.message_id)):
        if facts.message_id in stored:
            continue  # the same message in another file: stored once
        stored.add(facts.message_id)
        threads.thread(facts, subject_fallback=True, rules=rules)
    return threads


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """One JSON object per line."""
    return "\n".join(json.dumps(row, ensure_ascii=False) for row in rows)


_TABLE_COLUMNS = (
    ("FILE", "file", 32),
    ("MESSAGE-ID", "message_id", 36),
    ("CONVERSATION", "conversation", 12),
    ("PARENT", "parent", 28),
    ("FROM", "from", 28),
    ("DATE", "date", 25),
    ("ROLE", "role", 9),
    ("AUTOMATED", "automated_kind", 18),
    ("ACTION PLAN", "action_plan", 24),
)


def rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A table for people: one line per message, long values shortened.

    The automated reasons and a parse error, which do not fit a column, follow on an
    indented line of their own.
    """
    columns = [c for c in _TABLE_COLUMNS if c[1] != "role" or any("role" in r for r in rows)]
    cells = [[title for title, _, _ in columns]]
    notes: list[list[str]] = [[]]
    for row in rows:
        cells.append([_cell(row.get(key), width, tail=key == "file") for _, key, width in columns])
        extra = []
        if row.get("error"):
            extra.append(f"error: {row['error']}")
        if row.get("automated_reasons"):
            extra.append("automated: " + "; ".join(row["automated_reasons"]))
        if row.get("account"):
            extra.append(f"account: {row['account']}")
        notes.append(extra)
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for line, extra in zip(cells, notes, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        lines += [f"    {note}" for note in extra]
    return "\n".join(lines)


def _cell(value: Any, width: int, *, tail: bool = False) -> str:
    """``value`` in at most ``width`` characters; a file keeps its end (the name)."""
    if value is None:
        return "-"
    text = str(value)
    if len(text) <= width:
        return text
    return "…" + text[1 - width :] if tail else text[: width - 1] + "…"

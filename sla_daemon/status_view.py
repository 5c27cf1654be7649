"""How ``status`` shows conversations: a readable table, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sla_daemon.core.model import ConversationStatus
from sla_daemon.explain_view import ledger_dict
from sla_daemon.units import readable_duration


@dataclass(frozen=True)
class FailedNotice:
    """A notice that could not be delivered to one recipient and will not be retried."""

    key: str
    kind: str
    conversation_id: str
    recipient: str
    decided_at: datetime
    attempts: int
    reply_code: int | None
    error: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_json(
    statuses: Sequence[ConversationStatus],
    as_of: datetime,
    failed: Sequence[FailedNotice] = (),
) -> str:
    """The ``status --json`` document; times are ISO 8601 with their UTC offset.

    ``failed_notices`` lists each delivery that failed for good, with the server's reply.
    """
    document: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "conversations": [
            {
                "id": s.id,
                "account": s.account,
                "subject": s.subject,
                "client": s.client,
                "state": s.state.value,
                "cycle": s.cycle,
                "opened_at": _iso(s.opened_at),
                "acknowledged_at": _iso(s.acknowledged_at),
                "acknowledged_by": s.acknowledged_by.value if s.acknowledged_by else None,
                "first_human_response_at": _iso(s.first_human_response_at),
                "action_plan_at": _iso(s.action_plan_at),
                "acknowledge_due": _iso(s.acknowledge_due),
                "action_plan_due": _iso(s.action_plan_due),
                "breaches": [b.value for b in s.breaches],
                "message_ids": list(s.message_ids),
                "ledger": ledger_dict(s.ledger),
            }
            for s in statuses
        ],
        "failed_notices": [
            {
                "key": f.key,
                "kind": f.kind,
                "conversation_id": f.conversation_id or None,
                "recipient": f.recipient,
                "decided_at": f.decided_at.isoformat(),
                "attempts": f.attempts,
                "reply_code": f.reply_code,
                "error": f.error,
            }
            for f in failed
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _when(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%a %d %b %H:%M") if value else "-"


def _deadline(done: datetime | None, due: datetime | None, now: datetime, zone: tzinfo) -> str:
    """'done 14:05' when met, 'due in 3h' or 'LATE 2h' while open."""
    if due is None:
        return "-"
    if done is not None:
        late = " (late)" if done > due else ""
        return f"done {_when(done, zone)}{late}"
    if now >= due:
        return f"LATE {readable_duration(now - due)}"
    return f"due in {readable_duration(due - now)}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def status_table(
    statuses: Sequence[ConversationStatus],
    as_of: datetime,
    zone: tzinfo,
    failed: Sequence[FailedNotice] = (),
) -> str:
    """A plain-text table for people: one row per conversation, most urgent first.

    Notices that could not be delivered follow in a section of their own.
    """
    header = ("CONVERSATION", "ACCOUNT", "CLIENT", "SUBJECT", "STATE", "OPENED", "ACK", "PLAN")
    rows = [
        (
            s.id,
            s.account or "-",
            _cut(s.client or "-", 28),
            _cut(s.subject or "(no subject)", 34),
            s.state.value + (" !" if s.breaches else ""),
            _when(s.opened_at, zone),
            _deadline(s.acknowledged_at, s.acknowledge_due, as_of, zone),
            _deadline(s.action_plan_at, s.action_plan_due, as_of, zone),
        )
        for s in sorted(statuses, key=lambda s: (not s.breaches, s.action_plan_due or as_of))
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [f"As of {_when(as_of, zone)} ({as_of.astimezone(zone).tzname()})"]
    for row in (header, *rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if not rows:
        lines.append("(no client conversations yet)")
    breached = sum(1 for s in statuses if s.breaches)
    lines.append(f"{len(rows)} conversation(s), {breached} with a missed deadline (marked !)")
    lines.extend(_failed_section(failed, zone))
    return "\n".join(line.rstrip() for line in lines)


def _failed_section(failed: Sequence[FailedNotice], zone: tzinfo) -> list[str]:
    """Lines naming each undelivered notice, its recipient and the server's reply."""
    if not failed:
        return []
    lines = ["", f"FAILED NOTICES ({len(failed)}): not delivered and not retried"]
    for f in failed:
        where = f" in {f.conversation_id}" if f.conversation_id else ""
        lines.append(
            f"  {f.kind} to {f.recipient}{where}, decided {_when(f.decided_at, zone)}, "
            f"{f.attempts} attempt(s): {f.error}"
        )
    lines.append('  See docs/operations.md, "Failed notices".')
    return lines

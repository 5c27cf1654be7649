"""The variables of a notice template, built from a decision and what is known around it.

:func:`notice_context` documents every variable; docs/notices.md repeats the list for
operators who override the templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sla_daemon.adapters.notice_headers import sanitize_header_text
from sla_daemon.adapters.render_env import format_local_time
from sla_daemon.core.classify import classify, courtesy_reason, new_text
from sla_daemon.core.ledger import Step
from sla_daemon.core.model import (
    Account,
    AcknowledgedBy,
    ClockName,
    ConversationStatus,
    Decision,
    MarkerSet,
    MessageFacts,
    NoticeKind,
    Role,
    Rules,
    Team,
)
from sla_daemon.units import readable_duration

QUOTE_MAX_LINES = 8
"""Lines of the client's latest message quoted in an escalation."""
QUOTE_MAX_CHARS = 600
"""Characters of the client's latest message quoted in an escalation."""

_CLOCK_LABELS = {
    ClockName.ACKNOWLEDGE: "acknowledgement",
    ClockName.ACTION_PLAN: "action plan",
}
_CLOCK_DESCRIPTIONS = {
    ClockName.ACKNOWLEDGE: "acknowledge the client's email",
    ClockName.ACTION_PLAN: "send findings and an action plan",
}
# What the client was promised, in words written to the client.
_CLIENT_PROMISES = {
    ClockName.ACKNOWLEDGE: "a reply to your email",
    ClockName.ACTION_PLAN: "our findings and an action plan",
}
# The shipped default body pattern, said the way a person would do it.
_KNOWN_PATTERNS = {
    r"(?im)^\s*action plan\s*:": 'start a line of the reply with "Action plan:"',
}


def marker_steps(markers: MarkerSet) -> list[str]:
    """Each configured way to put ``markers`` on a team message, as an instruction."""
    steps = [f'put "{tag}" in the subject' for tag in markers.subject_tags]
    steps += [f"set the IMAP keyword {k} on the sent message" for k in markers.imap_keywords]
    steps += [
        _KNOWN_PATTERNS.get(p, f"write a line matching the pattern {p} in the reply")
        for p in markers.body_patterns
    ]
    steps += [f'add the header "{h}: yes"' for h in markers.headers]
    return steps


def client_words(
    history: Sequence[MessageFacts],
    status: ConversationStatus,
    rules: Rules | None,
    fallback: MessageFacts | None,
    now: datetime,
) -> tuple[MessageFacts | None, list[str], bool]:
    """The client's latest message of the current cycle and its first lines.

    Courtesy replies ("thanks!") are passed over: they say nothing about the request.
    Returns the message (``fallback``, the opening message, when the history has none),
    its first lines (quoted text and trailing blank lines dropped, at most
    ``QUOTE_MAX_LINES`` lines and ``QUOTE_MAX_CHARS`` characters) and whether it was cut.
    """
    latest = fallback
    for facts in history:
        if facts.arrived_at > now:
            continue
        if status.opened_at is not None and facts.arrived_at < status.opened_at:
            continue
        if not _is_client(facts, status, rules):
            continue
        if rules is not None and courtesy_reason(facts, rules.markers.courtesy):
            continue
        if latest is None or facts.arrived_at >= latest.arrived_at:
            latest = facts
    if latest is None:
        return None, [], False
    lines: list[str] = []
    for raw in new_text(latest.body_text).splitlines():
        line = _printable(raw).rstrip()
        if line or (lines and lines[-1]):  # no leading blank lines, no runs of them
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    kept: list[str] = []
    size = written = 0
    for line in lines:
        # Blank lines are kept as they were but count towards neither limit.
        if line and (written == QUOTE_MAX_LINES or size + len(line) > QUOTE_MAX_CHARS):
            if not kept:  # one endless line: show its beginning
                kept.append(line[:QUOTE_MAX_CHARS])
            break
        kept.append(line)
        size += len(line)
        written += 1 if line else 0
    cut = len(kept) < len(lines) or (bool(kept) and kept[-1] != lines[len(kept) - 1])
    while kept and not kept[-1]:
        kept.pop()
    return latest, kept, cut


def _is_client(facts: MessageFacts, status: ConversationStatus, rules: Rules | None) -> bool:
    if rules is not None:
        return classify(facts, rules).role is Role.CLIENT
    return facts.sender is not None and facts.sender.email == status.client


def _printable(line: str) -> str:
    """A line of client text with control characters (escape sequences) removed."""
    if line.isprintable():  # nearly every line: checked in C, kept as it is
        return line
    return "".join(c for c in line if c == "\t" or c.isprintable())


def acknowledgement(
    status: ConversationStatus, history: Sequence[MessageFacts], zone: tzinfo
) -> tuple[str | None, str | None]:
    """When the client was acknowledged and by whom: ``(at, by)``, both None if not yet.

    ``by`` is ``automatically (auto-ack)`` or the team member who replied first, with the
    name from their message when it is stored.
    """
    if status.acknowledged_at is None:
        return None, None
    at = format_local_time(status.acknowledged_at, zone)
    if status.acknowledged_by is AcknowledgedBy.AUTO:
        return at, "automatically (auto-ack)"
    stopped = None
    if status.ledger is not None and status.ledger.cycles:
        clocks = status.ledger.cycles[-1].clocks
        segments = clocks[0].segments if clocks else ()
        stopped = next((s for s in segments if s.step is Step.STOPPED), None)
    if stopped is not None and stopped.message_id is not None:
        for facts in history:
            if facts.message_id == stopped.message_id and facts.sender is not None:
                name = sanitize_header_text(facts.sender.name, limit=100)
                return at, f"{name} <{facts.sender.email}>" if name else facts.sender.email
    if stopped is not None and stopped.sender:
        return at, stopped.sender
    return at, "a team member"


def notice_context(
    decision: Decision,
    status: ConversationStatus,
    trigger: MessageFacts | None,
    account: Account | None,
    now: datetime,
    team: Team,
    zone: tzinfo,
    *,
    history: Sequence[MessageFacts] = (),
    rules: Rules | None = None,
) -> dict[str, Any]:
    """Build the variables every notice template receives (one plain dict).

    Times are strings already formatted in the account's time zone, e.g.
    ``Tue 10 Mar 2026 14:05 CET (UTC+01:00)``; durations read like ``1d 2h`` or ``45m``.
    Variables that do not apply are ``None`` (test them with ``{% if ... %}``); lists
    that do not apply are empty. docs/notices.md describes each variable.
    """
    sender = trigger.sender if trigger is not None else None
    client_email = sender.email if sender is not None else (status.client or "")
    client_name = sanitize_header_text(sender.name) if sender is not None else ""
    client = f"{client_name} <{client_email}>" if client_name else client_email

    due_at = decision.due_at
    if due_at is None and decision.clock is ClockName.ACKNOWLEDGE:
        due_at = status.acknowledge_due
    elif due_at is None and decision.clock is ClockName.ACTION_PLAN:
        due_at = status.action_plan_due

    due_in = late_by = first_escalated_at = None
    if decision.kind in (NoticeKind.FOLLOW_UP, NoticeKind.CHECK_IN):
        due_at = None  # the moment a reminder fell due is no deadline of the client's
    elif due_at is not None and decision.kind is NoticeKind.WARNING:
        due_in = readable_duration(due_at - now)
    elif due_at is not None and decision.kind is NoticeKind.BREACH:
        late_by = readable_duration(now - due_at)
        first_escalated_at = due_at + _second_level_after(decision, rules, account)

    opened_at = status.opened_at or (trigger.arrived_at if trigger is not None else None)
    account_name = account.name if account is not None else (status.account or "(no account)")
    subject = status.subject or (trigger.subject if trigger is not None else "")
    quiet_since = decision.quiet_since
    quiet_for = None
    if quiet_since is not None and decision.due_at is not None:
        quiet_for = readable_duration(decision.due_at - quiet_since)
    words_message, words, words_cut = client_words(history, status, rules, trigger, now)
    words_sender = words_message.sender if words_message is not None else None
    acknowledged_at, acknowledged_by = acknowledgement(status, history, zone)
    markers = rules.markers if rules is not None else None
    return {
        "kind": str(decision.kind),
        "team_name": team.name,
        "team_address": team.from_address.email,
        "account_name": account_name,
        "account_owner": account.owner if account is not None else None,
        "escalate_to": list(account.escalate_to) if account is not None else [],
        "client_name": client_name,
        "client_email": client_email,
        "client": client,
        "subject": sanitize_header_text(subject, limit=1000) or "(no subject)",
        "arrived_at": format_local_time(opened_at, zone) if opened_at else None,
        "acknowledged_at": acknowledged_at,
        "acknowledged_by": acknowledged_by,
        "client_words": words,
        "client_words_cut": words_cut,
        "client_words_at": (
            format_local_time(words_message.arrived_at, zone) if words_message else None
        ),
        "client_words_from": (
            sanitize_header_text(words_sender.name or words_sender.email, limit=100)
            if words_sender
            else None
        ),
        "clock": str(decision.clock) if decision.clock is not None else None,
        "clock_label": _CLOCK_LABELS.get(decision.clock) if decision.clock else None,
        "deadline_description": (
            _CLOCK_DESCRIPTIONS.get(decision.clock) if decision.clock else None
        ),
        "client_promise": _CLIENT_PROMISES.get(decision.clock) if decision.clock else None,
        "due_at": format_local_time(due_at, zone) if due_at is not None else None,
        "due_in": due_in,
        "late_by": late_by,
        "first_escalated_at": (
            format_local_time(first_escalated_at, zone) if first_escalated_at else None
        ),
        "repetition": decision.reminder,
        "is_reminder": decision.reminder > 0,
        "level": decision.level,
        "conversation_id": decision.conversation_id,
        "cycle": decision.cycle,
        "explain_command": f"sla-daemon explain {decision.conversation_id}",
        "action_plan_steps": marker_steps(markers.action_plan) if markers else [],
        "waiting_steps": marker_steps(markers.waiting_on_client) if markers else [],
        "recipients": list(decision.recipients),
        "quiet_since": format_local_time(quiet_since, zone) if quiet_since else None,
        "quiet_for": quiet_for,
        "now": format_local_time(now, zone),
        "timezone": str(zone),
    }


def _second_level_after(
    decision: Decision, rules: Rules | None, account: Account | None
) -> timedelta:
    """How long after the due time a breach of ``decision``'s level was first sent."""
    if decision.level != "breach-2" or rules is None or account is None:
        return timedelta(0)
    policy = rules.policies.get(account.policy)
    if policy is None or policy.second_level is None:
        return timedelta(0)
    return policy.second_level.after

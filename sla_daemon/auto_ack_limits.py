"""Loop protection beyond one conversation: the per-sender cap, and why mail went unanswered.

The engine suppresses an auto-ack for what one conversation shows (a team reply, an old
message, a reply address of ours), and automated mail never opens a conversation at all.
What needs the outbox's history is decided here, before a decision is recorded: at most
``auto_ack_per_sender_per_day`` auto-acks to one address in any 24 hours, so two
auto-responders that slip past every other rule still stop after a few rounds.

Every reason is also given a short, stable code, counted per cycle in the report's
``suppressed_by_reason`` (for logs and metrics); the full reason stays in the outbox and
the log line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from sla_daemon.core.automated import detect_automated
from sla_daemon.core.model import Decision, FolderKind, MessageFacts, NoticeKind, Role

log = structlog.get_logger(__name__)

CAP_WINDOW = timedelta(hours=24)
"""The span the per-sender cap counts over."""

CAP_REASON = "per-sender cap"
"""How the reason of an auto-ack held back by the cap starts."""

DISABLED_REASON = "auto-acks are disabled"
"""How the reason starts when the cap is 0."""

# Reason text (its start) -> code. The engine's reasons are matched by their opening
# words; tests/unit/test_auto_ack_limits.py checks that each known reason has a code.
REASON_CODES: tuple[tuple[str, str], ...] = (
    ("a team member has already replied", "team_replied"),
    ("the message is older than auto_ack_max_age", "too_old"),
    ("the reply address", "our_address"),
    (CAP_REASON, "sender_cap"),
    (DISABLED_REASON, "auto_ack_disabled"),
    ("already past due when first seen", "in_summary"),
)


class AutoAckHistory(Protocol):
    """The outbox's record of auto-acks (``adapters.store_limits``)."""

    def auto_acks_to(self, address: str, since: datetime, until: datetime) -> int:
        """Auto-acks to ``address`` decided in ``(since, until]`` that were not suppressed."""
        ...


def reason_code(reason: str) -> str:
    """The short code of a suppression reason; ``other`` for a reason not listed."""
    for start, code in REASON_CODES:
        if reason.startswith(start):
            return code
    return "other"


def apply_sender_cap(
    decision: Decision, history: AutoAckHistory, limit: int, now: datetime
) -> Decision:
    """``decision``, suppressed when its recipient already had ``limit`` auto-acks.

    Only an auto-ack that is still to be sent is checked; the count covers the 24 hours
    before ``now`` and compares addresses without regard to case. The recipient is the
    address the auto-ack goes to (the Reply-To when the message had one).
    """
    if decision.kind is not NoticeKind.AUTO_ACK or decision.suppressed_reason is not None:
        return decision
    if limit <= 0:
        reason = f"{DISABLED_REASON} (notices.auto_ack_per_sender_per_day: 0)"
        return replace(decision, suppressed_reason=reason)
    recipient = decision.recipients[0]
    already = history.auto_acks_to(recipient, now - CAP_WINDOW, now)
    if already < limit:
        return decision
    reason = (
        f"{CAP_REASON}: {recipient} already had {already} auto-acks in the last 24 hours "
        f"(notices.auto_ack_per_sender_per_day: {limit})"
    )
    return replace(decision, suppressed_reason=reason)


def count_suppression(counts: Counter[str], reason: str | None, times: int = 1) -> None:
    """Count a suppressed notice under its reason's code (nothing for one to be sent)."""
    if reason is not None:
        counts[reason_code(reason)] += times


def inbound_reason(facts: MessageFacts, role: Role) -> str | None:
    """The code saying why received mail gets no auto-ack, or None when it may get one.

    Only mail in an inbox folder is judged (the team's sent mail is never a request).
    Automated mail is named by the detector's kind (``auto_reply``, ``bounce``, ``list``,
    ``own_notice`` ...); mail from the team or from an address of ours is ``team_sender``.
    """
    if facts.folder_kind is not FolderKind.INBOX:
        return None
    if role is Role.AUTOMATED:
        kind = detect_automated(facts).kind
        return kind.value if kind is not None else "no_sender"
    if role is Role.TEAM:
        return "team_sender"
    return None


def note_inbound(counts: Counter[str], facts: MessageFacts, role: Role, detail: str) -> None:
    """Log and count a newly stored inbox message that will not be auto-acked, and why."""
    code = inbound_reason(facts, role)
    if code is None:
        return
    counts[code] += 1
    log.info(
        "auto_ack.not_due",
        message_id=facts.message_id,
        sender=facts.sender.email if facts.sender else None,
        reason=code,
        detail=detail,
    )

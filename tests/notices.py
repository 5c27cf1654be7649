"""Notices put straight into a real outbox, for tests of their delivery."""

from __future__ import annotations

from datetime import UTC, datetime

from sla_daemon.adapters.render_batch import BatchingNoticeRenderer
from sla_daemon.adapters.store import Store
from sla_daemon.core.model import (
    Address,
    ClockName,
    ConversationState,
    ConversationStatus,
    Decision,
    NoticeKind,
    Team,
)

TEAM = Team(
    name="Acme Services",
    from_address=Address("support@acme.example", "Acme Support"),
    domains=("acme.example",),
)
OWNER = "alice@acme.example"
LEAD = "lead@acme.example"


def renderer() -> BatchingNoticeRenderer:
    """The shipped templates, times in Berlin."""
    return BatchingNoticeRenderer(None, TEAM, "Europe/Berlin")


def queue_notice(
    store: Store,
    key: str,
    kind: NoticeKind,
    recipients: tuple[str, ...],
    decided_at: datetime,
    subject: str = "Checkout page fails",
) -> str:
    """Render a notice of ``kind`` and record it in the outbox; return its Message-ID."""
    opened = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    status = ConversationStatus(
        id=f"conv-{key}",
        account="Globex",
        subject=subject,
        client="jane@globex.example",
        state=ConversationState.AWAITING_ACTION_PLAN,
        opened_at=opened,
        cycle=1,
        acknowledged_at=None,
        acknowledged_by=None,
        first_human_response_at=None,
        action_plan_at=None,
        acknowledge_due=None,
        action_plan_due=None,
        breaches=(),
        message_ids=("<m1@globex.example>",),
    )
    decision = Decision(
        key=key,
        kind=kind,
        conversation_id=f"conv-{key}",
        cycle=1,
        recipients=recipients,
        clock=ClockName.ACTION_PLAN,
        level="breach-1" if kind is NoticeKind.BREACH else "warn-14400s",
        due_at=decided_at,
    )
    message = renderer().render(decision, status, None, None, decided_at)
    message_id = str(message["Message-ID"])
    with store.transaction():
        store.decide(
            key,
            decision.conversation_id,
            kind,
            recipients,
            decided_at,
            payload=message.as_bytes(),
            message_id=message_id,
        )
    return message_id

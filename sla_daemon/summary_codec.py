"""A conversation's stored summary, and the encoding of what it keeps.

A summary is what a start needs of a conversation that nothing changed since its last
evaluation: its next check time, its headline (for the metrics and check-ins), its
account contacts (for the check-ins) and its status, encoded as orjson without the
ledger (an explanation, rebuilt by ``explain``). The status is decoded only when asked
for, so a start over many conversations builds none it does not show.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson

from sla_daemon.core.aftercare import AccountContact
from sla_daemon.core.model import (
    AcknowledgedBy,
    ClockName,
    ClockStatus,
    ConversationState,
    ConversationStatus,
    Headline,
)


class ConversationSummary(NamedTuple):
    """One row of ``conversation_summaries``: a conversation as its last evaluation left it.

    A named tuple: a start reads one per stored conversation.
    """

    conversation_id: str
    rules: str
    """The fingerprint of the rules it was evaluated under (``rules_fingerprint``)."""
    evaluated_at: datetime
    check_at: datetime | None
    """When it must be evaluated again without new mail (None: never)."""
    headline: Headline
    status: bytes
    """``encode_status`` of its status."""
    contacts: bytes
    """``encode_contacts`` of its account contacts."""


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _required_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def encode_status(status: ConversationStatus) -> bytes:
    """The status as orjson, every field but the ledger."""
    return orjson.dumps(
        [
            status.id,
            status.account,
            status.subject,
            status.client,
            status.state,
            status.opened_at,
            status.cycle,
            status.acknowledged_at,
            status.acknowledged_by,
            status.first_human_response_at,
            status.action_plan_at,
            status.acknowledge_due,
            status.action_plan_due,
            status.breaches,
            status.message_ids,
            status.opening_message_id,
            [[c.name, c.started_at, c.due_at, c.stopped_at, c.breached] for c in status.clocks],
        ]
    )


def decode_status(blob: bytes) -> ConversationStatus:
    """The status ``encode_status`` encoded (its ledger is None)."""
    fields: list[Any] = orjson.loads(blob)
    (
        conversation_id,
        account,
        subject,
        client,
        state,
        opened_at,
        cycle,
        acknowledged_at,
        acknowledged_by,
        first_human_response_at,
        action_plan_at,
        acknowledge_due,
        action_plan_due,
        breaches,
        message_ids,
        opening_message_id,
        clocks,
    ) = fields
    return ConversationStatus(
        id=conversation_id,
        account=account,
        subject=subject,
        client=client,
        state=ConversationState(state),
        opened_at=_time(opened_at),
        cycle=cycle,
        acknowledged_at=_time(acknowledged_at),
        acknowledged_by=AcknowledgedBy(acknowledged_by) if acknowledged_by else None,
        first_human_response_at=_time(first_human_response_at),
        action_plan_at=_time(action_plan_at),
        acknowledge_due=_time(acknowledge_due),
        action_plan_due=_time(action_plan_due),
        breaches=tuple(ClockName(name) for name in breaches),
        message_ids=tuple(message_ids),
        opening_message_id=opening_message_id,
        clocks=tuple(
            ClockStatus(
                ClockName(name), _required_time(started), _required_time(due), _time(stopped), hit
            )
            for name, started, due, stopped, hit in clocks
        ),
    )


def encode_contacts(contacts: dict[str, AccountContact]) -> bytes:
    """A conversation's account contacts as orjson."""
    return orjson.dumps([[c.account, c.first_client_at, c.last_team_at] for c in contacts.values()])


def decode_contacts(blob: bytes) -> dict[str, AccountContact]:
    """The contacts ``encode_contacts`` encoded, by account."""
    rows: list[list[Any]] = orjson.loads(blob)
    return {
        account: AccountContact(account, _required_time(first), _time(last))
        for account, first, last in rows
    }

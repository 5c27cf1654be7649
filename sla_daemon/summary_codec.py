"""A conversation's stored summary, and the encoding of what it keeps.

A summary is what a start needs of a conversation that nothing changed since its last
evaluation: its next check time, its headline (for the metrics and check-ins), its
account contacts (for the check-ins) and its status, encoded as orjson without the
ledger (an explanation, rebuilt by ``explain``). ``StoredEvaluation`` is the evaluation
a start keeps from a summary: its status is decoded only when asked for, so a start over
many conversations builds none it does not show.
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
    Evaluation,
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


class StoredEvaluation(Evaluation):
    """A conversation's evaluation kept from its summary, with no decision to take.

    The status is decoded from the summary when first asked for, and kept; the headline
    is the summary's.
    """

    _summary: ConversationSummary
    _decoded: ConversationStatus | None = None

    def __init__(self, summary: ConversationSummary) -> None:
        # Frozen like its base: the one attribute is set here, past its __setattr__. A
        # start makes one per conversation, so everything else is read from the summary
        # (``decisions`` is the base's class default, no decision to take).
        self.__dict__["_summary"] = summary

    @property  # the base's field, read from the summary here
    def next_check_at(self) -> datetime | None:
        """The summary's check time."""
        return self._summary.check_at

    @property
    def status(self) -> ConversationStatus:
        """The summary's status (its ledger is None: ``explain`` evaluates afresh)."""
        decoded = self._decoded
        if decoded is None:
            decoded = decode_status(self._summary.status)
            self.__dict__["_decoded"] = decoded
        return decoded

    @property
    def headline(self) -> Headline:
        """The summary's headline, without decoding the status."""
        return self._summary.headline

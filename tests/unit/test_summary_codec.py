"""The encoding of a conversation summary's status and contacts, on plain values."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sla_daemon.core.aftercare import AccountContact
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    AcknowledgedBy,
    Address,
    ClockName,
    ConversationState,
    ConversationStatus,
    MessageFacts,
)
from sla_daemon.summary_codec import (
    decode_contacts,
    decode_status,
    encode_contacts,
    encode_status,
)
from tests.unit.builders import NOW, client_mail, rules, team_reply


def _status(history: list[MessageFacts]) -> ConversationStatus:
    return evaluate("c-1", history, rules(), {}, NOW).status


def test_engine_statuses_come_back_equal() -> None:
    """decode(encode(status)) equals the engine's status, whatever its state.

    Open, breached, planned, waiting, and mail that promises nothing (None fields, clocks,
    breaches and message ids).
    """
    newsletter = replace(client_mail("n", 1), sender=Address("news@vendor.example"))
    histories = [
        [client_mail("m", 0.5)],
        [client_mail("m", 60)],
        [client_mail("m", 10), team_reply("p", 9, "m", body="Action plan: refund Monday.")],
        [client_mail("m", 10), team_reply("w", 9, "m", keywords=("$WaitingOnClient",))],
        [newsletter],
    ]
    statuses = [_status(history) for history in histories]
    assert {s.state for s in statuses} >= {
        ConversationState.AWAITING_ACK,
        ConversationState.ACTION_PLAN_SENT,
        ConversationState.WAITING_ON_CLIENT,
    }
    assert ClockName.ACKNOWLEDGE in statuses[1].breaches
    assert statuses[4].opened_at is None and statuses[0].clocks
    for status in statuses:
        decoded = decode_status(encode_status(status))
        assert decoded == status
        assert decoded.ledger is None


def test_an_acknowledged_status_keeps_who_acknowledged() -> None:
    """The acknowledgement's kind and time survive the encoding."""
    status = replace(
        _status([client_mail("m", 2)]),
        acknowledged_at=NOW - timedelta(hours=1),
        acknowledged_by=AcknowledgedBy.HUMAN,
    )
    assert decode_status(encode_status(status)) == status


def test_contacts_come_back_equal() -> None:
    """Contacts with and without a team message, and none at all, survive the encoding."""
    contacts = {
        "Globex": AccountContact("Globex", NOW - timedelta(days=3), NOW - timedelta(days=1)),
        "Initech": AccountContact("Initech", NOW - timedelta(days=2), None),
    }
    assert decode_contacts(encode_contacts(contacts)) == contacts
    assert decode_contacts(encode_contacts({})) == {}

"""Message facts survive the trip through their stored JSON unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sla_daemon.adapters.factsjson import facts_from_json, facts_to_json
from sla_daemon.core.model import Address, FolderKind, MessageFacts


def _facts(subject: str, body: str) -> MessageFacts:
    return MessageFacts(
        message_id="m1@globex.example",
        arrived_at=datetime(2026, 11, 24, 9, 30, 15, 250, tzinfo=UTC),
        subject=subject,
        sender=Address("jörg@globex.example", "Jörg Müller"),
        to=(Address("support@acme.example", "Acme Support"),),
        cc=(Address("ops@acme.example", ""),),
        in_reply_to="m0@acme.example",
        references=("m0@acme.example",),
        date=datetime(2026, 11, 24, 10, 30, tzinfo=UTC),
        headers=(("content-type", "text/plain; charset=utf-8"),),
        keywords=("$ActionPlan",),
        body_text=body,
        mailbox="support",
        folder="Sent",
        folder_kind=FolderKind.SENT,
    )


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Export stopped", 'Plain text,\nwith "quotes" and \\ backslashes.\n'),
        ("Grüße — 故障 🚒", "Zeile eins\r\n\tTab und\u2028Trenner\x00Null\n"),
        # A broken charset can leave lone surrogates; they are kept, not refused.
        ("Broken \udc80 subject", "body \udcff end"),
    ],
)
def test_facts_round_trip_whatever_the_text_holds(subject: str, body: str) -> None:
    """Decoding what was encoded gives equal facts, non-ASCII and lone surrogates included."""
    facts = _facts(subject, body)
    stored = facts_to_json(facts)
    stored.encode("utf-8")  # what SQLite will be given: valid UTF-8
    assert facts_from_json(stored) == facts


def test_facts_written_by_the_standard_library_are_still_read() -> None:
    """A database written before (``json``, non-ASCII as is) reads the same facts."""
    facts = _facts("Grüße", "Hallo\n")
    older = json.dumps(json.loads(facts_to_json(facts)), ensure_ascii=False)
    assert facts_from_json(older) == facts

"""Mutated mail through the parser: facts, or a quarantine reason, and nothing else.

Seeds are well-formed messages built here (always) and the real messages of the shared
corpora (``corpus``, when ``../shared/corpora`` exists); hypothesis flips, cuts,
duplicates and splices hostile tokens (boundaries, encoded words, blank lines, NULs,
8-bit bytes) into them. Every result that parses must also thread and evaluate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import FolderKind, MessageFacts
from sla_daemon.core.threads import ThreadMap
from tests.mailbuild import build_mail
from tests.unit.builders import NOW, client_mail, rules
from tests.unit.test_corpus_parsing import corpus_messages

MAX_BODY = 4096

TOKENS = [
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"=?utf-8?B?",
    b"=?x-unknown?Q?=FF?=",
    b"?=",
    b"--",
    b'Content-Type: multipart/mixed; boundary="b"\r\n',
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"\r\n--b\r\n",
    b"\r\n--b--\r\n",
    b"charset=",
    b"<",
    b">",
    b"@",
    b",",
    b'"',
    b"\t",
    b" :",
    b"Message-ID: <dup@x>\r\n",
    b"References: " + b"<r@x> " * 50 + b"\r\n",
    b"=\r\n",
    b"=ZZ",
]


def _seed_messages() -> list[bytes]:
    at = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    plain = build_mail(
        "p@globex.example", sender="Dana <dana@globex.example>", subject="Help", at=at
    )
    reply = build_mail(
        "r@acme.example",
        sender="Bob <bob@acme.example>",
        to="dana@globex.example",
        subject="Re: Help",
        body="Action plan: restart\n\n> old words",
        at=at,
        parent="p@globex.example",
    )
    rich = EmailMessage()
    rich["From"] = "=?utf-8?q?J=C3=BCrgen?= <j@globex.example>"
    rich["To"] = "support@acme.example"
    rich["Subject"] = "Überweisung fehlgeschlagen \u2013 払い戻し"
    rich["Message-ID"] = "<rich@globex.example>"
    rich.set_content("Hallo,\nes geht nicht.\n")
    rich.add_alternative("<p>Hallo, <b>es geht nicht</b>.</p>", subtype="html")
    rich.add_attachment(bytes(range(256)) * 8, maintype="application", subtype="pdf")
    return [plain.as_bytes(), reply.as_bytes(), rich.as_bytes()]


SEEDS = _seed_messages()

_MUTATION = st.tuples(
    st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]),
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=400),
    st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=16)),
)


def mutate(raw: bytes, mutations: list[tuple[str, int, int, bytes]]) -> bytes:
    """Apply each ``(operation, position, length, payload)`` to ``raw`` in turn."""
    data = bytearray(raw)
    for operation, position, length, payload in mutations:
        at = position % (len(data) + 1)
        if operation == "flip" and at < len(data):
            data[at] ^= 1 << (length % 8)
        elif operation == "delete":
            del data[at : at + length]
        elif operation == "insert":
            data[at:at] = payload * (1 + length % 4)
        elif operation == "duplicate":
            data[at:at] = data[at : at + length]
        elif operation == "truncate":
            del data[at:]
    return bytes(data)


def _parse(raw: bytes, index: int = 0) -> MessageFacts:
    return parse_message(
        raw,
        mailbox="support",
        folder="INBOX",
        folder_kind=FolderKind.INBOX,
        internaldate=NOW - timedelta(minutes=index),
        max_body_bytes=MAX_BODY,
        now=NOW,
    )


def check_facts_or_reason(raw: bytes) -> MessageFacts | None:
    """Parse ``raw``: facts that thread and evaluate, or MalformedMessage with a reason."""
    try:
        facts = _parse(raw)
    except MalformedMessage as exc:
        assert exc.reason.strip()
        assert len(exc.reason) < 500
        return None
    assert facts.message_id
    assert len(facts.body_text.encode("utf-8")) <= MAX_BODY
    for text in (facts.subject, facts.body_text, facts.message_id, *facts.references):
        text.encode("utf-8")  # storable: no lone surrogates
    opening = client_mail("opening@globex.example", hours_ago=2)
    threads = ThreadMap()
    for message in (opening, facts):
        threads.thread(message, rules=rules())
    conversation = threads.conversation_of(facts.message_id)
    assert conversation is not None
    evaluate(conversation, [opening, facts], rules(), {}, NOW)
    return facts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(_MUTATION, min_size=1, max_size=8))
@example(seed=SEEDS[2], mutations=[("insert", 0, 3, b"\r\n\r\n")])
@example(
    seed=SEEDS[2],
    mutations=[("insert", 10**9, 200, b'Content-Type: multipart/mixed; boundary="b"\r\n')],
)
def test_mutated_messages_give_facts_or_a_quarantine_reason(
    seed: bytes, mutations: list[tuple[str, int, int, bytes]]
) -> None:
    """A built message mutated in up to eight places parses (and threads) or is refused."""
    check_facts_or_reason(mutate(seed, mutations))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=4000))
def test_random_bytes_give_facts_or_a_quarantine_reason(raw: bytes) -> None:
    """Random bytes parse (and thread) or are refused with a reason."""
    check_facts_or_reason(raw)


@pytest.fixture(scope="module")
def corpus(corpora_dir: Path) -> list[bytes]:
    """The raw corpus messages, the seeds of the mutations."""
    return [raw for _, raw in corpus_messages(corpora_dir)]


@pytest.mark.corpus
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), mutations=st.lists(_MUTATION, min_size=1, max_size=8))
def test_mutated_corpus_messages_give_facts_or_a_quarantine_reason(
    corpus: list[bytes], data: st.DataObject, mutations: list[tuple[str, int, int, bytes]]
) -> None:
    """A real message from the corpora, mutated in up to eight places, parses or is refused."""
    seed = corpus[data.draw(st.integers(min_value=0, max_value=len(corpus) - 1), label="seed")]
    check_facts_or_reason(mutate(seed, mutations))

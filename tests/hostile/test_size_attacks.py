"""Size attacks on the parser, the threader, the engine and the notices, in memory.

A 100 MB message, 200 and 5,000 levels of MIME nesting, 5,000 recipients in To and Cc,
a 1 MB subject and a 10,000-message thread: each is handled with bounded memory (peak
allocations measured with tracemalloc), without a RecursionError, and gives facts, a
quarantine reason, one conversation or a valid notice. The same attacks through a real
Dovecot are in ``test_big_message_cycle.py``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from sla_daemon.adapters.mailparse import SUBJECT_LIMIT, MalformedMessage, parse_message
from sla_daemon.adapters.notice_headers import HEADER_TEXT_LIMIT
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import FolderKind, MessageFacts, NoticeKind
from sla_daemon.core.threads import ThreadMap
from tests.unit.builders import NOW, client_mail, rules, team_reply
from tests.unit.test_notice_wire import ALL_SAMPLES, _strict, _world

MiB = 1024 * 1024
T = TypeVar("T")


def _parse(raw: bytes) -> MessageFacts:
    return parse_message(
        raw,
        mailbox="support",
        folder="INBOX",
        folder_kind=FolderKind.INBOX,
        internaldate=None,
        now=datetime(2030, 1, 1, tzinfo=UTC),
    )


def _peak(work: Callable[[], T]) -> tuple[T, int]:
    """Run ``work``; return its result and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


_HEAD = (
    b"From: Dana <dana@globex.example>\r\nTo: support@acme.example\r\n"
    b"Message-ID: <attack@globex.example>\r\nMIME-Version: 1.0\r\n"
)


def test_a_100_mb_message_is_parsed_from_a_bounded_prefix() -> None:
    """100 MB of text: the body is cut to max_body_bytes and the parse allocates < 40 MB."""
    line = b"y" * 76 + b"\r\n"
    raw = _HEAD + b"Subject: big\r\nContent-Type: text/plain\r\n\r\n" + line * (100 * MiB // 78)
    facts, peak = _peak(lambda: _parse(raw))
    assert facts.subject == "big"
    assert len(facts.body_text.encode()) <= 256 * 1024
    assert peak < 40 * MiB


def _nested(depth: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--" % level for level in reversed(range(depth)))
    return (
        _HEAD
        + b"Subject: nested\r\n"
        + opening
        + b"Content-Type: text/plain\r\n\r\nthe words at the bottom"
        + closing
        + b"\r\n"
    )


def test_200_levels_of_mime_nesting_are_parsed_down_to_the_text() -> None:
    """200 nested multiparts: no RecursionError, and the innermost text is the body."""
    facts = _parse(_nested(200))
    assert facts.body_text.strip() == "the words at the bottom"


def test_5000_levels_of_mime_nesting_are_quarantined_with_a_reason() -> None:
    """5,000 nested multiparts exceed the parser's stack: MalformedMessage, nothing else."""
    with pytest.raises(MalformedMessage) as caught:
        _parse(_nested(5000))
    assert "nesting too deep" in caught.value.reason


def test_5000_recipients_in_to_and_cc_are_all_read_in_bounded_memory() -> None:
    """5,000 addresses in To and 5,000 in Cc: all kept, lower-cased, in under 64 MB."""
    addresses = ", ".join(f"User {n} <User{n}@Client{n % 50}.example>" for n in range(5000))
    raw = _HEAD + f"Subject: many\r\nTo: {addresses}\r\nCc: {addresses}\r\n\r\nhello\r\n".encode()
    facts, peak = _peak(lambda: _parse(raw))
    assert len(facts.cc) == 5000
    assert facts.cc[4999].email == "user4999@client49.example"
    assert len(facts.to) == 5001  # the support address of the header block, and the 5,000
    assert peak < 64 * MiB


def test_a_1_mb_subject_is_cut_by_the_parser() -> None:
    """A 1 MB subject is kept to its first SUBJECT_LIMIT characters, in bounded memory."""
    raw = _HEAD + b"Subject: " + b"Refund " * (MiB // 7) + b"\r\n\r\nhello\r\n"
    facts, peak = _peak(lambda: _parse(raw))
    assert facts.subject == ("Refund " * SUBJECT_LIMIT)[:SUBJECT_LIMIT]
    # The header block is over the parser's 1 MiB header budget: it is cut there, so
    # the body is lost, but the fields before the subject are read.
    assert facts.message_id == "attack@globex.example"
    assert peak < 32 * MiB


def test_a_1_mb_subject_gives_every_notice_one_short_header() -> None:
    """A 1 MB subject (as an older store may hold): the client's and the team's notices.

    They parse strictly, wire lines stay within RFC 5322's 998, and the Subject header
    holds at most HEADER_TEXT_LIMIT characters of the client's subject. (Every kind with
    hostile subjects up to 2,000 characters: tests/unit/test_notice_wire.py.)
    """
    subject = "Refund " * (MiB // 7)
    for name, sample in ALL_SAMPLES:
        if name not in (NoticeKind.AUTO_ACK, NoticeKind.WARNING, NoticeKind.BREACH):
            continue  # each kind costs seconds here: the classifier reads the whole subject
        assert callable(sample)
        message = _strict(sample(_world(subject)))
        wire = message.as_bytes()
        assert max(len(line) for line in wire.splitlines()) <= 998, name
        decoded = str(message["Subject"])
        assert len(decoded) <= HEADER_TEXT_LIMIT + 80, name
        if name is NoticeKind.AUTO_ACK:
            assert decoded.endswith("…")


def _chain(length: int) -> list[MessageFacts]:
    """A client thread of ``length`` messages, each replying to the one before."""
    messages = [client_mail("m0@globex.example", hours_ago=length / 60)]
    for n in range(1, length):
        parent = messages[-1].message_id
        if n % 2:
            reply = team_reply(f"m{n}@acme.example", (length - n) / 60, parent)
        else:
            reply = client_mail(f"m{n}@globex.example", (length - n) / 60, in_reply_to=parent)
        messages.append(reply)
    return messages


@pytest.mark.parametrize("order", ["oldest_first", "newest_first"])
def test_a_10000_message_thread_is_one_conversation_and_evaluates(order: str) -> None:
    """10,000 messages in one reply chain thread into one conversation, in either order.

    Newest first, every message starts its own conversation until the merges join them;
    no recursion, and the engine evaluates the whole history in one call.
    """
    messages = _chain(10_000)
    if order == "newest_first":
        messages.reverse()
    threads = ThreadMap()
    for facts in messages:
        threads.thread(facts, subject_fallback=False)
    conversations = {threads.conversation_of(facts.message_id) for facts in messages}
    assert len(conversations) == 1
    evaluation = evaluate(conversations.pop() or "", messages, rules(), {}, NOW)
    assert evaluation.status.message_ids
    assert len(evaluation.status.message_ids) <= 10_000
    assert evaluation.status.opened_at <= NOW - timedelta(hours=10_000 / 60 - 1)

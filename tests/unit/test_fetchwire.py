"""The FETCH answer reader on plain bytes, as imaplib frames them (no server, no sockets).

Each answer is also given to imapclient's own parser, which the bulk fetch used before:
where that parser reads an answer, both must agree value for value.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response

from sla_daemon.adapters.fetchwire import FetchAnswerError, internaldate, read_fetch_answer

Lines = list[bytes | tuple[bytes, bytes] | None]

HEADER = b"From: a@b.example\r\nSubject: Hi\r\n\r\n"
TEXT = b"Hello (there) {5}\r\n)\r\n"


def imapclient_reading(lines: Lines) -> dict[int, dict[bytes, object]]:
    """What imapclient's parser reads in the same lines, with its times left as sent."""
    return dict(parse_fetch_response(lines, normalise_times=False, uid_is_key=True))


def test_reads_the_answer_imapclient_reads_for_the_daemons_items() -> None:
    """UID, size, date, flags and both BODY literals, as imapclient gives them."""
    lines: Lines = [
        (
            b'1 (UID 41 RFC822.SIZE 900 INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
            b"FLAGS (\\Seen $ActionPlan) BODY[HEADER] {%d}" % len(HEADER),
            HEADER,
        ),
        (b" BODY[TEXT]<0> {%d}" % len(TEXT), TEXT),
        b")",
        b'2 (UID 42 RFC822.SIZE 10 INTERNALDATE " 2-Feb-2026 10:00:00 +0000" FLAGS ()'
        b' BODY[HEADER] "Subject: x\\"y\\\\\r\n\r\n" BODY[TEXT]<0> NIL)',
    ]
    answer = read_fetch_answer(lines)
    zone = timezone(-timedelta(hours=7))
    assert answer[41] == {
        b"SEQ": 1,
        b"RFC822.SIZE": 900,
        b"INTERNALDATE": datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone),
        b"FLAGS": (b"\\Seen", b"$ActionPlan"),
        b"BODY[HEADER]": HEADER,
        b"BODY[TEXT]<0>": TEXT,
    }
    assert answer[42][b"BODY[HEADER]"] == b'Subject: x"y\\\r\n\r\n'
    assert answer[42][b"BODY[TEXT]<0>"] is None
    assert answer[42][b"FLAGS"] == ()
    assert answer == imapclient_reading(lines)


def test_items_in_any_order_and_case_and_the_uid_last() -> None:
    """The UID may come last and names in lower case; values still land under their UID."""
    lines: Lines = [
        (b"7 (body[header.fields (FROM SUBJECT)] {%d}" % len(HEADER), HEADER),
        b' flags (\\Answered) internaldate "01-Jan-2026 00:00:00 +0530" modseq (12345) uid 9)',
    ]
    answer = read_fetch_answer(lines)
    assert set(answer) == {9}
    assert answer[9][b"BODY[HEADER.FIELDS (FROM SUBJECT)]"] == HEADER
    assert answer[9][b"MODSEQ"] == (12345,)
    assert answer[9][b"FLAGS"] == (b"\\Answered",)
    assert answer == imapclient_reading(lines)


def test_a_message_answered_twice_is_merged_and_one_without_uid_filed_by_number() -> None:
    """Two responses for one UID merge; an unsolicited FETCH without UID goes by its number."""
    lines: Lines = [
        b"3 (UID 30 FLAGS (\\Seen))",
        (b"3 (UID 30 BODY[HEADER] {%d}" % len(HEADER), HEADER),
        b")",
        b"5 (FLAGS (\\Deleted))",
    ]
    answer = read_fetch_answer(lines)
    assert answer[30] == {b"SEQ": 3, b"FLAGS": (b"\\Seen",), b"BODY[HEADER]": HEADER}
    assert answer[5] == {b"SEQ": 5, b"FLAGS": (b"\\Deleted",)}
    assert answer == imapclient_reading(lines)


def test_a_literal_holding_parentheses_quotes_and_braces_is_taken_whole() -> None:
    """A literal's bytes are never read as tokens, whatever they hold."""
    body = b'") ( {12}\r\n* 4 FETCH (UID 1)\r\n'
    lines: Lines = [(b"4 (UID 4 BODY[] {%d}" % len(body), body), b" FLAGS ())"]
    assert read_fetch_answer(lines)[4][b"BODY[]"] == body


def test_no_fetch_response_at_all_is_an_empty_answer() -> None:
    """The [None] of imaplib (nothing matched the UIDs asked for) is an empty answer."""
    assert read_fetch_answer([None]) == {}
    assert read_fetch_answer([]) == {}


@pytest.mark.parametrize(
    ("lines", "complaint"),
    [
        ([b"1 (UID 1 FLAGS (\\Seen)"], "not closed"),
        ([b"1 (UID 1))"], "closed that was not open"),
        ([b"1 (UID)"], "without a value"),
        ([b"1 (UID x)"], "UID is not a number"),
        ([b"x (UID 1)"], "message number is not a number"),
        ([b"1 (UID 1 BODY[] {5}"], "announced but not sent"),
        ([(b"1 (UID 1 BODY[] NIL", b"abc"), b")"], "literal data after a line"),
        ([b"1 (UID 1 FLAGS \x00[)"], "unreadable"),
    ],
)
def test_an_answer_that_breaks_the_grammar_is_refused_with_a_reason(
    lines: Lines, complaint: str
) -> None:
    """Unbalanced, truncated or garbled answers raise FetchAnswerError saying what is wrong."""
    with pytest.raises(FetchAnswerError, match=complaint):
        read_fetch_answer(lines)


def test_internaldate_reads_the_imap_form_and_refuses_impossible_dates() -> None:
    """The day may be space-padded and the month in any case; 31 February is no date."""
    ist = timezone(timedelta(hours=5, minutes=30))
    assert internaldate(b" 7-feb-2026 23:59:59 +0530") == datetime(
        2026, 2, 7, 23, 59, 59, tzinfo=ist
    )
    assert internaldate(b"31-Feb-2026 10:00:00 +0000") is None
    assert internaldate(b"07-Foo-2026 10:00:00 +0000") is None
    assert internaldate(b"yesterday") is None


def test_an_unreadable_internaldate_becomes_none_not_an_error() -> None:
    """A server's garbled INTERNALDATE costs the date only; the message is still read."""
    answer = read_fetch_answer([b'1 (UID 1 INTERNALDATE "soon" FLAGS ())'])
    assert answer[1][b"INTERNALDATE"] is None
    assert answer[1][b"FLAGS"] == ()


_ATOM = st.sampled_from([b"\\Seen", b"\\Answered", b"$ActionPlan", b"Junk", b"12345", b"NIL"])
_VALUE = st.one_of(
    st.integers(0, 2**40).map(lambda n: b"%d" % n),
    st.just(b"NIL"),
    st.binary(max_size=20)
    .filter(lambda b: not set(b) & set(b'"\\\r\n'))
    .map(lambda b: b'"' + b + b'"'),
    st.lists(_ATOM, max_size=4).map(lambda atoms: b"(" + b" ".join(atoms) + b")"),
)
_NAME = st.sampled_from(
    [b"RFC822.SIZE", b"FLAGS", b"MODSEQ", b"X-GM-LABELS", b"BODY[HEADER.FIELDS (TO)]", b"flags"]
)


@settings(max_examples=300, deadline=None)
@given(
    uid=st.integers(1, 2**31),
    before=st.lists(st.tuples(_NAME, _VALUE), max_size=5),
    after=st.lists(st.tuples(_NAME, _VALUE), max_size=5),
    literal=st.binary(max_size=40),
)
def test_any_flat_answer_reads_as_imapclient_reads_it(
    uid: int,
    before: list[tuple[bytes, bytes]],
    after: list[tuple[bytes, bytes]],
    literal: bytes,
) -> None:
    """Lines of name-value pairs around a literal: the same values as imapclient's parser.

    Most lines of a bulk fetch have this shape and are read pair by pair; the answer
    must not depend on which way a line was read.
    """
    pairs = b"".join(b" %s %s" % pair for pair in before)
    rest = b"".join(b" %s %s" % pair for pair in after)
    lines: Lines = [
        (b"3 (UID %d%s BODY[TEXT]<0> {%d}" % (uid, pairs, len(literal)), literal),
        rest + b")",
    ]
    assert read_fetch_answer(lines) == imapclient_reading(lines)

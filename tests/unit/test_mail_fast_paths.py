"""The parser's fast paths give exactly the facts its general paths give.

Three fast paths can be switched off: multipart messages parsed without the bodies of
their attachments (``mimeleaves.without_leaf_bodies``), and the common forms of Date
(``mailforms.common_date``) and of address fields (``mailforms.common_addresses``).
``_general_paths`` switches all three off; the facts of every sample here and of every
message of the shared corpora (``-m corpus``) must come out the same with and without
them. Hypothesis checks the two field readers against the general parsers directly.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mailparser.dates import parse_mail_date

from sla_daemon.adapters import mailparse, mailtext, mailtree
from sla_daemon.adapters.factsjson import facts_to_json
from sla_daemon.adapters.mailforms import common_addresses, common_date
from sla_daemon.adapters.mailheader import BLANK_LINE, blank_line
from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.mailtext import decode_header, parse_addresses, scrub
from sla_daemon.core.model import FolderKind
from tests.unit.test_corpus_parsing import corpus_messages
from tests.unit.test_mail_shortcuts import BULK_ARCHIVES, bulk_archive_messages

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@contextmanager
def _general_paths() -> Iterator[None]:
    """Every fast path off: attachments parsed whole, all dates and addresses in general."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mailparse, "without_leaf_bodies", lambda data, header, start: data)
        patch.setattr(mailtree, "common_date", lambda value: None)
        patch.setattr(mailtext, "common_addresses", lambda value: None)
        mailtext._cached_address_field.cache_clear()
        try:
            yield
        finally:
            mailtext._cached_address_field.cache_clear()


def _facts(raw: bytes) -> str:
    """The facts as JSON, or the quarantine reason."""
    try:
        facts = parse_message(
            raw,
            mailbox="m",
            folder="INBOX",
            folder_kind=FolderKind.INBOX,
            internaldate=None,
            now=NOW,
        )
    except MalformedMessage as exc:
        return f"malformed: {exc.reason}"
    return facts_to_json(facts)


def _differs(raw: bytes) -> bool:
    """Whether the fast and the general paths give different facts for ``raw``."""
    fast = _facts(raw)
    with _general_paths():
        general = _facts(raw)
    return fast != general


HEAD = (
    b"From: Ann Lee <ann@client.example>\r\nTo: support@acme.example, Bob <bob@acme.example>"
    b"\r\nSubject: Report\r\nDate: Tue, 24 Nov 2026 15:00:00 +0100\r\n"
    b"Message-ID: <1@client.example>\r\nMIME-Version: 1.0\r\n"
)
PDF = base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n")


def _multipart(boundary: bytes, parts: bytes, close: bool = True) -> bytes:
    head = HEAD + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
    return head + b"preamble\r\n" + parts + (b"--" + boundary + b"--\r\n" if close else b"")


def _part(boundary: bytes, header: bytes, body: bytes) -> bytes:
    return b"--" + boundary + b"\r\n" + header + b"\r\n" + body + b"\r\n"


TEXT = b"Content-Type: text/plain; charset=utf-8\r\n"
ATTACHMENT = (
    b"Content-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="r.pdf"\r\n'
)
INNER = b'Content-Type: multipart/alternative; boundary="in"\r\n'
ALTERNATIVE = (
    _part(b"in", TEXT, b"plain text")
    + _part(b"in", b"Content-Type: text/html\r\n", b"<p>html</p>")
    + b"--in--\r\n"
)

SAMPLES = {
    "text and attachment": _multipart(
        b"b", _part(b"b", TEXT, b"Hello") + _part(b"b", ATTACHMENT, PDF)
    ),
    "attachment first": _multipart(b"b", _part(b"b", ATTACHMENT, PDF) + _part(b"b", TEXT, b"Hi")),
    "cut off, no closing boundary": _multipart(
        b"b", _part(b"b", TEXT, b"Hello") + _part(b"b", ATTACHMENT, PDF[:3000]), close=False
    ),
    "nested alternative": _multipart(
        b"b", _part(b"b", INNER, ALTERNATIVE) + _part(b"b", ATTACHMENT, PDF)
    ),
    "outer boundary inside the inner multipart": _multipart(
        b"b", _part(b"b", INNER, _part(b"in", ATTACHMENT, PDF)) + _part(b"b", TEXT, b"after")
    ),
    "boundary a prefix of the inner one": _multipart(
        b"b",
        _part(
            b"b",
            b'Content-Type: multipart/mixed; boundary="b1"\r\n',
            _part(b"b1", ATTACHMENT, PDF) + b"--b1--",
        ),
    ),
    "a line starting like the boundary": _multipart(
        b"b", _part(b"b", ATTACHMENT, b"--bx\r\n--b x\r\n" + PDF) + _part(b"b", TEXT, b"Hi")
    ),
    "boundary line with trailing blanks": _multipart(
        b"b",
        _part(b"b", ATTACHMENT, PDF).replace(b"--b\r\n", b"--b \t\r\n") + _part(b"b", TEXT, b"x"),
    ),
    "repeated boundary lines": _multipart(
        b"b", b"--b\r\n" + _part(b"b", ATTACHMENT, PDF) + _part(b"b", TEXT, b"x")
    ),
    "closing boundary first": _multipart(b"b", b"--b--\r\n" + _part(b"b", ATTACHMENT, PDF)),
    "no boundary at all": _multipart(b"b", b"just text\r\n", close=False),
    "part without headers": _multipart(b"b", b"--b\r\n\r\nbare\r\n" + _part(b"b", ATTACHMENT, PDF)),
    "part header not clean": _multipart(b"b", _part(b"b", b"no colon here\r\n" + ATTACHMENT, PDF)),
    "application/plain is read as text": _multipart(
        b"b", _part(b"b", b"Content-Type: application/plain\r\n", b"read me")
    ),
    "image/html is read as text": _multipart(
        b"b", _part(b"b", b"Content-Type: image/html\r\n", b"<b>x</b>")
    ),
    "attached message": _multipart(
        b"b", _part(b"b", b"Content-Type: message/rfc822\r\n", HEAD + b"\r\ninner body")
    ),
    "LF line ends": _multipart(
        b"b", _part(b"b", TEXT, b"Hi") + _part(b"b", ATTACHMENT, PDF)
    ).replace(b"\r\n", b"\n"),
    "CR line ends": _multipart(
        b"b", _part(b"b", TEXT, b"Hi") + _part(b"b", ATTACHMENT, PDF)
    ).replace(b"\r\n", b"\r"),
    "empty attachment": _multipart(b"b", _part(b"b", ATTACHMENT, b"") + _part(b"b", TEXT, b"x")),
    "boundary with specials": _multipart(
        b"=_a.b+c?(d)", _part(b"=_a.b+c?(d)", ATTACHMENT, PDF) + _part(b"=_a.b+c?(d)", TEXT, b"x")
    ),
    "unknown-zone and odd dates": HEAD.replace(b"+0100", b"+0000 (UTC)") + b"\r\nbody\r\n",
    "quoted and encoded names": HEAD.replace(b"Ann Lee <", b'"Lee, Ann" (home) <').replace(
        b"Bob <", b"=?utf-8?q?B=C3=B6b?= <"
    )
    + b"\r\nbody\r\n",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fast_paths_give_the_general_facts(name: str) -> None:
    """Each sample's facts are the same with the fast paths as without them."""
    assert not _differs(SAMPLES[name])


def test_an_attachment_body_is_not_parsed() -> None:
    """The attachment of a multipart is left out before the tree is built, its text kept."""
    tree = mailparse.message_tree(SAMPLES["text and attachment"], keep_leaf_bodies=False)
    text, attachment = tree.get_payload()
    assert text.get_payload() == "Hello"
    assert attachment.get_payload() == ""
    assert attachment.get_filename() == "r.pdf"


@settings(max_examples=400, deadline=None)
@given(
    at=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9998, 12, 30)),
    offset=st.integers(min_value=-99 * 60 - 59, max_value=99 * 60 + 59),
    form=st.sampled_from(["rfc", "no weekday", "no seconds", "comment", "GMT", "one digit"]),
)
@example(at=datetime(2026, 11, 24, 15, 0), offset=14 * 60 + 1, form="rfc")
def test_common_date_is_mail_parsers_reading(at: datetime, offset: int, form: str) -> None:
    """A date the quick reader reads is read the same by mail-parser (as the daemon uses it)."""
    text = format_datetime(at.replace(tzinfo=UTC))[:-5]
    sign = "-" if offset < 0 else "+"
    zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    value = {
        "rfc": text + zone,
        "no weekday": text[5:] + zone,
        "no seconds": text[:-4] + " " + zone,
        "comment": text + zone + " (CET)",
        "GMT": text + "GMT",
        "one digit": text.replace(" 0", " ", 1) + zone,
    }[form]
    quick = common_date(value)
    result = parse_mail_date(value)
    general = mailtree._mailparser_date(result.value, result.timezone)
    if quick is not None:
        assert quick == general
    else:
        assert abs(offset) > 14 * 60 or general is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="MonTuesWdJaFbrpyAgSOctNvDe0123456789 ,:+-()GTUC\t", max_size=40))
def test_common_date_never_disagrees_on_any_text(value: str) -> None:
    """On any text, the quick reader gives None or exactly the general reading."""
    quick = common_date(value)
    if quick is not None:
        result = parse_mail_date(value)
        assert quick == mailtree._mailparser_date(result.value, result.timezone)


_NAME_WORD = st.text(alphabet="AbcXyz09'_-.", min_size=1, max_size=6)
_LOCAL = st.text(alphabet="abcXYZ09_+-.", min_size=1, max_size=8)
_DOMAIN = st.text(alphabet="abcXYZ09-.", min_size=1, max_size=10)


@st.composite
def _address_lists(draw: st.DrawFn) -> str:
    entries = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        address = f"{draw(_LOCAL)}@{draw(_DOMAIN)}"
        words = draw(st.lists(_NAME_WORD, max_size=3))
        space = draw(st.sampled_from(["", " ", "  ", "\t"]))
        if words:
            entries.append(f"{space}{' '.join(words)}{space}<{address}>")
        else:
            entries.append(draw(st.sampled_from([address, f"<{address}>", f" {address} "])))
    return ",".join(entries)


@settings(max_examples=500, deadline=None)
@given(_address_lists())
@example("Ann Lee <Ann.Lee@Client.Example>, bob@acme.example")
@example("John Q. Public <jqp@x.example>")
def test_common_addresses_are_the_general_reading(value: str) -> None:
    """An address list the quick reader reads is read the same by the general parser."""
    quick = common_addresses(value)
    with _general_paths():
        general = parse_addresses([value], None)
    if quick is not None:
        assert tuple((address.email, address.name) for address in general) == tuple(quick)


def test_common_forms_are_read_quickly() -> None:
    """The usual forms do take the quick readers (else the fast paths would never run)."""
    assert common_date("Tue, 24 Nov 2026 15:00:00 +0100") == datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert common_date("24 Nov 2026 15:00 GMT") == datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert common_date("Tue, 24 Nov 2026 15:00:00 +0000 (UTC)") is not None
    assert common_date("tue, 24 nov 2026 15:00:00 +0000") is None  # left to mail-parser
    assert common_addresses("Ann Lee <ann@x.example>, b@y.example") == [
        ("ann@x.example", "Ann Lee"),
        ("b@y.example", ""),
    ]
    assert common_addresses('"Lee, Ann" <ann@x.example>') is None


@given(st.text(max_size=30))
@example("a\x00b\ud800c\td\ne")
def test_scrub_and_ascii_header_shortcuts_match_the_general_rules(text: str) -> None:
    """``scrub`` and an ASCII header value's shortcut give what the general rules give."""
    general = mailtext._UNSAFE.sub("", mailtext._SURROGATE.sub("\ufffd", text))
    assert scrub(text) == general
    if text.isascii() and "=?" not in text:
        data = text.encode("ascii")
        assert decode_header(text) == mailtext.collapse(mailtext.decode_words(data))


def test_parse_is_unchanged_for_a_week_of_dates() -> None:
    """Messages dated every few hours over a week give the same facts on both paths."""
    start = datetime(2026, 3, 25, tzinfo=UTC)
    for hours in range(0, 24 * 7, 5):
        date = format_datetime(start + timedelta(hours=hours)).encode()
        assert not _differs(HEAD.replace(b"Tue, 24 Nov 2026 15:00:00 +0100", date) + b"\r\nx\r\n")


@pytest.mark.corpus
def test_fast_paths_agree_on_every_raw_corpus_message(corpora_dir: Path) -> None:
    """On every raw corpus message, the facts are the same with and without the fast paths."""
    differing = [name for name, raw in corpus_messages(corpora_dir) if _differs(raw)]
    assert differing == []


@pytest.mark.corpus
@pytest.mark.parametrize("tarball", BULK_ARCHIVES)
def test_fast_paths_agree_on_the_bulk_archives(corpora_dir: Path, tarball: str) -> None:
    """On every message of the two list archives, the facts are the same on both paths."""
    messages = list(bulk_archive_messages(corpora_dir, tarball))
    differing = [name for name, raw in messages if _differs(raw)]
    assert len(messages) > 2000
    assert differing == []


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=24).map(lambda data: bytes(b"a\r\n:"[byte % 4] for byte in data)),
    st.integers(min_value=0, max_value=24),
    st.integers(min_value=0, max_value=24),
)
@example(b"a\r\n\r\nb", 0, 24)
@example(b"\r\n\n", 1, 3)
@example(b"a\r\r\n", 0, 3)
def test_blank_line_finds_what_the_regular_expression_finds(
    data: bytes, start: int, end: int
) -> None:
    """``blank_line`` gives the span of ``BLANK_LINE.search`` for any bytes and bounds."""
    match = BLANK_LINE.search(data, start, end)
    expected = match.span() if match else None
    assert blank_line(data, start, min(end, len(data))) == expected

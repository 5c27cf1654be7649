"""The parser's two shortcuts give exactly what the full parse gives.

``mailparse.message_tree`` parses only the header block of a message that is neither
multipart nor ``message/*``; ``mailtree.read_tree`` reads a single text part without
mail-parser. Facts are a function of the tree and of the tree's reading (date, plain
and HTML text), so equal trees and equal readings mean equal facts. Checked on plain
bytes here, and on every message of the shared corpora (``-m corpus``).
"""

from __future__ import annotations

import email
import email.policy
import tarfile
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from sla_daemon.adapters.mailparse import message_tree
from sla_daemon.adapters.mailtree import (
    ParsedTree,
    read_single_text_part,
    read_tree,
    read_tree_fully,
)
from tests.unit.test_corpus_parsing import corpus_messages


def _full(data: bytes) -> Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def _shape(message: Message) -> object:
    """Everything of a tree that the parser reads or that could differ between parses."""
    payload = message.get_payload()
    return (
        message.get_unixfrom(),
        list(message.raw_items()),
        [type(defect).__name__ for defect in message.defects],
        message.preamble,
        message.epilogue,
        message.get_default_type(),
        [_shape(part) for part in payload] if isinstance(payload, list) else payload,
    )


def _same_as_full_parse(data: bytes) -> bool:
    """Whether ``message_tree`` and ``read_tree`` agree with the full parse and mail-parser."""
    try:
        expected = _full(data)
    except RecursionError:
        with pytest.raises(RecursionError):
            message_tree(data)
        return True
    tree = message_tree(data)
    return _shape(tree) == _shape(expected) and _reading(read_tree(tree)) == _reading(
        read_tree_fully(expected)
    )


def _reading(parsed: ParsedTree) -> tuple[object, ...]:
    return (parsed.date, parsed.plain, parsed.html)


PLAIN = (
    b"From: Ann <ann@client.example>\r\nTo: support@acme.example\r\nSubject: Help\r\n"
    b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@client.example>\r\n"
)

SAMPLES = {
    "no MIME fields": PLAIN + b"\r\nHello,\r\nthe export fails.\r\n",
    "8bit UTF-8": PLAIN
    + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    + b"\r\nGr\xc3\xbc\xc3\x9fe\r\n",
    "8bit Latin-1 declared": PLAIN
    + b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe\r\n",
    "8bit bytes under a UTF-8 label": PLAIN
    + b"Content-Type: text/plain; charset=utf-8\r\n\r\nGr\xfc\xdfe\r\n",
    "unknown charset": PLAIN + b"Content-Type: text/plain; charset=x-nonsense\r\n\r\nHi \xe9\r\n",
    "quoted-printable": PLAIN
    + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
    + b"\r\n\r\nGr=C3=BC=C3=9Fe, a long line=\r\n continued\r\n",
    "base64 HTML": PLAIN
    + b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"PHA+SGVsbG88L3A+\r\n",
    "empty body": PLAIN + b"\r\n",
    "no body at all": PLAIN,
    "LF only": PLAIN.replace(b"\r\n", b"\n") + b"\nHello\n",
    "CR only": PLAIN.replace(b"\r\n", b"\r") + b"\rHello\r",
    "envelope line": b"From ann@client.example Mon Nov  2 10:00:00 2026\n"
    + PLAIN.replace(b"\r\n", b"\n")
    + b"\nHello\n",
    "a line that is no header field before the blank line": PLAIN
    + b"this line has no colon\r\nX-After: 1\r\n\r\nbody\r\n",
    "continuation line first": b" folded\r\n" + PLAIN + b"\r\nbody\r\n",
    "folded fields": PLAIN + b"X-Long: one\r\n\ttwo\r\n  three  \r\n\r\nbody\r\n",
    "a form feed in a field": PLAIN + b"X-Odd: a\x0cb\r\n\r\nbody\r\n",
    "a field without a name": PLAIN + b": no name\r\n\r\nbody\r\n",
    "8-bit field values": PLAIN + b"X-Name: J\xc3\xbcrgen \xe9\r\n\r\nbody\r\n",
    "a lone CR inside a field": PLAIN + b"X-Odd: a\rb\r\n\r\nbody\r\n",
    "leading blank line": b"\r\n" + PLAIN + b"\r\nbody\r\n",
    "named part": PLAIN + b'Content-Type: text/plain; name="notes.txt"\r\n\r\nnotes\r\n',
    "attachment disposition": PLAIN + b"Content-Disposition: attachment\r\n\r\nnotes\r\n",
    "Content-ID": PLAIN + b"Content-ID: <part@x>\r\n\r\nnotes\r\n",
    "not text": PLAIN + b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n",
    "8-bit Content-Type": PLAIN + b"Content-Type: text/plain; charset=\xe9\r\n\r\nhi\r\n",
    "impossible zone": PLAIN.replace(b"+0100", b"-3000") + b"\r\nhi\r\n",
    "unreadable date": PLAIN.replace(b"Mon, 2 Nov 2026 10:00:00 +0100", b"yesterday")
    + b"\r\nhi\r\n",
    "multipart": PLAIN
    + b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
    + b"Content-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n\r\n"
    + b"<p>html</p>\r\n--b--\r\n",
    "multipart without its closing boundary": PLAIN
    + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nplain\r\n--b\r\n',
    "forwarded message": PLAIN + b"Content-Type: message/rfc822\r\n\r\n" + PLAIN + b"\r\ninner\r\n",
    "delivery report": PLAIN
    + b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
    + b"Final-Recipient: rfc822; x@y\r\nAction: failed\r\n",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_shortcuts_agree_with_the_full_parse(name: str) -> None:
    """Each sample's tree and reading are the same as the full parse's and mail-parser's."""
    assert _same_as_full_parse(SAMPLES[name])


@pytest.mark.parametrize(
    "name", ["named part", "attachment disposition", "Content-ID", "not text", "multipart"]
)
def test_single_text_part_leaves_other_messages_to_mail_parser(name: str) -> None:
    """A part that mail-parser could take for an attachment, or a tree, gets no shortcut."""
    assert read_single_text_part(_full(SAMPLES[name])) is None


def test_single_text_part_reads_the_plain_text() -> None:
    """The shortcut does apply to one plain part, and reads its decoded text and its date."""
    parsed = read_single_text_part(message_tree(SAMPLES["quoted-printable"]))
    assert parsed is not None
    assert parsed.plain == "Grüße, a long line continued\r\n"
    assert parsed.html is None
    assert parsed.date is not None and parsed.date.isoformat() == "2026-11-02T09:00:00+00:00"


@pytest.mark.corpus
def test_shortcuts_agree_on_every_raw_corpus_message(corpora_dir: Path) -> None:
    """On every raw corpus message, the shortcuts give the full parse's tree and reading."""
    differing = [name for name, raw in corpus_messages(corpora_dir) if not _same_as_full_parse(raw)]
    assert differing == []


def bulk_archive_messages(corpora_dir: Path, tarball: str) -> Iterator[tuple[str, bytes]]:
    """Every message of one list archive under ``bulk/`` as ``(name, bytes)``."""
    with tarfile.open(corpora_dir / "bulk" / tarball) as archive:
        for member in archive:
            stream = archive.extractfile(member) if member.isfile() else None
            if stream is not None:
                yield member.name, stream.read()


BULK_ARCHIVES = ("linux-mips-10k.tar.xz", "spamassassin-easy-ham-2405.tar.xz")


@pytest.mark.corpus
@pytest.mark.parametrize("tarball", BULK_ARCHIVES)
def test_shortcuts_agree_on_the_bulk_archives(corpora_dir: Path, tarball: str) -> None:
    """On every message of the two list archives, the shortcuts agree with the full parse."""
    messages = list(bulk_archive_messages(corpora_dir, tarball))
    differing = [name for name, raw in messages if not _same_as_full_parse(raw)]
    assert len(messages) > 2000
    assert differing == []

"""Framing a FETCH answer off the wire, on plain bytes, beside imaplib's own reading.

A scripted imaplib connection reads its answer from bytes instead of a socket; the
same bytes are read once by imaplib (``_command_complete`` and ``_untagged_response``,
as the bulk fetch read them before) and once by ``read_tagged_answer``.
"""

from __future__ import annotations

import imaplib
import io
import re

import pytest

from sla_daemon.adapters.fetchframes import read_tagged_answer

HEADER = b"From: a@b.example\r\nSubject: Hi {3}\r\n\r\n"
BODY = b"* 9 FETCH (UID 1)\r\nA2 OK not really\r\n)\r\n"


class ScriptedIMAP4(imaplib.IMAP4):
    """An imaplib connection in the selected state whose server's bytes are ``wire``."""

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        super().__init__("scripted")

    def open(self, host: str = "", port: int = 0, timeout: float | None = None) -> None:
        """No socket: the answer is read from ``wire``."""
        self.host, self.port, self.file = host, port, io.BytesIO(self.wire)

    def _connect(self) -> None:
        self.tagpre = b"T"
        self.tagre = re.compile(rb"(?P<tag>T\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)
        self.capabilities = ("IMAP4REV1",)
        self.PROTOCOL_VERSION = "IMAP4REV1"
        self.state = "SELECTED"
        self._cmd_log_len, self._cmd_log_idx, self._cmd_log = 10, 0, {}

    def send(self, data: bytes) -> None:
        """Nothing is sent."""


def _fetch(wire: bytes) -> ScriptedIMAP4:
    """A scripted connection that has just sent ``UID FETCH`` under tag ``T0``."""
    imap = ScriptedIMAP4(wire)
    assert imap._command("UID", "FETCH", "1:*", "(FLAGS)") == b"T0"
    return imap


ANSWER = (
    b"* 1 FETCH (UID 41 FLAGS (\\Seen) BODY[HEADER] {%d}\r\n%s BODY[TEXT]<0> {%d}\r\n%s)\r\n"
    % (len(HEADER), HEADER, len(BODY), BODY)
    + b"* 3 EXISTS\r\n"
    + b"* 2 FETCH (UID 42 FLAGS ())\r\n"
    + b"* OK [HIGHESTMODSEQ 7] fine\r\n"
    + b"T0 OK Fetch completed.\r\n"
)


def test_fetch_pieces_and_other_responses_are_read_as_imaplib_reads_them() -> None:
    """Literals holding braces and tags stay whole; EXISTS and OK are filed for imaplib."""
    ours = _fetch(ANSWER)
    status, text, lines = read_tagged_answer(ours, b"T0")
    theirs = _fetch(ANSWER)
    their_status, data = theirs._command_complete("FETCH", b"T0")
    _, their_lines = theirs._untagged_response(their_status, data, "FETCH")
    assert (status, text) == ("OK", b"Fetch completed.")
    assert lines == their_lines
    assert lines[0] == (b"1 (UID 41 FLAGS (\\Seen) BODY[HEADER] {%d}" % len(HEADER), HEADER)
    assert ours.untagged_responses == theirs.untagged_responses
    assert ours.untagged_responses["EXISTS"] == [b"3"]


def test_a_refused_fetch_gives_its_status_and_text() -> None:
    """``NO`` and ``BAD`` come back with the server's text; nothing is read past them."""
    imap = _fetch(b"T0 NO [SERVERBUG] Internal error\r\n* 1 FETCH (UID 1)\r\n")
    assert read_tagged_answer(imap, b"T0") == ("NO", b"[SERVERBUG] Internal error", [])


@pytest.mark.parametrize(
    ("wire", "complaint"),
    [
        (b"* BYE shutting down\r\n", "BYE"),
        (b"* 1 FETCH (UID 1 BODY[] {10}\r\nshort", "EOF in a literal"),
        (b"* 1 FETCH (UID 1)\r\n", "EOF"),
        (b"* 1 FETCH (UID 1)", "unterminated line"),
        (b"+ go ahead\r\nT0 OK\r\n", "unexpected response"),
    ],
)
def test_a_broken_answer_or_bye_aborts_the_connection(wire: bytes, complaint: str) -> None:
    """A server that says BYE, or an answer cut short or garbled, raises imaplib's abort."""
    imap = _fetch(wire)
    with pytest.raises(imaplib.IMAP4.abort, match=complaint):
        read_tagged_answer(imap, b"T0")

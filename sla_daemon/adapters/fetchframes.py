"""Reading a FETCH command's answer off the wire, in place of imaplib's general loop.

imaplib reads every line of an answer through several regular expressions, files
each piece under its response type and hands the FETCH pieces over at the end: about
half of what a bulk fetch costs in Python once the values are read by
``fetchwire``. ``read_tagged_answer`` frames the answer itself, with the same result
for FETCH responses (imaplib's ``(line, literal)`` pairs and plain lines, the ``* N
FETCH`` turned into ``N``) and imaplib's own handling for anything else: other untagged
responses are filed where imaplib files them, ``* BYE`` ends the connection as imaplib
ends it, and a broken frame raises imaplib's ``abort``.
"""

from __future__ import annotations

import re
from typing import Any

Line = bytes | tuple[bytes, bytes]
"""One piece of a FETCH answer, as imaplib gives it: a line, or a line and its literal."""

_FETCH = re.compile(rb"\* (\d+) FETCH (.*)", re.DOTALL | re.IGNORECASE)
# imaplib's own patterns for other untagged responses, and its longest line.
_NUMBERED = re.compile(rb"\* (?P<data>\d+) (?P<type>[A-Z-]+)( (?P<data2>.*))?", re.ASCII)
_NAMED = re.compile(rb"\* (?P<type>[A-Z-]+)( (?P<data>.*))?", re.ASCII)
_CODE = re.compile(rb"\[(?P<type>[A-Z-]+)( (?P<data>.*))?\]", re.ASCII)
_MAX_LINE = 1_000_000


def read_tagged_answer(imap: Any, tag: bytes) -> tuple[str, bytes, list[Line]]:
    """Read up to the tagged completion of command ``tag`` on imaplib connection ``imap``.

    Returns the completion's status (``OK``, ``NO``, ``BAD``), its text, and the pieces
    of every FETCH response in the answer. Socket errors propagate as ``OSError``.
    """
    file = imap.file
    fetched: list[Line] = []
    completion = tag + b" "
    while True:
        line = _line(imap, file)
        if line.startswith(completion):
            status, _, text = line[len(completion) :].partition(b" ")
            return status.decode("ascii", "replace").upper(), text, fetched
        response = _FETCH.match(line)
        if response is None:
            _file_with_imaplib(imap, file, line)
            continue
        piece = response.group(1) + b" " + response.group(2)
        while (size := _literal_size(piece)) is not None:
            fetched.append((piece, _literal(imap, file, size)))
            piece = _line(imap, file)
        fetched.append(piece)


def _line(imap: Any, file: Any) -> bytes:
    """One line without its CRLF, refused as imaplib refuses it."""
    raw: bytes = file.readline(_MAX_LINE + 1)
    if not raw:
        raise imap.abort("socket error: EOF")
    if len(raw) > _MAX_LINE:
        raise imap.error(f"got more than {_MAX_LINE} bytes")
    if not raw.endswith(b"\r\n"):
        raise imap.abort(f"socket error: unterminated line: {raw[:80]!r}")
    return raw[:-2]


def _literal_size(line: bytes) -> int | None:
    """The size of the literal ``line`` announces (``{n}`` at its end), if it does."""
    if not line.endswith(b"}"):
        return None
    brace = line.rfind(b"{")
    digits = line[brace + 1 : -1]
    return int(digits) if brace >= 0 and digits.isdigit() else None


def _literal(imap: Any, file: Any, size: int) -> bytes:
    data: bytes = file.read(size)
    if len(data) != size:
        raise imap.abort("socket error: EOF in a literal")
    return data


def _file_with_imaplib(imap: Any, file: Any, line: bytes) -> None:
    """File a response that is not FETCH where imaplib files it; ``* BYE`` aborts."""
    match = _NUMBERED.match(line) or _NAMED.match(line)
    if match is None:
        raise imap.abort(f"unexpected response: {line[:80]!r}")
    kind = match.group("type").decode("ascii", "replace")
    data = match.group("data") or b""
    if match.re is _NUMBERED and match.group("data2"):
        data = data + b" " + match.group("data2")
    while (size := _literal_size(data)) is not None:
        imap._append_untagged(kind, (data, _literal(imap, file, size)))
        data = _line(imap, file)
    imap._append_untagged(kind, data)
    code = _CODE.match(data) if kind in ("OK", "NO", "BAD") else None
    if code is not None:  # ``* OK [HIGHESTMODSEQ 7]`` is filed under HIGHESTMODSEQ too
        imap._append_untagged(code.group("type").decode("ascii"), code.group("data"))
    if kind == "BYE":
        raise imap.abort(f"the server said BYE: {data[:80]!r}")

"""A multipart message with the bodies of its non-text parts left out, before parsing.

The stdlib's feed parser reads a body line by line in Python, so a message with a
256 KiB attachment costs it about forty times a plain one, although nothing of an
attachment's body is ever read: the facts come from the headers and the text parts.
``without_leaf_bodies`` finds the parts the way the feed parser does (a boundary line
is ``--boundary``, maybe ``--``, blanks and a line end, and the boundary of every
enclosing multipart ends a part too) and removes the body of each part that is neither
text, nor a multipart, nor ``message/*``, nor read as text by mail-parser (a subtype
``plain`` or ``html``). The feed parser then builds the same tree as from the whole
message, except that those parts' payloads are empty.

Anything unusual is left as it is: a header block that is not clean
(``mailheader.scanned_header``), a part without a Content-Type, repeated boundary
lines, a missing first boundary, a boundary that is a prefix of an enclosing one or
is not ASCII. Leaving bytes in place is always safe; it only costs time.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import NamedTuple

from sla_daemon.adapters.mailheader import blank_line, scanned_header

_KEPT_MAINTYPES = frozenset({"text", "multipart", "message"})
_TEXT_SUBTYPES = frozenset({"plain", "html"})  # mail-parser reads these as body text
_MAX_DEPTH = 8  # deeper nesting is left to the feed parser (and its recursion limit)

_Span = tuple[int, int]


def without_leaf_bodies(data: bytes, header: Message, body_start: int) -> bytes:
    """``data`` without the bodies of its non-text leaf parts, or ``data`` itself.

    ``header`` is the clean header block (``scanned_header``) of a multipart message,
    whose body starts at ``body_start``.
    """
    boundary = _boundary_bytes(header.get_boundary(), ())
    if boundary is None:
        return data
    spans = _leaf_bodies(data, body_start, len(data), (boundary,), 0)
    if not spans:
        return data
    pieces, position = [], 0
    for start, end in spans:
        pieces.append(data[position:start])
        position = end
    pieces.append(data[position:])
    return b"".join(pieces)


def _boundary_bytes(boundary: str | None, enclosing: tuple[bytes, ...]) -> bytes | None:
    """The boundary as bytes, or None when it could be confused with an enclosing one."""
    if not boundary:
        return None
    try:
        raw = boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # an RFC 2231 value decoded to other text
        return None
    if any(raw.startswith(outer) or outer.startswith(raw) for outer in enclosing):
        return None
    return raw


class _Line(NamedTuple):
    """A boundary line: where it starts and ends, and whether it is the closing one."""

    start: int
    end: int
    closing: bool


# What follows ``--boundary`` on a boundary line. Matched where the boundary was found
# with ``bytes.find``: compiling a pattern per boundary (each message has its own) cost
# more than finding the lines.
_LINE_TAIL = re.compile(rb"(--)?[ \t]*(?:\r\n|\r|\n|\Z)")


def _boundary_lines(data: bytes, boundary: bytes, start: int, end: int) -> list[_Line]:
    r"""The lines in ``data[start:end]`` the feed parser takes for ``boundary``'s lines.

    Found as ``re.finditer`` of ``--boundary(--)?[ \t]*<line end>`` would find them,
    kept when they begin a line.
    """
    marker = b"--" + boundary
    lines: list[_Line] = []
    position = data.find(marker, start, end)
    while position >= 0:
        tail = _LINE_TAIL.match(data, position + len(marker), end)
        if tail is None:
            position = data.find(marker, position + 1, end)
            continue
        if position == 0 or data[position - 1] in b"\r\n":
            lines.append(_Line(position, tail.end(), tail.group(1) is not None))
        position = data.find(marker, tail.end(), end)  # matches do not overlap
    return lines


def _leaf_bodies(
    data: bytes, start: int, end: int, boundaries: tuple[bytes, ...], depth: int
) -> list[_Span]:
    """The leaf bodies to remove in the multipart body ``data[start:end]``.

    ``boundaries[-1]`` is this multipart's boundary, the others its enclosing ones; no
    line of an enclosing boundary lies in ``start:end`` (the caller ends the body at the
    first). An empty list means nothing is removed here.
    """
    lines = _boundary_lines(data, boundaries[-1], start, end)
    if not lines or lines[0].closing:  # no first boundary: the feed parser's defect
        return []
    spans: list[_Span] = []
    for index, line in enumerate(lines):
        if line.closing:  # the closing boundary: the rest is the epilogue
            break
        part_end = lines[index + 1].start if index + 1 < len(lines) else end
        if part_end == line.end:  # repeated boundary lines: left to the feed parser
            return []
        spans.extend(_part(data, line.end, part_end, boundaries, depth))
    return spans


def _part(
    data: bytes, start: int, end: int, boundaries: tuple[bytes, ...], depth: int
) -> list[_Span]:
    """The leaf bodies to remove in the part ``data[start:end]``."""
    blank = blank_line(data, start, end)
    if blank is None:
        return []
    header_end, body_start = blank
    header = scanned_header(data[start:header_end])
    if header is None or header.get("content-type") is None:
        return []
    maintype = header.get_content_maintype()
    if maintype == "multipart":
        inner = _boundary_bytes(header.get_boundary(), boundaries)
        if inner is None or depth >= _MAX_DEPTH:
            return []
        return _leaf_bodies(data, body_start, end, (*boundaries, inner), depth + 1)
    if maintype in _KEPT_MAINTYPES or header.get_content_subtype() in _TEXT_SUBTYPES:
        return []
    return [(body_start, end)] if body_start < end else []

"""A clean header block split into the fields the stdlib's feed parser would give.

The feed parser reads a header block line by line in Python; a block in which every
line is a field or the continuation of one is split here by two regular expressions
instead, into exactly the compat32 ``(name, value)`` pairs the feed parser stores. Any
other block gives None and is left to the feed parser, which records its defects.
"""

from __future__ import annotations

import email.policy
import re
from email.message import Message

BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
"""An empty line (two line ends in a row): where a header block ends."""

# Where two line ends meet: the end of the first ("\n", or a "\r" that is one alone)
# and the start of the second ("\r" or "\n"). Each empty line has exactly one.
_JUNCTIONS = (b"\n\r", b"\n\n", b"\r\r")


def blank_line(data: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """The span ``BLANK_LINE.search(data, start, end)`` finds, or None; found faster.

    The regular expression tries every position; ``bytes.find`` looks for the place
    where the two line ends meet instead, which is where every empty line has one of
    three pairs of bytes.
    """
    stop = len(data) if end is None else end
    junction = -1
    for pair in _JUNCTIONS:
        found = data.find(pair, start, stop if junction < 0 else junction + 1)
        if found >= 0:
            junction = found
    if junction < 0:
        return None
    first = junction
    if data[junction] == 0x0A and junction > start and data[junction - 1] == 0x0D:
        first = junction - 1  # the first line end is CR LF
    second_end = junction + 2
    if data[junction + 1] == 0x0D and second_end < stop and data[second_end] == 0x0A:
        second_end += 1  # the second line end is CR LF
    return first, second_end


_LINE_END = r"(?:\r\n|\r|\n|\Z)"
# One field: its name (printable ASCII other than ":"), then its first line and the
# continuation lines (starting with a space or a tab), each with its line end.
_FIELD = re.compile(
    r"([!-9;-~]+):[ \t]*([^\r\n]*" + _LINE_END + r"(?:[ \t][^\r\n]*" + _LINE_END + r")*)"
)
# The same, with no line break that str.splitlines knows and the stdlib's parser does not.
_LINE = r"[^\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]*"
_CLEAN_BLOCK = re.compile(
    r"(?:[!-9;-~]+:" + _LINE + _LINE_END + r"(?:[ \t]" + _LINE + _LINE_END + r")*)+"
)


def scanned_header(head: bytes) -> Message | None:
    """The compat32 header the feed parser builds of a clean header block, or None.

    Clean: every line is a field (a name of printable ASCII other than ":", then ":")
    or the continuation of one, and no line ending but CR and LF occurs (the stdlib
    splits lines on those alone, ``str.splitlines`` on more). Each field becomes the
    feed parser's ``(name, value)``: the first line without the blanks after the colon,
    the continuation lines as they are, the last line end removed. Anything else (an
    envelope "From " line, a continuation first, a line that is no field) is left to
    the feed parser, which records the defect.
    """
    text = head.decode("ascii", "surrogateescape")
    if not _CLEAN_BLOCK.fullmatch(text):
        return None
    message = Message(policy=email.policy.compat32)
    for name, value in _FIELD.findall(text):
        # The feed parser's (compat32) header_source_parse, on the lines of one field.
        message.set_raw(name, value.rstrip("\r\n"))
    return message

r"""A reader of raw FETCH answers, for the bulk fetch of a sync.

imaplib already frames the answer: each untagged FETCH arrives as plain lines and, for
every literal, a ``(line ending in {n}, literal bytes)`` pair. imapclient's general
parser reads that framing token by token in Python and costs more than reading the
socket; the bulk fetch only needs UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ and
``BODY[...]`` values, so ``read_fetch_answer`` reads them with one regular expression
per line and gives the same shape imapclient's ``fetch`` gives (a dict per UID, keyed by
upper-cased item names; numbers as int, NIL as None, lists as tuples, strings and
literals as bytes, INTERNALDATE as an aware datetime). Pure: plain bytes in, values out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

Value = object
"""One value of a FETCH item: bytes, int, None, datetime or a tuple of values."""

# One token of a FETCH line. An atom may carry a section and an origin, as in
# BODY[HEADER.FIELDS (FROM TO)]<0>: the section is part of the name, spaces and all.
_TOKEN = re.compile(
    rb"""[ \t]*(?:
        (?P<open>\()
      | (?P<close>\))
      | "(?P<quoted>(?:[^"\\]|\\.)*)"
      | ~?\{(?P<literal>\d+)\+?\}$
      | (?P<atom>[^\s()"{\[\]]+(?:\[[^\]]*\](?:<\d+>)?)?)
    )""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
# The lines a bulk fetch nearly always gets: ``N (`` or a line after a literal, then
# ``NAME value`` pairs whose values are numbers, NIL, quoted strings without escapes or
# lists of atoms (FLAGS, MODSEQ), ending in ``NAME {n}`` or ``)``. Read pair by pair
# instead of token by token; anything else goes to the token reader.
_FLAT_START = re.compile(rb"(\d+) \(")
_FLAT_PAIR = re.compile(
    rb"""[ ]?(?P<name>[A-Za-z0-9.-]+(?:\[[^\]]*\](?:<\d+>)?)?)[ ](?:
        (?P<number>\d+)(?=[ )]|$)
      | "(?P<quoted>[^"\\]*)"
      | \((?P<list>[^()"{}\[\]]*)\)
      | (?P<nil>NIL)(?=[ )]|$)
      | \{(?P<literal>\d+)\}$
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_INTERNALDATE = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{1,2}):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\s*"
)
_MONTHS = {
    name: number
    for number, name in enumerate(b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)
}
_ZONES: dict[bytes, timezone] = {}


class FetchAnswerError(ValueError):
    """A FETCH answer that breaks the IMAP grammar; the text says where."""


def read_fetch_answer(
    lines: Sequence[bytes | tuple[bytes, bytes] | None],
) -> dict[int, dict[bytes, Value]]:
    """Every message of an untagged FETCH answer as imaplib hands it over, by UID.

    A message answered without a UID (an unsolicited flag change) is filed under its
    sequence number, as imapclient does; ``SEQ`` always holds the sequence number. Items
    may come in any order and a message may be answered in several responses (merged).
    Raises ``FetchAnswerError`` when the answer breaks the grammar.
    """
    answer: dict[int, dict[bytes, Value]] = {}
    for response in _responses(lines):
        if len(response) != 2 or not isinstance(response[1], tuple):
            raise FetchAnswerError(f"not a FETCH response: {_show(response)}")
        seq, items = _number(response[0], "message number"), response[1]
        if len(items) % 2:
            raise FetchAnswerError(f"an item without a value: {_show(items)}")
        data: dict[bytes, Value] = {b"SEQ": seq}
        key = seq
        for index in range(0, len(items), 2):
            name, value = items[index], items[index + 1]
            if not isinstance(name, bytes):
                raise FetchAnswerError(f"an item name that is not an atom: {_show(name)}")
            name = name.upper()
            if name == b"UID":
                key = _number(value, "UID")
            elif name == b"INTERNALDATE":
                data[name] = internaldate(value) if isinstance(value, bytes) else None
            else:
                data[name] = value
        answer.setdefault(key, {}).update(data)
    return answer


def internaldate(text: bytes) -> datetime | None:
    """An INTERNALDATE (``"17-Jul-1996 02:44:25 -0700"``) as an aware datetime, or None."""
    match = _INTERNALDATE.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    zone_text = sign + zone_hours + zone_minutes
    zone = _ZONES.get(zone_text)
    if zone is None:
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        zone = _ZONES[zone_text] = timezone(-offset if sign == b"-" else offset)
    try:
        return datetime(
            int(year),
            _MONTHS.get(month.upper(), 0),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=zone,
        )
    except ValueError:  # 31-Feb, month "Foo", hour 25: no date at all
        return None


def _responses(lines: Sequence[bytes | tuple[bytes, bytes] | None]) -> list[tuple[Value, ...]]:
    """The top-level values of each FETCH response: its number, then its item list."""
    responses: list[tuple[Value, ...]] = []
    stack: list[list[Value]] = [[]]
    for line in lines:
        if line is None:  # imaplib's way of saying there was no FETCH response at all
            continue
        if isinstance(line, tuple):
            text, literal = line
        elif isinstance(line, bytes):
            text, literal = line, None
        else:
            raise FetchAnswerError(f"not a line of a FETCH answer: {_show(line)}")
        end = _tokens(text, stack)
        if literal is not None:
            if end is None:
                raise FetchAnswerError(f"literal data after a line without {{n}}: {_show(text)}")
            stack[-1].append(literal)
        elif end is not None:
            raise FetchAnswerError(f"a literal announced but not sent: {_show(text)}")
        if len(stack) == 1 and stack[0] and isinstance(stack[0][-1], tuple):
            responses.append(tuple(stack[0]))  # the response's item list is closed
            stack[0] = []
    if len(stack) != 1 or stack[0]:
        raise FetchAnswerError("the answer ends inside a response (a parenthesis not closed)")
    return responses


def _tokens(text: bytes, stack: list[list[Value]]) -> int | None:
    """Add the values of one line to ``stack``; the announced literal's size, if any."""
    flat = _flat_tokens(text, stack)
    if flat is not _NOT_FLAT:
        return flat  # type: ignore[return-value]  # an int or None once it is not _NOT_FLAT
    position, length = 0, len(text)
    while position < length:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].isspace():
                break
            raise FetchAnswerError(f"unreadable at {text[position : position + 40]!r}")
        position = match.end()
        kind = match.lastgroup
        if kind == "atom":
            stack[-1].append(_atom(match.group("atom")))
        elif kind == "open":
            stack.append([])
        elif kind == "close":
            if len(stack) == 1:
                raise FetchAnswerError(f"a parenthesis closed that was not open: {_show(text)}")
            closed = tuple(stack.pop())
            stack[-1].append(closed)
        elif kind == "quoted":
            quoted = match.group("quoted")
            stack[-1].append(_QUOTED_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        else:
            return int(match.group("literal"))
    return None


_NOT_FLAT = object()


def _flat_tokens(text: bytes, stack: list[list[Value]]) -> object:
    """``_tokens`` for a line of the usual shape, or ``_NOT_FLAT`` (``stack`` untouched).

    The values are the ones ``_tokens`` would add, in the same places.
    """
    position = 0
    opened: Value | None = None
    if len(stack) == 1 and not stack[0]:
        start = _FLAT_START.match(text)
        if start is None:
            return _NOT_FLAT
        opened, position = int(start.group(1)), start.end()
    elif len(stack) != 2:
        return _NOT_FLAT
    values: list[Value] = []
    literal: int | None = None
    length = len(text)
    while position < length:
        pair = _FLAT_PAIR.match(text, position)
        if pair is None:
            break
        position = pair.end()
        values.append(pair.group("name"))
        kind = pair.lastgroup
        if kind == "number":
            values.append(int(pair.group("number")))
        elif kind == "quoted":
            values.append(pair.group("quoted"))
        elif kind == "list":
            values.append(tuple(_atom(atom) for atom in pair.group("list").split()))
        elif kind == "nil":
            values.append(None)
        else:
            literal = int(pair.group("literal"))
            break
    closes = literal is None and text[position:] == b")"
    if position < length and not closes:
        return _NOT_FLAT
    if opened is not None:
        stack[0].append(opened)
        stack.append(values)
    else:
        stack[-1] += values
    if closes:
        closed = tuple(stack.pop())
        if len(stack) != 1:
            raise FetchAnswerError(f"a parenthesis closed that was not open: {_show(text)}")
        stack[-1].append(closed)
    return literal


def _atom(atom: bytes) -> Value:
    """An atom's value as ``_tokens`` reads it: a number, None for NIL, or the bytes."""
    return int(atom) if atom.isdigit() else None if atom.upper() == b"NIL" else atom


def _number(value: Value, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise FetchAnswerError(f"the {what} is not a number: {_show(value)}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
